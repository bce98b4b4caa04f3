"""Remote directories for the transfer engine: ``mkdir -p``, archiving a source, and the
destination's entries known from one listing per directory."""

from __future__ import annotations

import posixpath
import threading
from collections import Counter
from datetime import UTC, datetime

from ..backends.base import Backend, Entry
from ..errors import FerrymanError, NotFoundError, TargetExistsError
from .copy import exists

__all__ = ["TargetIndex", "archive", "ensure_directory", "stat_or_none"]


def stat_or_none(backend: Backend, path: str) -> Entry | None:
    try:
        return backend.stat(path)
    except NotFoundError:
        return None


def archive(backend: Backend, path: str, relative: str, archive_dir: str) -> str:
    """Move ``path`` to ``archive_dir/relative`` (directories made as needed) and return
    where it went; an archived file of that name is never overwritten: the newcomer gets a
    time-stamp suffix."""
    archived = posixpath.join(archive_dir, relative)
    ensure_directory(backend, posixpath.dirname(archived))
    if exists(backend, archived):
        archived += "." + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backend.rename(path, archived)
    return archived


def ensure_directory(backend: Backend, path: str) -> None:
    """``mkdir -p``: create ``path`` and its missing parents."""
    if path in ("", ".", "/"):
        return
    entry = stat_or_none(backend, path)
    if entry is not None:
        if not entry.is_dir:
            raise TargetExistsError(
                f"{path} exists on {backend.describe()} but is not a directory",
                hint="rename that file or choose another destination",
            )
        return
    ensure_directory(backend, posixpath.dirname(path.rstrip("/")))
    try:
        backend.mkdir(path)
    except FerrymanError:
        if not (made := stat_or_none(backend, path)) or not made.is_dir:
            raise  # another worker may have made it meanwhile; anything else is an error


class TargetIndex:
    """The destination's entries, one listing per directory instead of a stat per file
    (many small files: one round trip saved for each)."""

    #: fewer files than this in a directory: a stat each is cheaper than listing it
    MIN_FILES = 8

    def __init__(self, targets: list[str]) -> None:
        self._counts = Counter(posixpath.dirname(t) for t in targets)
        self._dirs: dict[str, dict[str, Entry] | None] = {}
        self._lock = threading.Lock()

    def lookup(self, backend: Backend, path: str) -> Entry | None:
        directory, name = posixpath.split(path)
        if self._counts[directory] < self.MIN_FILES:
            return stat_or_none(backend, path)
        with self._lock:
            if directory not in self._dirs:
                self._dirs[directory] = self._list(backend, directory)
            entries = self._dirs[directory]
        if entries is None:  # the directory could not be listed: ask about the file itself
            return stat_or_none(backend, path)
        return entries.get(name)

    @staticmethod
    def _list(backend: Backend, directory: str) -> dict[str, Entry] | None:
        try:
            return {e.name: e for e in backend.list(directory or ".")}
        except NotFoundError:
            return {}
        except FerrymanError:
            return None
