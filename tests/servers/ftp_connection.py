"""The ferryman connection settings for an FTP test server started here (vsftpd, ProFTPD)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from ferryman.connection import FtpConnection, TLSMode

if TYPE_CHECKING:
    from ferryman.certs import PkiFiles

__all__ = ["FtpTestServer", "connection"]


class FtpTestServer(Protocol):
    """What :func:`connection` reads of a server (``Vsftpd``, ``Proftpd``)."""

    host: str
    port: int
    user: str
    password: str
    mode: str
    pki: PkiFiles | None


def connection(server: FtpTestServer, **overrides: object) -> FtpConnection:
    """Settings for ``server`` in its TLS mode, its test CA trusted, no retries, no netrc or
    keyring; ``overrides`` replace any field."""
    fields: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": SecretStr(server.password),
        "tls": TLSMode(server.mode),
        "timeout": 10,
        "retries": 0,
        "use_netrc": False,
        "use_keyring": False,
    }
    if server.pki is not None:
        fields["ca_file"] = server.pki.ca_cert
    fields.update(overrides)
    return FtpConnection.model_validate(fields)
