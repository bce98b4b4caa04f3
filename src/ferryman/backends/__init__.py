"""Storage backends: FTP/FTPS, local disk, memory; one small interface (see ``base``)."""

from __future__ import annotations

from ..connection import FtpConnection
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
    "open_backend",
]


def open_backend(connection: FtpConnection) -> Backend:
    """A connected backend for ``connection`` (the caller closes it)."""
    from .ftp import FtpBackend  # noqa: PLC0415 - keeps `import ferryman` light

    return FtpBackend(connection).connect()
