"""The small interface every storage backend implements.

A backend holds I/O only; policy (retries, verification, temporary names, overwrite rules)
lives in ``ferryman.transfer``. Paths are POSIX-style strings as the server spells them.
Optional abilities are declared as data in :class:`Capabilities`, so the operations layer can
ask instead of guessing (the rclone way).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from ..errors import FerrymanError, NotFoundError

__all__ = [
    "MAX_LOGIN_DIRECTORY",
    "Backend",
    "Capabilities",
    "Entry",
    "EntryType",
    "NotSupportedError",
    "ReadStream",
    "WriteStream",
    "login_hint",
    "resolve_login_path",
    "usable_login_directory",
]

#: longest login directory believed (PATH_MAX); a longer "directory" is a broken reply
MAX_LOGIN_DIRECTORY = 4096


def usable_login_directory(text: str | None) -> str | None:
    """The login directory a server reported, if it is safe to build paths on, else None.

    The reply comes from the server and may be hostile or odd: a relative or VMS-style name,
    control characters (which would end an FTP command early), an endless string. None makes
    the backend fall back to paths relative to where the session starts, which is the login
    directory too, so an odd reply costs only a nicer message, never a wrong path.
    """
    if not text or not text.startswith("/") or len(text) > MAX_LOGIN_DIRECTORY:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    return text.rstrip("/") or "/"


def resolve_login_path(path: str, login_directory: str | None) -> str:
    """``~`` and ``~/x`` below ``login_directory``; any other path unchanged.

    With the login directory unknown, ``~/x`` becomes the relative ``x`` (a session starts in
    the login directory) and ``~`` becomes ``.``. ``~user`` is not expanded: only WinSCP's
    ``~`` for the user's own login directory is.
    """
    if path != "~" and not path.startswith("~/"):
        return path
    rest = path[2:]
    if login_directory is None:
        return rest or "."
    if path == "~":
        return login_directory
    return ("" if login_directory == "/" else login_directory) + "/" + rest


def login_hint(path: str, login_directory: str | None) -> str | None:
    """What to tell a user whose absolute ``path`` was not found, when the session starts
    in another directory than ``/``: files are usually below it, and the URL path is
    absolute, so ``/outbound`` may have been meant as ``/~/outbound``."""
    if login_directory is None or login_directory == "/" or not path.startswith("/"):
        return None
    if path == login_directory or path.startswith(login_directory.rstrip("/") + "/"):
        return None  # the user already wrote the path below the login directory
    return f"the login directory is {login_directory}; did you mean /~{path}?"


class NotSupportedError(FerrymanError):
    """The backend (or this server) does not offer the operation; check ``capabilities``."""


class EntryType(enum.StrEnum):
    FILE = "file"
    DIR = "dir"
    LINK = "link"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Entry:
    """One directory entry, as a listing or ``stat`` reports it.

    ``mtime`` is timezone-aware UTC when known. ``mtime_precision`` is how many seconds the
    timestamp may be off by the listing's resolution: 1 for MLSD/MDTM/SFTP, 60 for a UNIX
    ``ls -l`` time of day, 86400 for a listing that shows only the date.
    """

    name: str
    type: EntryType
    size: int | None = None
    mtime: datetime | None = None
    mtime_precision: int | None = None
    permissions: str | None = None
    link_target: str | None = None
    facts: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_dir(self) -> bool:
        return self.type is EntryType.DIR

    @property
    def is_file(self) -> bool:
        return self.type is EntryType.FILE

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": str(self.type),
            "size": self.size,
            "modified": self.mtime.isoformat() if self.mtime else None,
            "mtime_precision": self.mtime_precision,
            "permissions": self.permissions,
            "link_target": self.link_target,
        }


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend (on the server it is connected to) can do beyond the basic interface."""

    #: server-side hash algorithms, lower-case names as hashlib spells them ("sha256", "md5")
    hashes: tuple[str, ...] = ()
    #: reading can start at an offset (FTP REST, SFTP offsets)
    resume_read: bool = True
    #: writing can continue at an offset (FTP REST+STOR / APPE, SFTP offsets)
    resume_write: bool = True
    #: modification times can be set (FTP MFMT / SITE UTIME, SFTP setstat)
    set_mtime: bool = False
    #: best timestamp resolution in seconds that listings or stat give
    mtime_precision: int = 1
    #: most simultaneous connections advisable to one server (None: no known limit)
    max_connections: int | None = None
    #: one more file in flight costs no new connection (SFTP: a share of a channel on the same
    #: SSH connection; the local disk), so many may be in flight over a long round trip
    shared_connections: bool = False
    #: rename replaces an existing target atomically
    atomic_rename_replace: bool = False
    #: connections ``--segments auto`` uses for one big file read from (``auto_read_segments``)
    #: or written to (``auto_write_segments``) this backend over a long round trip: as many
    #: as help before something other than each connection's window is the limit
    auto_read_segments: int = 8
    auto_write_segments: int = 8
    #: ranges of one file can be written at once over several connections, each leaving the
    #: rest of the file as it is (``open_write_range``; SFTP: OPEN without TRUNC, writes at
    #: offsets): what segmented uploads need
    write_ranges: bool = False
    #: one connection may hold several reads open at once and ``open_read`` returns without
    #: waiting for the server (SFTP: requests carry ids, replies land in each stream), so the
    #: engine opens a worker's next small files while it copies the current one (issue 19)
    read_ahead: bool = False
    #: round trips one small file costs to read from (``read_round_trips``) or write to
    #: (``write_round_trips``) this backend, one after another: how long each file in flight
    #: waits, so how many must be in flight to cover a long round trip (``transfer.inflight``)
    read_round_trips: int = 1
    write_round_trips: int = 1
    #: the backend can prepare its next transfer while one ends when told that another one
    #: follows on this connection (:meth:`Backend.transfers_follow`; FTP: the next passive
    #: port asked for behind the end of the current transfer)
    prepares_transfers: bool = False


