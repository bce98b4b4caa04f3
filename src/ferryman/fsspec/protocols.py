"""The protocol names: one filesystem class each, differing only in what the name means."""

from __future__ import annotations

from ..connection import TLSMode
from .filesystem import FerrymanFileSystem
from .options import Scheme

__all__ = [
    "FerrymanFtpFileSystem",
    "FerrymanSftpFileSystem",
    "FtpesFileSystem",
    "FtpsFileSystem",
]


class FtpesFileSystem(FerrymanFileSystem):
    """``ftpes://``: FTP with explicit TLS (AUTH TLS), verified certificates."""

    protocol = ("ftpes",)
    scheme = Scheme("ftpes", "ftp", TLSMode.EXPLICIT)


class FtpsFileSystem(FerrymanFileSystem):
    """``ftps://``: FTP with implicit TLS (TLS from the first byte, port 990)."""

    protocol = ("ftps",)
    scheme = Scheme("ftps", "ftp", TLSMode.IMPLICIT)


class FerrymanFtpFileSystem(FerrymanFileSystem):
    """``ferryman+ftp://`` (and ``ftp://`` after :func:`register_standard_protocols`):
    plain FTP."""

    protocol = ("ferryman+ftp",)
    scheme = Scheme("ftp", "ftp", TLSMode.NONE)


class FerrymanSftpFileSystem(FerrymanFileSystem):
    """``ferryman+sftp://`` (and ``sftp://`` after :func:`register_standard_protocols`):
    SFTP with verified host keys."""

    protocol = ("ferryman+sftp",)
    scheme = Scheme("sftp", "sftp", None)
