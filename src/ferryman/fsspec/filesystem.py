"""ferryman's FTP, FTPS and SFTP backends as fsspec filesystems: the common class.

One subclass per protocol name (:mod:`.protocols`) says what the protocol means. Metadata
calls borrow a connection from the filesystem's :class:`~.pool.BackendPool`; listings are
cached in fsspec's ``dircache`` and invalidated by every write; bulk ``get``/``put``/``copy``
run on the transfer engine (:mod:`.bulk`); files are :class:`~.files.FerrymanFile`. Errors
leave as classes that are ferryman's and the built-in ones at once (:mod:`.errors`).
"""

from __future__ import annotations

import posixpath
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from fsspec.spec import AbstractFileSystem

from ..backends.base import Backend, Entry, EntryType
from ..errors import FerrymanError, NotFoundError, RemoteError
from ..transfer.copy import HASH_PREFERENCE
from ..transfer.engine import ensure_directory
from . import bulk
from .errors import FileExists, FileNotFound, IsADirectory, NotADirectory, translated
from .files import FerrymanFile
from .options import FSSPEC_OPTIONS, Scheme, connection_for, strip_url, url_options
from .pool import BackendPool

__all__ = ["FerrymanFileSystem"]

_TYPES = {EntryType.FILE: "file", EntryType.DIR: "directory", EntryType.LINK: "link"}


def _with_roots(path: str) -> str:
    """Relative paths are below the login directory, as on the command line: ``~/x``."""
    if path in ("", "."):
        return "~"
    if path.startswith(("/", "~")):
        return path
    return "~/" + path.removeprefix("./")


