"""Filesystems of each protocol family on real loopback servers, for the fsspec tests.

vsftpd (explicit FTPS, ``require_ssl_reuse=YES``), OpenSSH sshd and pyftpdlib (plain FTP) are
the servers of ``tests/servers/``; each filesystem verifies the server's certificate or host
key as a user's would. Instances skip fsspec's instance cache, so a test's listings cache
starts empty and its connections are its own.
"""

from __future__ import annotations

from typing import Any

from ferryman.fsspec import (
    FerrymanFileSystem,
    FerrymanFtpFileSystem,
    FerrymanSftpFileSystem,
    FtpesFileSystem,
)
from tests.conftest import PASSWORD, Served
from tests.servers.sshd import Sshd
from tests.servers.vsftpd import Vsftpd

__all__ = [
    "COMMON",
    "pyftpdlib_fs",
    "pyftpdlib_options",
    "sshd_fs",
    "sshd_options",
    "vsftpd_fs",
    "vsftpd_options",
]

#: every test filesystem: no ~/.netrc or keyring lookups, short waits, a retry for a
#: connection dropped between tests
COMMON: dict[str, Any] = {
    "use_netrc": False,
    "use_keyring": False,
    "timeout": 10,
    "retries": 2,
    "retry_delay": 0.1,
    "skip_instance_cache": True,
}


def vsftpd_options(server: Vsftpd) -> dict[str, Any]:
    assert server.pki is not None
    return {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "ca_file": str(server.pki.ca_cert),
        **COMMON,
    }


def vsftpd_fs(server: Vsftpd, **extra: Any) -> FerrymanFileSystem:
    return FtpesFileSystem(**{**vsftpd_options(server), **extra})


def sshd_options(server: Sshd) -> dict[str, Any]:
    return {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "known_hosts": str(server.known_hosts),
        "use_agent": False,
        **COMMON,
    }


def sshd_fs(server: Sshd, **extra: Any) -> FerrymanFileSystem:
    return FerrymanSftpFileSystem(**{**sshd_options(server), **extra})


def pyftpdlib_options(served: Served) -> dict[str, Any]:
    return {
        "host": served.server.host,
        "port": served.server.port,
        "user": served.server.user,
        "password": PASSWORD,
        **COMMON,
    }


def pyftpdlib_fs(served: Served, **extra: Any) -> FerrymanFileSystem:
    return FerrymanFtpFileSystem(**{**pyftpdlib_options(served), **extra})
