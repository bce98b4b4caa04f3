"""Waiting for files to arrive: list what a glob matches, and tell which files stopped changing.

Shared by ``ferryman serve``'s file triggers and the Airflow sensor and trigger
(``ferryman.airflow``), so that "a file counts once its size and time stayed the same for N
seconds" means the same everywhere. The listing goes through :func:`build_plan` (globs,
filters, recursion), as a transfer of the same path would see it.
"""

from __future__ import annotations

import posixpath
from datetime import datetime

from ..backends.base import Backend
from ..errors import NotFoundError
from .filters import Filters
from .plan import build_plan, split_glob

__all__ = ["Listing", "Stability", "list_arrivals", "watched_glob"]

#: path -> (size, modification time), as the server lists it
Listing = dict[str, tuple[int | None, datetime | None]]


def watched_glob(path: str) -> str:
    """The glob a watch lists: ``path`` itself when it has a pattern, else its files."""
    if split_glob(path)[1] is None:
        return posixpath.join(path, "*")
    return path


def list_arrivals(
    backend: Backend, path: str, *, filters: Filters | None = None, recursive: bool = False
) -> Listing:
    """The files ``path`` (a glob, or a directory: its files) matches now; a missing
    directory lists as nothing, so a watch may start before the partner creates it."""
    try:
        plan = build_plan(backend, watched_glob(path), recursive=recursive, filters=filters)
    except NotFoundError:
        return {}
    return {item.source: (item.entry.size, item.entry.mtime) for item in plan.items}


class Stability:
    """Which listed files kept their size and time for ``stable_for`` seconds.

    Feed it each listing with :meth:`update` (``now`` from :func:`time.monotonic`); files that
    vanish are forgotten, so memory follows what the directory holds."""

    def __init__(self, stable_for: float) -> None:
        self.stable_for = stable_for
        #: path -> (size, time, monotonic instant since which they are unchanged)
        self.seen: dict[str, tuple[int | None, datetime | None, float]] = {}

    def update(self, listed: Listing, now: float) -> tuple[list[str], float]:
        """The stable paths of ``listed``; and the seconds until the next file still
        settling becomes stable (0: none is settling)."""
        seen, stable, settling = {}, [], 0.0
        for path, (size, mtime) in listed.items():
            before = self.seen.get(path)
            since = before[2] if before is not None and before[:2] == (size, mtime) else now
            seen[path] = (size, mtime, since)
            left = self.stable_for - (now - since)
            if left > 0:
                settling = min(settling, left) if settling else left
            else:
                stable.append(path)
        self.seen = seen
        return stable, settling
