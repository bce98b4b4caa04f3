"""Several small files in flight per worker thread: reads opened ahead (issue 19).

Over a long round trip many small files must be in flight at once (``transfer.inflight``).
With a thread per file, a hundred threads take turns on the interpreter lock: every local
system call (open, lock, write, rename) hands it over, and the measured cost was some 130
futex calls per file, more CPU than the copy itself. When the source declares
``Capabilities.read_ahead`` (SFTP: one connection holds many open reads, and opening one
returns at once while the server answers), a worker instead takes a *window* of files: each
one's policy decision is made as before, then its read is opened at once, and the worker
copies them one after another, each with the same ``copy_file`` (claim, verify, publish by
rename, retries), while the next ones' data is already on its way. Fewer threads hold the same
number of files in flight.

Only what a read from byte 0 serves is opened ahead: small binary files (at most
:data:`MAX_SIZE`, so a window's buffers stay small), not resumed, not segmented. On a short
round trip (few files in flight) nothing changes: one file per worker.
"""

from __future__ import annotations

import math

from ..backends.base import Backend, Entry
from .inflight import LOCAL_PARALLEL
from .segment_plan import segment_count

__all__ = ["MAX_SIZE", "WINDOW", "opens_ahead", "workers_and_window"]

#: files one worker holds in flight when it reads ahead
WINDOW = 16
#: the largest file opened ahead (its read-ahead buffers are held while it waits its turn)
MAX_SIZE = 1024 * 1024


def workers_and_window(parallel: int, src: Backend, *, binary: bool) -> tuple[int, int]:
    """(worker threads, files each holds in flight) for ``parallel`` files in flight."""
    if parallel <= LOCAL_PARALLEL or not binary or not src.capabilities.read_ahead:
        return parallel, 1
    workers = max(LOCAL_PARALLEL, math.ceil(parallel / WINDOW))
    return workers, math.ceil(parallel / workers)


def opens_ahead(
    entry: Entry,
    offset: int,
    src: Backend,
    dst: Backend,
    *,
    segments: int,
    segment_min_size: int,
) -> bool:
    """Whether a copy of ``entry`` starting at ``offset`` may have its read opened ahead."""
    return (
        not offset
        and entry.size is not None
        and entry.size <= MAX_SIZE
        and src.capabilities.read_ahead
        and segment_count(segments, segment_min_size, src, dst, entry) == 1
    )