def _parallel(value: int | str | None) -> int | None:
    """``parallel`` as given in storage options: a number (also as text), or auto/None."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(
            f"parallel={value!r}: give a number of files in flight, or 'auto'"
        ) from None
    return max(1, number)


class FerrymanFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Files on one FTP, FTPS or SFTP server, through ferryman's backends.

    Parameters are connection settings named as in the connections file (``host``, ``port``,
    ``user``, ``password`` / ``password_env`` / ``password_file``, ``ca_file``,
    ``fingerprint``, ``known_hosts``, ``private_key``, ``timeout``, ``passive``, ...), or
    ``connection="NAME"`` (with ``connections_file``) for a named connection, plus
    ``parallel``: files a bulk ``get``/``put``/``copy`` has in flight (default ``"auto"``:
    chosen from the measured round trip, as the CLI's ``--parallel auto``), and fsspec's own
    listings-cache options. Certificates and host keys are verified, as everywhere.
    """

    scheme: ClassVar[Scheme]
    root_marker = "/"
    cachable = True
    blocksize = 4 * 2**20  #: read-ahead and write buffer of open files

    def __init__(
        self,
        host: str | None = None,
        *,
        connection: str | None = None,
        connections_file: str | Path | None = None,
        parallel: int | str | None = "auto",
        **options: Any,
    ) -> None:
        fsspec_options = {k: options.pop(k) for k in list(options) if k in FSSPEC_OPTIONS}
        super().__init__(**fsspec_options)
        if host is not None:
            options["host"] = host
        with translated():
            self.connection = connection_for(
                self.scheme, options, connection=connection, connections_file=connections_file
            )
        #: files in flight in bulk calls; None: chosen from the round trip (transfer.inflight)
        self.parallel: int | None = _parallel(parallel)
        self.pool = BackendPool(self.connection)
        #: directories this filesystem made or found, so writes below them ask no more
        self._directories: set[str] = set()
        #: cached listings by name, each beside the listing it was made from
        self._indexes: dict[str, tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]] = {}
        weakref.finalize(self, self.pool.close)  # QUIT when collected or at exit

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.connection.describe()}>"

    # -- paths -------------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        with translated():
            return _with_roots(strip_url(str(path)))

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        with translated():
            return url_options(path)

    @classmethod
    def _parent(cls, path: str) -> str:
        path = cls._strip_protocol(path)
        if path in ("/", "~"):
            return path
        parent = posixpath.dirname(path)
        return parent or "/"

    def unstrip_protocol(self, name: str) -> str:
        scheme = self.protocol[0] if isinstance(self.protocol, tuple) else self.protocol
        shown = "/" + name if name == "~" or name.startswith("~/") else name
        return f"{scheme}://{self.connection.host}:{self.connection.port}{shown}"

    # -- listings ----------------------------------------------------------------------------

    def _info(self, directory: str, entry: Entry, backend: Backend) -> dict[str, Any]:
        path = posixpath.join(directory, entry.name)
        if entry.type is EntryType.LINK:  # what it points to decides file or directory
            try:
                entry = backend.stat(path)
            except FerrymanError:
                pass  # a dangling link stays a "link"
        info: dict[str, Any] = {
            "name": path,
            "size": entry.size or 0,
            "type": _TYPES.get(entry.type, "other"),
            "mtime": entry.mtime.timestamp() if entry.mtime else None,
        }
        if entry.permissions:
            info["permissions"] = entry.permissions
        return info

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        listing = self.dircache.get(path)
        if listing is None:
            listing = self.pool.call(f"listing {path}", lambda b: self._list(b, path))
        return listing if detail else sorted(info["name"] for info in listing)

    def _list(self, backend: Backend, path: str) -> list[dict[str, Any]]:
        with translated():
            try:
                entries = backend.list(path)
            except RemoteError as err:  # a file, or nothing: stat says which
                entry = self._stat(backend, path, err)
                if entry.is_dir:
                    raise
                return [self._info(posixpath.dirname(path), entry, backend)]
            if _maybe_the_file_itself(path, entries):  # LIST of a file names the file (vsftpd)
                entry = self._stat(backend, path)
                if not entry.is_dir:
                    return [self._info(posixpath.dirname(path), entry, backend)]
            listing = [self._info(path, entry, backend) for entry in entries]
        self.dircache[path] = listing
        return listing

    @staticmethod
    def _stat(backend: Backend, path: str, err: FerrymanError | None = None) -> Entry:
        try:
            return backend.stat(path)
        except NotFoundError:
            raise FileNotFound(f"{path} does not exist on {backend.describe()}") from err

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if path in ("/", "~"):
            return {"name": path, "size": 0, "type": "directory", "mtime": None}
        parent = self._parent(path)
        siblings = self.dircache.get(parent)
        if siblings is not None:  # the parent's listing is cached: it tells
            index = self._indexes.get(parent)
            if index is None or index[0] is not siblings:  # by name: a bulk get asks per file
                index = (siblings, {info["name"]: info for info in siblings})
                self._indexes[parent] = index
            found = index[1].get(path)
            if found is None:
                raise FileNotFound(f"{path} does not exist on {self.pool.describe()}")
            return dict(found)

        def stat(backend: Backend) -> dict[str, Any]:
            with translated():
                entry = self._stat(backend, path)
                return self._info(posixpath.dirname(path), entry, backend)

        return self.pool.call(f"stat {path}", stat)

    def modified(self, path: str) -> datetime:
        mtime = self.info(path).get("mtime")
        if mtime is None:
            raise NotImplementedError(f"{self.pool.describe()} did not report a time for {path}")
        return datetime.fromtimestamp(mtime, UTC)

    def ensure_parent(self, backend: Backend, path: str) -> None:
        """Make the directory ``path`` goes in, if missing: fsspec writes create directories,
        as object stores do (the conformance suite writes ``a/b/file`` into nothing)."""
        parent = self._parent(path)
        if parent in self._directories or parent in self.dircache:
            return
        with translated():
            ensure_directory(backend, parent)
        self._directories.add(parent)

    def invalidate_cache(self, path: str | None = None) -> None:
        if path is None:
            self.dircache.clear()
            self._directories.clear()
            self._indexes.clear()
        else:
            path = self._strip_protocol(path)
            gone = {d for d in self._directories if d == path or d.startswith(path + "/")}
            self._directories -= gone
            while True:
                self.dircache.pop(path, None)
                parent = self._parent(path)
                if parent == path:
                    break
                path = parent
        super().invalidate_cache(path)

    # -- directories and files ---------------------------------------------------------------

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)

        def make(backend: Backend) -> None:
            with translated():
                try:
                    existing = backend.stat(path)
                except NotFoundError:
                    existing = None
                if existing is not None:
                    raise FileExists(f"{path} already exists on {backend.describe()}")
                if create_parents:
                    ensure_directory(backend, path)
                else:
                    backend.mkdir(path)

        self.pool.call(f"mkdir {path}", make)
        self.invalidate_cache(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if exist_ok and self.isdir(path):
            return
        self.mkdir(path, create_parents=True)

    def rmdir(self, path: str) -> None:
        path = self._strip_protocol(path)
        with translated():
            self.pool.call(f"rmdir {path}", lambda b: b.rmdir(path))
        self.invalidate_cache(path)

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        with translated():
            self.pool.call(f"delete {path}", lambda b: b.remove(path))
        self.invalidate_cache(path)

    _rm = rm_file

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        for p in reversed(paths):  # deepest first: files before their directories
            if self.isdir(p):
                self.rmdir(p)
            else:
                self.rm_file(p)

    def mv(
        self,
        path1: Any,
        path2: Any,
        recursive: bool = False,
        maxdepth: int | None = None,
        **kwargs: Any,
    ) -> None:
        """A server-side rename when one path names one path (a file, or a directory with
        ``recursive``); otherwise fsspec's copy, then delete."""
        single = isinstance(path1, str) and isinstance(path2, str) and not _magic(path1)
        if not single:
            super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)
            return
        source, target = self._strip_protocol(path1), self._strip_protocol(path2)
        if source == target:
            return
        if self.isdir(source) and not recursive:
            raise IsADirectory(f"{source} is a directory", hint="pass recursive=True to move it")
        if self.isdir(target):
            target = posixpath.join(target, posixpath.basename(source))
        with translated():
            self.pool.call(f"rename {source}", lambda b: _rename(b, source, target))
        self.invalidate_cache(source)
        self.invalidate_cache(target)

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> FerrymanFile:
        path = self._strip_protocol(path)
        if mode == "rb" and self.isdir(path):
            raise IsADirectory(f"{path} is a directory", hint="open a file in it")
        if mode == "xb" and self.exists(path):  # checked again just before the rename
            raise FileExists(f"{path} already exists on {self.pool.describe()}")
        return FerrymanFile(
            self,
            path,
            mode,
            block_size=block_size or self.blocksize,
            autocommit=autocommit,
            cache_options=cache_options,
            cache_type=kwargs.get("cache_type", "readahead"),
        )

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        with self.open(path, "rb", cache_type="none") as f:
            size = f.size
            begin = 0 if start is None else (start if start >= 0 else max(0, size + start))
            stop = size if end is None else (end if end >= 0 else max(0, size + end))
            return bytes(f._fetch_range(begin, min(stop, size)))

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        with self.open(path, "xb" if mode == "create" else "wb") as f:
            f.write(value)

    # -- hashes ------------------------------------------------------------------------------

    def _server_hash(self, path: str) -> tuple[str, str] | None:
        """(algorithm, hex digest) computed by the server, when it offers a hash."""
        path = self._strip_protocol(path)

        def ask(backend: Backend) -> tuple[str, str] | None:
            offered = backend.capabilities.hashes
            for algorithm in HASH_PREFERENCE:
                if algorithm in offered:
                    with translated():
                        return algorithm, backend.hash(path, algorithm).lower()
            return None

        return self.pool.call(f"hash {path}", ask)

    def checksum(self, path: str) -> int:
        """The server's hash of the file (SHA-256, ...) where it offers one; else fsspec's
        checksum of the listing (size and time)."""
        found = self._server_hash(path)
        if found is None:
            return int(super().checksum(path))
        return int(found[1][:32], 16)

    def ukey(self, path: str) -> str:
        found = self._server_hash(path)
        return f"{found[0]}:{found[1]}" if found else str(super().ukey(path))

    # -- bulk transfers, on the transfer engine ----------------------------------------------

    get = bulk.get
    get_file = bulk.get_file
    put = bulk.put
    put_file = bulk.put_file
    copy = bulk.copy
    cp_file = bulk.cp_file


def _maybe_the_file_itself(path: str, entries: list[Entry]) -> bool:
    """Whether a listing of ``path`` could be the server describing the file ``path`` (one
    non-directory entry of the same name) rather than a directory's contents."""
    return (
        len(entries) == 1
        and not entries[0].is_dir
        and entries[0].name == posixpath.basename(path.rstrip("/"))
    )


def _magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def _rename(backend: Backend, source: str, target: str) -> None:
    try:
        backend.rename(source, target)
    except NotFoundError:
        raise
    except RemoteError as err:
        try:
            entry = backend.stat(target)
        except NotFoundError:
            raise err from None
        if entry.is_dir:
            raise NotADirectory(f"{target} is a directory; {source} cannot replace it") from err
        backend.remove(target)  # this server renames over no file: a short window, no loss
        backend.rename(source, target)
