"""An in-memory backend for network-free tests of the transfer layer.

Same semantics and error messages as :class:`~ferryman.backends.local.LocalBackend` (errors
are built by the same :func:`~ferryman.backends.local.translate_os_error`), on a tree of
directories and byte strings that lives as long as the object. Paths are POSIX; relative
paths are relative to ``/``. All operations take one lock, so several threads (simulated
connections) may share one instance; ``close()`` only records that it was called.

Faults for testing retries and resumption:

- :meth:`MemoryBackend.fail_next` makes the next call(s) of an operation raise a given error;
- :meth:`MemoryBackend.truncate_reads_after` / :meth:`MemoryBackend.truncate_writes_after`
  make the next stream(s) of a path raise a retriable ``TransferError`` after ``n`` bytes,
  like a dropped data connection (data written before the drop is kept);
- :attr:`MemoryBackend.calls` counts the calls of each operation.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import os
import posixpath
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..errors import FerrymanError, TransferError
from .base import (
    Backend,
    Capabilities,
    Entry,
    EntryType,
    NotSupportedError,
    ReadStream,
    WriteStream,
)
from .local import (
    _check_offset,
    _entry_name,
    _fs_path,
    _mtime_ns,
    _offset_beyond_end,
    translate_os_error,
)

__all__ = ["OPERATIONS", "MemoryBackend", "MemoryReadStream", "MemoryWriteStream"]

#: the operation names that :meth:`MemoryBackend.fail_next` accepts
OPERATIONS = frozenset(
    [
        "list",
        "stat",
        "open_read",
        "open_write",
        "mkdir",
        "rmdir",
        "remove",
        "rename",
        "hash",
        "set_mtime",
        "read",
        "write",
        "close_read",
        "close_write",
    ]
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Fail = Callable[[int], FerrymanError]


class _Dir:
    __slots__ = ("children", "mtime")

    def __init__(self, mtime: datetime) -> None:
        self.children: dict[str, _Dir | _File] = {}
        self.mtime = mtime


class _File:
    __slots__ = ("data", "mtime")

    def __init__(self, mtime: datetime, data: bytes = b"") -> None:
        self.data = bytearray(data)
        self.mtime = mtime


@dataclass
class _Fault:
    operation: str
    path: str | None
    remaining: int | None  # None: every time
    error: FerrymanError | None = None
    nbytes: int = 0


def _key(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


def _parts(path: str) -> list[str]:
    return [part for part in _key(_fs_path(path)).split("/") if part]


def _dropped(path: str, nbytes: int, reading: bool) -> TransferError:
    return TransferError(
        f"simulated dropped data connection after {nbytes} bytes "
        f"{'reading' if reading else 'writing'} {path!r}",
        retriable=True,
        hint="injected by MemoryBackend; resume from the bytes transferred",
    )


class _MemoryStream:
    """What the read and write streams share: the node, the position, the simulated drop."""

    _close_operation = ""

    def __init__(
        self, backend: MemoryBackend, node: _File, path: str, offset: int, cut: int | None
    ) -> None:
        self._backend, self._node, self._path = backend, node, path
        self._position, self._cut, self._closed = offset, cut, False
        self.bytes_transferred = 0

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"use of the closed stream of {self._path!r}")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with self._backend._lock:
                self._backend._enter(self._close_operation, self._path)

    def abort(self) -> None:
        self._closed = True


class MemoryReadStream(_MemoryStream, ReadStream):
    """A memory file being read; shares the backend's lock."""

    _close_operation = "close_read"

    def readinto(self, buffer: memoryview) -> int:
        self._check_open()
        with self._backend._lock:
            self._backend._enter("read", self._path)
            want = len(buffer)
            if self._cut is not None and want:
                if self.bytes_transferred >= self._cut:
                    raise _dropped(self._path, self.bytes_transferred, reading=True)
                want = min(want, self._cut - self.bytes_transferred)
            chunk = self._node.data[self._position : self._position + want]
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        self.bytes_transferred += len(chunk)
        return len(chunk)


