"""Progress of a many-file transfer on a terminal: one bar per active file and a total."""

from __future__ import annotations

import posixpath
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..terminal import safe_text
from ..transfer import Events, FileOutcome, Job

if TYPE_CHECKING:  # rich is loaded only when bars are drawn (about 20 ms of start-up)
    from rich.progress import Progress, TaskID

__all__ = ["BarEvents", "transfer_progress"]


def _shown(name: str) -> str:
    """A server's file name as a bar label: control characters spelled out, and ``[`` not
    taken as rich markup (``[blink]`` in a name is text)."""
    from rich.markup import escape  # noqa: PLC0415 - rich is loaded only for bars

    return escape(safe_text(name))


class BarEvents:
    """:class:`ferryman.transfer.Events` drawn with rich on stderr."""

    def __init__(self, bar: Progress, files: int, total_bytes: int) -> None:
        self.bar = bar
        self.files = files
        self.done = 0
        self.total = bar.add_task(self._label(), total=total_bytes or None)
        self.tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def _label(self) -> str:
        return f"total {self.done}/{self.files} files"

    def started(self, job: Job, offset: int) -> None:
        with self._lock:
            task = self.tasks.get(job.target)
            name = _shown(posixpath.basename(job.item.source))
            if task is None:
                size = job.item.entry.size
                self.tasks[job.target] = self.bar.add_task(f"  {name}", total=size)
            else:  # a retry: start again from where the copy continues
                self.bar.reset(task, completed=offset)
                self.bar.update(task, description=f"  {name} (retry)")

    def advanced(self, job: Job, nbytes: int) -> None:
        task = self.tasks.get(job.target)
        if task is not None:
            self.bar.advance(task, nbytes)
        self.bar.advance(self.total, nbytes)

    def finished(self, outcome: FileOutcome) -> None:
        with self._lock:
            task = self.tasks.pop(outcome.target, None)
            if task is not None:
                self.bar.remove_task(task)
            self.done += 1
            self.bar.update(self.total, description=self._label())


@contextmanager
def transfer_progress(enabled: bool, files: int, total_bytes: int) -> Iterator[Events | None]:
    """Bars on a terminal (stderr) when ``enabled``; nothing otherwise."""
    if not enabled or not sys.stderr.isatty() or files == 0:
        yield None
        return
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        yield BarEvents(bar, files, total_bytes)
