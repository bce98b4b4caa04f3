"""The local disk as a backend.

Paths are used as given: absolute, or relative to the current working directory (POSIX).
Every ``OSError`` is translated into the error tree by :func:`translate_os_error`, which the
transfer layer can reuse for the local files it reads and writes itself.

Semantics (the reference the other backends are tested against):

- ``list`` and ``stat`` never follow symbolic links: a link is ``EntryType.LINK`` with its
  ``link_target``; directories have ``size=None``; ``mtime`` is aware UTC, precision 1 s.
- ``open_write(path, 0)`` creates or truncates; ``open_write(path, n)`` continues a partial
  file: it must exist and be at least ``n`` bytes long, is truncated to ``n``, then appended
  to. ``abort()`` leaves what was written in place, so that a later attempt can resume.
- ``rename`` is :func:`os.replace`: an existing target file (or empty directory) is replaced
  atomically; it fails across file systems.
- no server-side hashes: the transfer layer hashes local files itself.
- ``claim(path)`` takes an exclusive advisory lock (``flock``) on a file a writer is about to
  fill, held until the writer releases it (after its rename): two ferryman processes never
  write one temporary file at once, and the holder can check that the name still leads to
  the very file it wrote (:class:`LocalClaim`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import posixpath
import stat as stat_mode
from datetime import UTC, datetime

from ..errors import (
    ConfigError,
    FerrymanError,
    NotFoundError,
    PermissionDeniedError,
    RemoteError,
    TransferError,
    VerificationError,
)
from .base import Backend, Capabilities, Entry, EntryType, ReadStream, WriteStream

__all__ = [
    "LocalBackend",
    "LocalClaim",
    "LocalReadStream",
    "LocalWriteStream",
    "translate_os_error",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: errno -> (what went wrong, what to do); the errors are RemoteErrors unless handled apart
_REASONS: dict[int, tuple[str, str]] = {
    errno.EISDIR: (
        "it is a directory",
        "give the path of a file (directories are listed with list and removed with rmdir)",
    ),
    errno.ENOTDIR: (
        "not a directory (the path or one of its parents is a file)",
        "check the path; a file stands where a directory is expected",
    ),
    errno.EEXIST: (
        "it already exists",
        "choose another name, or remove the existing entry first",
    ),
    errno.ENOTEMPTY: ("the directory is not empty", "remove its contents first"),
    errno.EXDEV: (
        "source and target are on different file systems",
        "rename works only within one file system; copy, then remove the source",
    ),
    errno.ENAMETOOLONG: ("the name is too long", "use a shorter name or path"),
    errno.ELOOP: (
        "too many levels of symbolic links",
        "check the symbolic links in the path for a loop",
    ),
}


def translate_os_error(
    exc: OSError, action: str, path: str, *, target: str | None = None
) -> FerrymanError:
    """The error-tree equivalent of ``exc`` raised while trying to ``action`` ``path``.

    ``action`` is a verb phrase ("open for reading", "remove"); the message reads
    ``cannot <action> '<path>'[ to '<target>']: <reason>``. Raise the result ``from exc``.
    """
    where = repr(path) if target is None else f"{path!r} to {target!r}"
    prefix = f"cannot {action} {where}"
    code = exc.errno
    if code == errno.ENOENT:
        return NotFoundError(
            f"{prefix}: no such file or directory",
            hint="check the path, and that its parent directory exists",
        )
    if code in (errno.EACCES, errno.EPERM):
        return PermissionDeniedError(
            f"{prefix}: permission denied",
            hint=f"check the owner and permissions of {path!r} and of its parent directory, "
            "or run as a user that may access it",
        )
    if code == errno.EROFS:
        return PermissionDeniedError(
            f"{prefix}: the file system is read-only",
            hint="write to a writable location, or remount the file system read-write",
        )
    if code in (errno.ENOSPC, errno.EDQUOT):
        full = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
        directory = posixpath.dirname(os.path.abspath(target if target is not None else path))
        return TransferError(
            f"{prefix}: {full}",
            retriable=False,
            hint=f"free space on the file system that holds {directory!r} (see df -h) "
            "or raise the quota, then run again",
        )
    if code == errno.EIO:
        return TransferError(
            f"{prefix}: input/output error",
            retriable=False,
            hint="the disk or network file system reported an I/O error; check it, then retry",
        )
    if code is not None and code in _REASONS:
        reason, hint = _REASONS[code]
        return RemoteError(f"{prefix}: {reason}", hint=hint)
    return RemoteError(
        f"{prefix}: {exc.strerror or exc}",
        hint="the operating system refused the operation; check the path and the file system",
    )


def _fs_path(path: str) -> str:
    if "\0" in path:
        raise ConfigError(
            f"local path {path!r} contains a NUL character",
            hint="paths may not contain NUL; check the path or the variable that built it",
        )
    return path


def _check_offset(offset: int) -> None:
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")


def _entry_name(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) or path


def _offset_beyond_end(path: str, size: int, offset: int, *, writing: bool) -> RemoteError:
    """The error for resuming at ``offset`` in a file of only ``size`` bytes."""
    if writing:
        return RemoteError(
            f"cannot continue writing {path!r} at byte {offset}: the file has only {size} bytes",
            hint="stat the partial file and resume from its size, or start again at offset 0",
        )
    return RemoteError(
        f"cannot read {path!r} from byte {offset}: the file has only {size} bytes",
        hint="the file changed since the partial copy was made; transfer it again from 0",
    )


def _mtime_ns(mtime: datetime) -> int:
    if mtime.tzinfo is None or mtime.utcoffset() is None:
        raise ValueError(f"mtime must be timezone-aware, got {mtime!r}")
    delta = mtime - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _entry(name: str, st: os.stat_result, link_target: str | None) -> Entry:
    mode = st.st_mode
    if stat_mode.S_ISLNK(mode):
        kind = EntryType.LINK
    elif stat_mode.S_ISDIR(mode):
        kind = EntryType.DIR
    elif stat_mode.S_ISREG(mode):
        kind = EntryType.FILE
    else:
        kind = EntryType.OTHER
    seconds, nanoseconds = divmod(st.st_mtime_ns, 1_000_000_000)
    mtime = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanoseconds // 1000)
    return Entry(
        name=name,
        type=kind,
        size=None if kind is EntryType.DIR else st.st_size,
        mtime=mtime,
        mtime_precision=1,
        permissions=stat_mode.filemode(mode),
        link_target=link_target,
    )


class _LocalFile:
    """What reading and writing streams share: the raw file, its path, closing it."""

    def __init__(self, file: io.FileIO, path: str) -> None:
        self._file = file
        self._path = path
        self.bytes_transferred = 0

    def _close_file(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            raise translate_os_error(exc, "close", self._path) from exc

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()


class LocalReadStream(_LocalFile, ReadStream):
    """A local file being read through an unbuffered raw file (``readinto``, no copies)."""

    def readinto(self, buffer: memoryview) -> int:
        if self._file.closed:
            raise ValueError(f"read from the closed stream of {self._path!r}")
        try:
            count = self._file.readinto(buffer) or 0
        except OSError as exc:
            raise translate_os_error(exc, "read", self._path) from exc
        self.bytes_transferred += count
        return count

    def close(self) -> None:
        self._close_file()


class LocalWriteStream(_LocalFile, WriteStream):
    """A local file being written; ``close`` optionally fsyncs, ``abort`` keeps the data."""

    def __init__(self, file: io.FileIO, path: str, *, fsync: bool = False) -> None:
        super().__init__(file, path)
        self._fsync = fsync

    def write(self, data: bytes | memoryview) -> None:
        if self._file.closed:
            raise ValueError(f"write to the closed stream of {self._path!r}")
        view = memoryview(data).cast("B")
        try:
            while len(view):
                count = self._file.write(view) or 0
                if count == 0:
                    raise OSError(errno.EIO, "the file accepted no data")
                view = view[count:]
                self.bytes_transferred += count
        except OSError as exc:
            raise translate_os_error(exc, "write", self._path) from exc

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            if self._fsync:
                os.fsync(self._file.fileno())
            self.landed_size = os.fstat(self._file.fileno()).st_size
        except OSError as exc:
            self.abort()
            raise translate_os_error(exc, "flush", self._path) from exc
        self._close_file()


class LocalClaim:
    """An exclusive ``flock`` on one file, held on a descriptor of its own.

    The lock belongs to the open file, not to the name: after the holder renames the file
    into place it still holds that very inode, and ``holds(path)`` tells whether a name still
    leads to it. Advisory: it keeps ferryman writers apart, not other programs.
    """

    def __init__(self, fd: int, path: str) -> None:
        self._fd: int | None = fd
        self.path = path

    def _stat(self) -> os.stat_result:
        if self._fd is None:
            raise ValueError(f"the claim on {self.path!r} was released")
        return os.fstat(self._fd)

    def holds(self, path: str) -> bool:
        """Whether ``path`` names the claimed file (not a file put there since)."""
        try:
            named = os.lstat(_fs_path(path))
        except OSError:
            return False
        mine = self._stat()
        return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)

    def check(self, path: str, size: int | None) -> None:
        """Raise VerificationError unless ``path`` is the claimed file and holds ``size``
        bytes (None: any): what is renamed into place must be what this writer wrote."""
        if not self.holds(path):
            raise VerificationError(
                f"{path}: the temporary file was replaced or removed by someone else",
                hint="another program replaced the temporary file; find it, then run again",
            )
        landed = self._stat().st_size
        if size is not None and landed != size:
            raise VerificationError(
                f"{path}: the temporary file holds {landed} bytes, {size} were written",
                hint="another program wrote to the temporary file; find it, then run again",
            )

    def fileno(self) -> int:
        """The claim's descriptor (open for writing): a segmented download writes through it
        at offsets (``os.pwrite``), so what it writes is the claimed file whatever the name."""
        if self._fd is None:
            raise ValueError(f"the claim on {self.path!r} was released")
        return self._fd

    def release(self) -> None:
        """Drop the lock (closing the descriptor); safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class LocalBackend(Backend):
    """The local file system. ``fsync=True`` makes ``close()`` of a written file durable."""

    capabilities = Capabilities(
        hashes=(),
        resume_read=True,
        resume_write=True,
        set_mtime=True,
        mtime_precision=1,
        max_connections=None,
        atomic_rename_replace=True,
        shared_connections=True,
    )

    def __init__(self, *, fsync: bool = False) -> None:
        self.fsync = fsync

    def describe(self) -> str:
        return "local"

    def sibling(self) -> LocalBackend:
        return LocalBackend(fsync=self.fsync)

    def list(self, path: str) -> list[Entry]:
        entries: list[Entry] = []
        try:
            with os.scandir(_fs_path(path)) as iterator:
                for item in iterator:
                    try:
                        st = item.stat(follow_symlinks=False)
                        link = os.readlink(item.path) if item.is_symlink() else None
                    except FileNotFoundError:
                        continue  # removed while we were listing
                    entries.append(_entry(item.name, st, link))
        except OSError as exc:
            raise translate_os_error(exc, "list directory", path) from exc
        entries.sort(key=lambda entry: entry.name)
        return entries

    def stat(self, path: str) -> Entry:
        fs = _fs_path(path)
        try:
            st = os.lstat(fs)
            link = os.readlink(fs) if stat_mode.S_ISLNK(st.st_mode) else None
        except OSError as exc:
            raise translate_os_error(exc, "stat", path) from exc
        return _entry(_entry_name(path), st, link)

    def open_read(self, path: str, offset: int = 0) -> LocalReadStream:
        _check_offset(offset)
        try:
            file = open(_fs_path(path), "rb", buffering=0)  # noqa: SIM115 - the stream owns it
        except OSError as exc:
            raise translate_os_error(exc, "open for reading", path) from exc
        try:
            st = os.fstat(file.fileno())
            if stat_mode.S_ISREG(st.st_mode) and offset > st.st_size:
                raise _offset_beyond_end(path, st.st_size, offset, writing=False)
            if offset:
                file.seek(offset)
        except OSError as exc:
            file.close()
            raise translate_os_error(exc, "open for reading", path) from exc
        except BaseException:
            file.close()
            raise
        return LocalReadStream(file, path)

    def open_write(self, path: str, offset: int = 0) -> LocalWriteStream:
        _check_offset(offset)
        fs = _fs_path(path)
        if offset == 0:
            try:
                file = io.FileIO(
                    os.open(fs, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o666), "w", closefd=True
                )
            except OSError as exc:
                raise translate_os_error(exc, "open for writing", path) from exc
            try:
                # truncate only what has bytes: truncating the empty file a claim just made
                # makes ext4 (auto_da_alloc) write it back at close, ~40 us per small file
                if os.fstat(file.fileno()).st_size:
                    file.truncate(0)
            except OSError as exc:
                file.close()
                raise translate_os_error(exc, "truncate", path) from exc
            return LocalWriteStream(file, path, fsync=self.fsync)
        try:
            file = io.FileIO(os.open(fs, os.O_WRONLY | os.O_NOFOLLOW), "w", closefd=True)
        except OSError as exc:
            raise translate_os_error(exc, "open for continued writing", path) from exc
        try:
            size = os.fstat(file.fileno()).st_size
            if size < offset:
                raise _offset_beyond_end(path, size, offset, writing=True)
            file.truncate(offset)
            file.seek(offset)
        except OSError as exc:
            file.close()
            raise translate_os_error(exc, "open for continued writing", path) from exc
        except BaseException:
            file.close()
            raise
        return LocalWriteStream(file, path, fsync=self.fsync)

    def claim(self, path: str, *, create: bool = True, new: bool = False) -> LocalClaim | None:
        """Lock file ``path`` for one writer: a :class:`LocalClaim`, or None while another
        process (or another claim in this one) holds it.

        ``create`` makes the file when missing (else NotFoundError); ``new`` requires that it
        did not exist (``O_EXCL``). Links are never followed.
        """
        fs = _fs_path(path)
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        flags |= (os.O_CREAT if create else 0) | (os.O_EXCL if new else 0)
        for _ in range(5):
            try:
                fd = os.open(fs, flags, 0o666)
            except OSError as exc:
                raise translate_os_error(exc, "claim", path) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except OSError as exc:
                # a file system without flock (some network mounts): the inode check of
                # LocalClaim.check still keeps a foreign file from being published
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    os.close(fd)
                    raise translate_os_error(exc, "lock", path) from exc
            claim = LocalClaim(fd, path)
            if claim.holds(path):
                return claim
            # the holder renamed or removed it between our open and our lock: the name now
            # leads elsewhere (or nowhere), so claim what it names now
            claim.release()
        return None

    def mkdir(self, path: str) -> None:
        try:
            os.mkdir(_fs_path(path))
        except OSError as exc:
            raise translate_os_error(exc, "create directory", path) from exc

    def rmdir(self, path: str) -> None:
        try:
            os.rmdir(_fs_path(path))
        except OSError as exc:
            raise translate_os_error(exc, "remove directory", path) from exc

    def remove(self, path: str) -> None:
        try:
            os.remove(_fs_path(path))
        except OSError as exc:
            raise translate_os_error(exc, "remove file", path) from exc

    def rename(self, source: str, target: str) -> None:
        """Rename with :func:`os.replace`: an existing target is replaced atomically."""
        try:
            os.replace(_fs_path(source), _fs_path(target))
        except OSError as exc:
            raise translate_os_error(exc, "rename", source, target=target) from exc

    def set_mtime(self, path: str, mtime: datetime) -> None:
        """Set the modification time (of a link's target); ``mtime`` must be aware."""
        fs = _fs_path(path)
        mtime_ns = _mtime_ns(mtime)
        try:
            os.utime(fs, ns=(os.stat(fs).st_atime_ns, mtime_ns))
        except OSError as exc:
            raise translate_os_error(exc, "set the modification time of", path) from exc