class MemoryWriteStream(_MemoryStream, WriteStream):
    """A memory file being written; data is visible at once, ``abort`` keeps it."""

    _close_operation = "close_write"

    def write(self, data: bytes | memoryview) -> None:
        self._check_open()
        view = memoryview(data).cast("B")
        backend = self._backend
        with backend._lock:
            backend._enter("write", self._path)
            allowed = len(view)
            if self._cut is not None:
                allowed = min(allowed, max(self._cut - self.bytes_transferred, 0))
            end = self._position + allowed
            self._node.data[self._position : end] = view[:allowed]
            self._node.mtime = backend._clock()
            self._position = end
            self.bytes_transferred += allowed
            if allowed < len(view):
                raise _dropped(self._path, self.bytes_transferred, reading=False)


class MemoryBackend(Backend):
    """An in-memory file tree; see the module documentation for the fault hooks."""

    def __init__(
        self,
        *,
        capabilities: Capabilities | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.capabilities = capabilities or Capabilities(
            hashes=("sha256", "md5"),
            set_mtime=True,
            atomic_rename_replace=True,
            shared_connections=True,
        )
        self._clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._root = _Dir(self._clock())
        self._faults: list[_Fault] = []
        self._read_cuts: list[_Fault] = []
        self._write_cuts: list[_Fault] = []
        #: how often each operation (see OPERATIONS) was called, failed calls included
        self.calls: Counter[str] = Counter()
        self.closed = False

    def describe(self) -> str:
        return "memory"

    def sibling(self) -> MemoryBackend:
        """The same instance: one lock makes it safe for many threads, and the tree is one."""
        return self

    def close(self) -> None:
        self.closed = True

    # -- fault injection -----------------------------------------------------------------------

    def fail_next(
        self, operation: str, error: FerrymanError, times: int = 1, *, path: str | None = None
    ) -> None:
        """Make the next ``times`` calls of ``operation`` (on ``path``, if given) raise a copy
        of ``error``. Stream operations are ``read``, ``write``, ``close_read``, ``close_write``."""
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; use one of {sorted(OPERATIONS)}")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        with self._lock:
            key = None if path is None else _key(path)
            self._faults.append(_Fault(operation, key, times, error=error))

    def truncate_reads_after(self, path: str, nbytes: int, *, times: int | None = 1) -> None:
        """The next ``times`` read streams of ``path`` (None: all) drop after ``nbytes``."""
        with self._lock:
            self._read_cuts.append(_Fault("read", _key(path), times, nbytes=nbytes))

    def truncate_writes_after(self, path: str, nbytes: int, *, times: int | None = 1) -> None:
        """The next ``times`` write streams of ``path`` (None: all) keep ``nbytes``, then drop."""
        with self._lock:
            self._write_cuts.append(_Fault("write", _key(path), times, nbytes=nbytes))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._read_cuts.clear()
            self._write_cuts.clear()

    def _take(self, faults: list[_Fault], operation: str, keys: tuple[str, ...]) -> _Fault | None:
        for fault in faults:
            if fault.operation == operation and (fault.path is None or fault.path in keys):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        faults.remove(fault)
                return fault
        return None

    def _enter(self, operation: str, *paths: str) -> None:
        self.calls[operation] += 1
        fault = self._take(self._faults, operation, tuple(_key(p) for p in paths))
        if fault is not None and fault.error is not None:
            raise copy.copy(fault.error)

    # -- test helpers (no faults, not counted) -------------------------------------------------

    def put(self, path: str, data: bytes = b"", *, mtime: datetime | None = None) -> None:
        """Create or replace file ``path`` with ``data``, creating missing parent directories."""
        with self._lock:
            parts, fail = _parts(path), self._failer("write", path)
            self.makedirs(posixpath.join("/", *parts[:-1]))
            if not parts or isinstance(self._walk(parts[:-1], fail).children.get(parts[-1]), _Dir):
                raise fail(errno.EISDIR)
            parent = self._walk(parts[:-1], fail)
            parent.children[parts[-1]] = _File(mtime or self._clock(), data)

    def makedirs(self, path: str) -> None:
        """Create directory ``path`` and its missing parents (like ``mkdir -p``)."""
        with self._lock:
            node = self._root
            for part in _parts(path):
                child = node.children.setdefault(part, _Dir(self._clock()))
                if not isinstance(child, _Dir):
                    raise self._failer("create directory", path)(errno.ENOTDIR)
                node = child

    def get(self, path: str) -> bytes:
        """The content of file ``path``."""
        with self._lock:
            node = self._find(path, self._failer("read", path))[2]
            if isinstance(node, _Dir):
                raise self._failer("read", path)(errno.EISDIR)
            return bytes(node.data)

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists (file or directory)."""
        with self._lock:
            try:
                self._find(path, self._failer("stat", path))
            except FerrymanError:
                return False
            return True

    def snapshot(self) -> dict[str, bytes | None]:
        """Every path below ``/``: file content, or None for a directory."""
        result: dict[str, bytes | None] = {}

        def visit(directory: _Dir, prefix: str) -> None:
            for name, node in sorted(directory.children.items()):
                if isinstance(node, _Dir):
                    result[prefix + name] = None
                    visit(node, prefix + name + "/")
                else:
                    result[prefix + name] = bytes(node.data)

        with self._lock:
            visit(self._root, "/")
        return result

    # -- tree access ---------------------------------------------------------------------------

    def _failer(self, action: str, path: str, target: str | None = None) -> _Fail:
        def fail(code: int) -> FerrymanError:
            exc = OSError(code, os.strerror(code), path)
            return translate_os_error(exc, action, path, target=target)

        return fail

    def _walk(self, parts: list[str], fail: _Fail) -> _Dir:
        node = self._root
        for part in parts:
            child = node.children.get(part)
            if child is None:
                raise fail(errno.ENOENT)
            if not isinstance(child, _Dir):
                raise fail(errno.ENOTDIR)
            node = child
        return node

    def _find(self, path: str, fail: _Fail) -> tuple[_Dir | None, str, _Dir | _File]:
        if not path:
            raise fail(errno.ENOENT)
        parts = _parts(path)
        if not parts:
            return None, "", self._root
        parent = self._walk(parts[:-1], fail)
        node = parent.children.get(parts[-1])
        if node is None:
            raise fail(errno.ENOENT)
        return parent, parts[-1], node

    def _entry(self, name: str, node: _Dir | _File) -> Entry:
        step = timedelta(seconds=self.capabilities.mtime_precision)
        mtime = _EPOCH + (node.mtime - _EPOCH) // step * step
        kind = EntryType.DIR if isinstance(node, _Dir) else EntryType.FILE
        return Entry(
            name=name,
            type=kind,
            size=len(node.data) if isinstance(node, _File) else None,
            mtime=mtime,
            mtime_precision=self.capabilities.mtime_precision,
            permissions="drwxr-xr-x" if kind is EntryType.DIR else "-rw-r--r--",
        )

    # -- the Backend interface -----------------------------------------------------------------

    def list(self, path: str) -> list[Entry]:
        fail = self._failer("list directory", path)
        with self._lock:
            self._enter("list", path)
            node = self._find(path, fail)[2]
            if not isinstance(node, _Dir):
                raise fail(errno.ENOTDIR)
            return [self._entry(name, child) for name, child in sorted(node.children.items())]

    def stat(self, path: str) -> Entry:
        with self._lock:
            self._enter("stat", path)
            return self._entry(_entry_name(path), self._find(path, self._failer("stat", path))[2])

    def open_read(self, path: str, offset: int = 0) -> MemoryReadStream:
        _check_offset(offset)
        fail = self._failer("open for reading", path)
        with self._lock:
            self._enter("open_read", path)
            if offset and not self.capabilities.resume_read:
                raise NotSupportedError(f"{self.describe()} cannot read from an offset")
            node = self._find(path, fail)[2]
            if isinstance(node, _Dir):
                raise fail(errno.EISDIR)
            if offset > len(node.data):
                raise _offset_beyond_end(path, len(node.data), offset, writing=False)
            cut = self._take(self._read_cuts, "read", (_key(path),))
            return MemoryReadStream(self, node, path, offset, None if cut is None else cut.nbytes)

    def open_write(self, path: str, offset: int = 0) -> MemoryWriteStream:
        _check_offset(offset)
        action = "open for continued writing" if offset else "open for writing"
        fail = self._failer(action, path)
        with self._lock:
            self._enter("open_write", path)
            if offset and not self.capabilities.resume_write:
                raise NotSupportedError(f"{self.describe()} cannot write at an offset")
            parts = _parts(path) if path else []
            if not parts:
                raise fail(errno.EISDIR if path else errno.ENOENT)
            parent, now = self._walk(parts[:-1], fail), self._clock()
            node = parent.children.get(parts[-1])
            if isinstance(node, _Dir):
                raise fail(errno.EISDIR)
            if node is None:
                if offset:
                    raise fail(errno.ENOENT)
                node = parent.children[parts[-1]] = _File(now)
                parent.mtime = now
            elif len(node.data) < offset:
                raise _offset_beyond_end(path, len(node.data), offset, writing=True)
            del node.data[offset:]
            node.mtime = now
            cut = self._take(self._write_cuts, "write", (_key(path),))
            return MemoryWriteStream(self, node, path, offset, None if cut is None else cut.nbytes)

    def mkdir(self, path: str) -> None:
        fail = self._failer("create directory", path)
        with self._lock:
            self._enter("mkdir", path)
            parts = _parts(path) if path else []
            if not parts:
                raise fail(errno.EEXIST if path else errno.ENOENT)
            parent, now = self._walk(parts[:-1], fail), self._clock()
            if parts[-1] in parent.children:
                raise fail(errno.EEXIST)
            parent.children[parts[-1]] = _Dir(now)
            parent.mtime = now

    def rmdir(self, path: str) -> None:
        fail = self._failer("remove directory", path)
        with self._lock:
            self._enter("rmdir", path)
            parent, name, node = self._find(path, fail)
            if parent is None:
                raise fail(errno.EBUSY)
            if not isinstance(node, _Dir):
                raise fail(errno.ENOTDIR)
            if node.children:
                raise fail(errno.ENOTEMPTY)
            del parent.children[name]
            parent.mtime = self._clock()

    def remove(self, path: str) -> None:
        fail = self._failer("remove file", path)
        with self._lock:
            self._enter("remove", path)
            parent, name, node = self._find(path, fail)
            if parent is None or isinstance(node, _Dir):
                raise fail(errno.EISDIR)
            del parent.children[name]
            parent.mtime = self._clock()

    def rename(self, source: str, target: str) -> None:
        """Like ``os.replace``; without ``atomic_rename_replace`` an existing target fails."""
        fail = self._failer("rename", source, target)
        with self._lock:
            self._enter("rename", source, target)
            source_parent, source_name, node = self._find(source, fail)
            target_parts = _parts(target) if target else []
            if not target_parts:
                raise fail(errno.EBUSY if target else errno.ENOENT)
            target_parent = self._walk(target_parts[:-1], fail)
            if source_parent is None:
                raise fail(errno.EBUSY)
            source_key, target_key = _key(source), _key(target)
            if source_key == target_key:
                return
            if isinstance(node, _Dir) and target_key.startswith(source_key + "/"):
                raise fail(errno.EINVAL)
            existing = target_parent.children.get(target_parts[-1])
            if existing is not None:
                if not self.capabilities.atomic_rename_replace:
                    raise fail(errno.EEXIST)
                if isinstance(node, _Dir) and not isinstance(existing, _Dir):
                    raise fail(errno.ENOTDIR)
                if isinstance(existing, _Dir) and not isinstance(node, _Dir):
                    raise fail(errno.EISDIR)
                if isinstance(existing, _Dir) and existing.children:
                    raise fail(errno.ENOTEMPTY)
            del source_parent.children[source_name]
            target_parent.children[target_parts[-1]] = node
            source_parent.mtime = target_parent.mtime = self._clock()

    def hash(self, path: str, algorithm: str) -> str:
        fail = self._failer(f"compute the {algorithm} hash of", path)
        with self._lock:
            self._enter("hash", path)
            if algorithm not in self.capabilities.hashes:
                return super().hash(path, algorithm)
            node = self._find(path, fail)[2]
            if isinstance(node, _Dir):
                raise fail(errno.EISDIR)
            return hashlib.new(algorithm, bytes(node.data)).hexdigest()

    def set_mtime(self, path: str, mtime: datetime) -> None:
        with self._lock:
            self._enter("set_mtime", path)
            if not self.capabilities.set_mtime:
                super().set_mtime(path, mtime)
            _mtime_ns(mtime)  # refuses naive datetimes, as LocalBackend does
            node = self._find(path, self._failer("set the modification time of", path))[2]
            node.mtime = mtime.astimezone(UTC)
