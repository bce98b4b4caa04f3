"""ferryman's FTP, FTPS and SFTP as fsspec filesystems (``pip install ferryman[fsspec]``).

Protocol names, registered through the ``fsspec.specs`` entry points: ``ftpes`` (explicit
TLS), ``ftps`` (implicit TLS), ``ferryman+ftp`` (plain FTP) and ``ferryman+sftp``. fsspec's
own ``ftp`` and ``sftp`` stay fsspec's, unless a program opts in with
:func:`register_standard_protocols`. See docs/fsspec.md.
"""

from __future__ import annotations

import fsspec

from .errors import (
    ConnectionProblem,
    FileExists,
    FileNotFound,
    IsADirectory,
    NotADirectory,
    PermissionDenied,
    TimedOut,
)
from .files import FerrymanFile
from .filesystem import FerrymanFileSystem
from .protocols import (
    FerrymanFtpFileSystem,
    FerrymanSftpFileSystem,
    FtpesFileSystem,
    FtpsFileSystem,
)

__all__ = [
    "ConnectionProblem",
    "FerrymanFile",
    "FerrymanFileSystem",
    "FerrymanFtpFileSystem",
    "FerrymanSftpFileSystem",
    "FileExists",
    "FileNotFound",
    "FtpesFileSystem",
    "FtpsFileSystem",
    "IsADirectory",
    "NotADirectory",
    "PermissionDenied",
    "TimedOut",
    "register_standard_protocols",
]


def register_standard_protocols() -> None:
    """Let ferryman serve ``ftp://`` and ``sftp://`` URLs too, in this process (an explicit
    opt-in: installing ferryman never replaces fsspec's own implementations). Afterwards
    ``pd.read_csv("sftp://...")`` checks host keys, and ``ftp://`` means plain FTP, as in
    fsspec."""
    fsspec.register_implementation("ftp", FerrymanFtpFileSystem, clobber=True)
    fsspec.register_implementation("sftp", FerrymanSftpFileSystem, clobber=True)
