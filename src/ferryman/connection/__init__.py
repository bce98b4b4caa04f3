"""The connection manager: one validated model per protocol, built from URLs, fields or files.

``FtpConnection`` covers FTP and FTPS, ``SftpConnection`` SFTP; both share the settings of
``ConnectionBase`` (server, port, user, password sources, time-outs, retries, chunk size).
"""

from __future__ import annotations

from .common import ConnectionBase
from .ftp import FtpConnection, TLSMode
from .sftp import SftpConnection, normalize_ssh_fingerprint
from .urls import (
    SUPPORTED_SCHEMES,
    Connection,
    RemoteTarget,
    build_connection,
    connection_from_url,
    format_validation_error,
    login_relative,
    parse_url,
    redact_url,
    settings_table,
    url_fields,
)

__all__ = [
    "SUPPORTED_SCHEMES",
    "Connection",
    "ConnectionBase",
    "FtpConnection",
    "RemoteTarget",
    "SftpConnection",
    "TLSMode",
    "build_connection",
    "connection_from_url",
    "format_validation_error",
    "login_relative",
    "normalize_ssh_fingerprint",
    "parse_url",
    "redact_url",
    "settings_table",
    "url_fields",
]
