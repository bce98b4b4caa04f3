"""Storage backends: FTP/FTPS, local disk, memory; one small interface (see ``base``)."""

from __future__ import annotations

import sys

from ..connection import Connection
from . import preconnect
from .base import (
    Backend,
    Capabilities,
    Entry,
    EntryType,
    NotSupportedError,
    ReadStream,
    WriteStream,
)

__all__ = [
    "Backend",
    "Capabilities",
    "Entry",
    "EntryType",
    "NotSupportedError",
    "ReadStream",
    "WriteStream",
    "backend_for",
    "open_backend",
]


def backend_for(connection: Connection) -> Backend:
    """An unconnected backend for ``connection``; its ``connect()`` connects it."""
    if connection.protocol == "sftp":
        if "asyncssh" not in sys.modules:  # its import and the server's first words overlap
            preconnect.dial(connection.host, connection.port, connection.effective_connect_timeout)
        from .sftp import SftpBackend  # noqa: PLC0415 - asyncssh is loaded only for SFTP

        return SftpBackend(connection)
    from .ftp import FtpBackend  # noqa: PLC0415 - keeps `import ferryman` light

    return FtpBackend(connection)


def open_backend(connection: Connection) -> Backend:
    """A connected backend for ``connection`` (the caller closes it)."""
    return backend_for(connection).connect()
