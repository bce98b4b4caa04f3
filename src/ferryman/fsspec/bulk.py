"""``get``, ``put`` and ``copy`` of the filesystems, run on ferryman's transfer engine.

fsspec decides *which* files go *where*: its own ``get``/``put``/``copy`` expand globs,
recursion and trailing slashes into (source, target) pairs, exactly as every fsspec
filesystem does (the conformance suite checks those rules). ferryman decides *how*: the
pairs are collected instead of copied one by one (fsspec passes our keyword through to
``get_file``/``put_file``/``cp_file``), and then run as one batch on
:func:`ferryman.transfer.run_jobs`: parallel connections, temporary names published only
when verified (size, and the server's hash where it offers one), retries that resume.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback, NoOpCallback
from fsspec.spec import AbstractFileSystem

from ..backends.base import Backend, Entry, EntryType
from ..backends.local import LocalBackend
from ..retry import with_retries
from ..transfer.engine import Job, TransferOptions, ensure_directory, run_jobs
from ..transfer.plan import PlanItem
from ..transfer.policy import IfExists
from ..transfer.report import FileOutcome, Status, Summary
from .errors import as_builtin, translated

if TYPE_CHECKING:
    from .filesystem import FerrymanFileSystem

__all__ = ["copy", "cp_file", "get", "get_file", "put", "put_file"]

#: the keyword that makes fsspec's per-file calls collect their pair instead of copying
_COLLECT = "_ferryman_batch"


@dataclass
class Batch:
    """The pairs fsspec planned, and the directories it wants made on the destination."""

    pairs: list[tuple[str, str, Entry]] = field(default_factory=list)
    directories: list[str] = field(default_factory=list)


class _Progress:
    """fsspec's callback, advanced by one for each file the engine finishes."""

    def __init__(self, callback: Callback) -> None:
        self.callback = callback

    def started(self, job: Job, offset: int) -> None:
        pass

    def advanced(self, job: Job, nbytes: int) -> None:
        pass

    def finished(self, outcome: FileOutcome) -> None:
        self.callback.relative_update(1)


def _entry(info: dict[str, Any]) -> Entry:
    mtime = info.get("mtime")
    return Entry(
        name=posixpath.basename(info["name"]),
        type=EntryType.FILE,
        size=info.get("size"),
        mtime=datetime.fromtimestamp(mtime, UTC) if mtime is not None else None,
    )


def _local_entry(path: str) -> Entry:
    st = os.stat(path)
    return Entry(
        os.path.basename(path), EntryType.FILE, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
    )


def _options(fs: FerrymanFileSystem) -> TransferOptions:
    """fsspec replaces existing targets; ferryman verifies and retries as configured."""
    return TransferOptions(
        if_exists=IfExists.OVERWRITE,
        parallel=fs.parallel,
        retry=fs.pool.policy,
        chunk_size=fs.connection.chunk_size,
    )


def _run(
    fs: FerrymanFileSystem,
    batch: Batch,
    source: Backend,
    destination: Backend,
    callback: Callback,
    on_error: str = "raise",
) -> Summary:
    jobs = [
        Job(PlanItem(src, posixpath.basename(src), entry), dst) for src, dst, entry in batch.pairs
    ]
    parents = sorted(
        {posixpath.dirname(job.target) or "." for job in jobs} | set(batch.directories)
    )
    callback.set_size(len(jobs))
    with translated():
        for directory in sorted(parents):
            with_retries(
                lambda d=directory: ensure_directory(destination, d),  # type: ignore[misc]
                fs.pool.policy,
                f"making directory {directory}",
            )
        summary = run_jobs(
            jobs,
            source,
            destination,
            _options(fs),
            events=_Progress(callback),
            lenders=(
                None if isinstance(source, LocalBackend) else fs.pool,
                None if isinstance(destination, LocalBackend) else fs.pool,
            ),
        )
    failed = [f for f in summary.files if f.status is Status.FAILED and f.error is not None]
    if failed and not (on_error == "ignore" and all(_missing(f) for f in failed)):
        error = failed[0].error
        assert error is not None
        raise as_builtin(error) from error
    return summary


def _missing(outcome: FileOutcome) -> bool:
    return isinstance(as_builtin(outcome.error), FileNotFoundError) if outcome.error else False


# -- get: server -> local disk ---------------------------------------------------------------


def get(
    self: FerrymanFileSystem,
    rpath: Any,
    lpath: Any,
    recursive: bool = False,
    callback: Callback = DEFAULT_CALLBACK,
    maxdepth: int | None = None,
    **kwargs: Any,
) -> None:
    """Copy remote files to the local disk (fsspec's rules for which and where)."""
    batch = Batch()
    AbstractFileSystem.get(
        self, rpath, lpath, recursive, NoOpCallback(), maxdepth, **{_COLLECT: batch}, **kwargs
    )
    if not batch.pairs:
        return
    with self.pool.backend() as backend:
        _run(self, batch, backend, LocalBackend(), callback)