class _Stream(abc.ABC):
    """Common life cycle: ``close()`` finishes and checks, ``abort()`` gives up quietly."""

    bytes_transferred: int = 0

    @abc.abstractmethod
    def close(self) -> None:
        """Finish the transfer and check that it succeeded; raises a FerrymanError if not."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Give up on the transfer, release its resources, never raise."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ReadStream(_Stream):
    """A file being read from a backend, from the offset it was opened at."""

    @abc.abstractmethod
    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` (or part of it); return the byte count, 0 at the end of the file."""

    def read(self, size: int = 1 << 20) -> bytes:
        buf = bytearray(size)
        n = self.readinto(memoryview(buf))
        del buf[n:]
        return bytes(buf)


class WriteStream(_Stream):
    """A file being written to a backend."""

    #: the file's size as the destination reported it while closing (SFTP: an FSTAT sent
    #: with the CLOSE; local: fstat), or None: the caller asks ``Backend.size`` afterwards
    landed_size: int | None = None

    @abc.abstractmethod
    def write(self, data: bytes | memoryview) -> None:
        """Write all of ``data``."""


class Backend(abc.ABC):
    """A place files live: an FTP/FTPS server, an SFTP server, the local disk, memory."""

    #: what this backend can do; may be refined after connecting (e.g. from FEAT)
    capabilities: Capabilities = Capabilities()
    #: the absolute directory a session starts in (FTP: PWD; SFTP: realpath of "."), once
    #: learned (see :meth:`find_login_directory`); None while unknown, and for the local disk
    login_directory: str | None = None
    #: the shortest request/reply time seen on this connection, in seconds (None: not yet
    #: measured, or no network): how the engine sizes the files in flight (issue 19)
    round_trip: float | None = None

    def note_round_trip(self, seconds: float) -> None:
        """Record one request/reply time; the shortest one is the round trip's estimate."""
        if self.round_trip is None or seconds < self.round_trip:
            self.round_trip = seconds

    def transfers_follow(self, more: bool) -> None:
        """A hint from whoever runs transfers on this connection: after the transfer about to
        start, another one follows here (``more``) or it is the last for now. Only worth
        giving to a backend that declares ``capabilities.prepares_transfers``; the default
        ignores it. A wrong hint costs time, never correctness."""
        del more

    def find_login_directory(self) -> str | None:
        """The login directory, asked of the server the first time it is needed (a ``~``
        path, a "not found" hint, ``ferryman test``) rather than at every connect: a pool of
        connections pays no extra round trip for it. Never raises; None when unknown."""
        return self.login_directory

    def login_path(self, path: str) -> str:
        """``path`` with a leading ``~`` resolved to the login directory (see
        :func:`resolve_login_path`); remote backends call it on every path they are given,
        so every command, transfer and job step can name ``~/dir``."""
        if path != "~" and not path.startswith("~/"):
            return path
        return resolve_login_path(path, self.find_login_directory())

    def hint_not_found(self, error: FerrymanError, path: str) -> FerrymanError:
        """Add the login directory to the hint of a "not found" for absolute ``path`` (see
        :func:`login_hint`); returns ``error``, changed in place."""
        if isinstance(error, NotFoundError) and path.startswith("/"):
            extra = login_hint(path, self.find_login_directory())
            if extra is not None and extra not in (error.hint or ""):
                error.hint = f"{error.hint}; {extra}" if error.hint else extra
        return error

    def connect(self) -> Self:
        """Connect and log in (remote backends); returns the backend. Others need nothing."""
        return self

    def sibling(self) -> Backend:
        """Another backend to the same place, for one more transfer at a time (a pool's
        next connection). It is not connected yet; the caller connects and closes it. FTP
        makes a new control connection; SFTP may open another channel on the same SSH
        connection."""
        raise NotSupportedError(f"{self.describe()} cannot open a second connection")

    def sibling_with_own_connection(self) -> Backend:
        """A sibling on a network connection (TCP flow) of its own, never shared: for the
        segments of one big file, where a link caps each flow (issue 19). The default is
        :meth:`sibling`, which already is one for FTP."""
        return self.sibling()

    @abc.abstractmethod
    def list(self, path: str) -> list[Entry]:
        """The entries of directory ``path`` (without ``.`` and ``..``)."""

    @abc.abstractmethod
    def stat(self, path: str) -> Entry:
        """The entry for ``path``; raises NotFoundError when it does not exist."""

    def size(self, path: str) -> int | None:
        """The size of file ``path`` as the server reports it (None: unknown). Backends may
        answer with one cheap request (FTP ``SIZE``) instead of a full ``stat``."""
        return self.stat(path).size

    @abc.abstractmethod
    def open_read(self, path: str, offset: int = 0) -> ReadStream:
        """Open ``path`` for reading, starting at byte ``offset``."""

    @abc.abstractmethod
    def open_write(self, path: str, offset: int = 0) -> WriteStream:
        """Open ``path`` for writing; ``offset`` > 0 continues a partial file at that byte."""

    def open_write_range(self, path: str, offset: int) -> WriteStream:
        """Open the existing file ``path`` to write bytes from ``offset`` on, leaving every
        other byte as it is (one segment of a segmented upload); see
        ``Capabilities.write_ranges``."""
        raise NotSupportedError(f"{self.describe()} cannot write one file in ranges")

    def open_read_ahead(self, path: str, size: int) -> ReadStream:
        """Open ``path`` for reading from byte 0 when its listing said it has ``size`` bytes:
        what the engine calls to open a read ahead (``Capabilities.read_ahead``). A backend
        may take the size as a hint instead of asking the server (a file that changed is
        still read whole: the hint only saves a request); by default it is
        :meth:`open_read`."""
        return self.open_read(path)

    def open_read_ascii(self, path: str) -> ReadStream:
        """Open ``path`` for reading as text with local (LF) line ends: FTP's TYPE A. Where
        the protocol has no text mode (SFTP, local) the bytes are read as they are."""
        return self.open_read(path)

    def open_write_ascii(self, path: str) -> WriteStream:
        """Open ``path`` for writing text given with LF line ends: FTP's TYPE A (the server
        stores its own line ends). Where the protocol has no text mode, bytes as they are."""
        return self.open_write(path)

    @abc.abstractmethod
    def mkdir(self, path: str) -> None:
        """Create directory ``path`` (its parent must exist)."""

    @abc.abstractmethod
    def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path``."""

    @abc.abstractmethod
    def remove(self, path: str) -> None:
        """Remove file ``path``."""

    @abc.abstractmethod
    def rename(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target``."""

    def hash(self, path: str, algorithm: str) -> str:
        """Hex digest of ``path`` computed by the server; see ``capabilities.hashes``."""
        raise NotSupportedError(f"{self.describe()} cannot compute {algorithm} hashes")

    def set_mtime(self, path: str, mtime: datetime) -> None:
        """Set the modification time of ``path``; see ``capabilities.set_mtime``."""
        raise NotSupportedError(f"{self.describe()} cannot set modification times")

    def close(self) -> None:  # noqa: B027 - optional hook, most backends have something to close
        """Release the connection; safe to call twice."""

    def describe(self) -> str:
        """A short, secret-free name for messages, e.g. ``ftpes://orders@host:21``."""
        return type(self).__name__

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