def get_file(
    self: FerrymanFileSystem,
    rpath: str,
    lpath: str,
    callback: Callback = DEFAULT_CALLBACK,
    outfile: Any = None,
    **kwargs: Any,
) -> None:
    """One remote file to ``lpath`` (a directory is made locally)."""
    batch: Batch | None = kwargs.pop(_COLLECT, None)
    rpath = self._strip_protocol(rpath)
    if outfile is not None:  # fsspec's file-object form: stream into it
        with self.open(rpath, "rb") as f:
            while chunk := f.read(self.blocksize):
                outfile.write(chunk)
        return
    info = self.info(rpath)
    if info["type"] == "directory":
        os.makedirs(lpath, exist_ok=True)
        return
    pair = (rpath, os.fspath(lpath), _entry(info))
    if batch is not None:
        batch.pairs.append(pair)
        return
    with self.pool.backend() as backend:
        _run(self, Batch([pair]), backend, LocalBackend(), callback)


# -- put: local disk -> server ---------------------------------------------------------------


def put(
    self: FerrymanFileSystem,
    lpath: Any,
    rpath: Any,
    recursive: bool = False,
    callback: Callback = DEFAULT_CALLBACK,
    maxdepth: int | None = None,
    **kwargs: Any,
) -> None:
    """Copy local files to the server (fsspec's rules for which and where)."""
    batch = Batch()
    AbstractFileSystem.put(
        self, lpath, rpath, recursive, NoOpCallback(), maxdepth, **{_COLLECT: batch}, **kwargs
    )
    _put_batch(self, batch, callback)


def _put_batch(self: FerrymanFileSystem, batch: Batch, callback: Callback) -> None:
    if not batch.pairs and not batch.directories:
        return
    try:
        with self.pool.backend() as backend:
            _run(self, batch, LocalBackend(), backend, callback)
    finally:
        self.invalidate_cache()


def put_file(
    self: FerrymanFileSystem,
    lpath: str,
    rpath: str,
    callback: Callback = DEFAULT_CALLBACK,
    mode: str = "overwrite",
    **kwargs: Any,
) -> None:
    """One local file to ``rpath`` (a directory is made on the server)."""
    batch: Batch | None = kwargs.pop(_COLLECT, None)
    rpath = self._strip_protocol(rpath)
    lpath = os.fspath(lpath)
    if os.path.isdir(lpath):
        if batch is not None:
            batch.directories.append(rpath)
        else:
            self.makedirs(rpath, exist_ok=True)
        return
    if mode == "create" and self.exists(rpath):
        raise FileExistsError(rpath)
    pair = (lpath, rpath, _local_entry(lpath))
    if batch is not None:
        batch.pairs.append(pair)
        return
    _put_batch(self, Batch([pair]), callback)


# -- copy: server -> the same server ---------------------------------------------------------


def copy(
    self: FerrymanFileSystem,
    path1: Any,
    path2: Any,
    recursive: bool = False,
    maxdepth: int | None = None,
    on_error: str | None = None,
    **kwargs: Any,
) -> None:
    """Copy files on the server (through this machine: FTP and SFTP have no server-side
    copy), with fsspec's rules for which and where."""
    batch = Batch()
    AbstractFileSystem.copy(
        self, path1, path2, recursive, maxdepth, on_error, **{_COLLECT: batch}, **kwargs
    )
    if not batch.pairs and not batch.directories:
        return
    if on_error is None:
        on_error = "ignore" if recursive else "raise"
    try:
        with self.pool.backend() as source, self.pool.backend() as destination:
            _run(self, batch, source, destination, DEFAULT_CALLBACK, on_error)
    finally:
        self.invalidate_cache()


def cp_file(self: FerrymanFileSystem, path1: str, path2: str, **kwargs: Any) -> None:
    batch: Batch | None = kwargs.pop(_COLLECT, None)
    path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
    info = self.info(path1)
    if info["type"] == "directory":
        if batch is not None:
            batch.directories.append(path2)
        else:
            self.makedirs(path2, exist_ok=True)
        return
    pair = (path1, path2, _entry(info))
    if batch is None:
        batch = Batch([pair])
        with self.pool.backend() as source, self.pool.backend() as destination:
            _run(self, batch, source, destination, DEFAULT_CALLBACK)
        self.invalidate_cache(path2)
        return
    batch.pairs.append(pair)
