"""File-arrival triggers: watch a glob on a connection or the local disk, fire when enough new,
stable files are there.

Each trigger lists its place on its own thread (a slow or unreachable server delays only
that trigger), through the same backends and connection retries as a job's steps. A file
counts when:

- it is **stable**: its size and time stayed the same for ``stable_for`` seconds (a file
  still being written is passed over until it stops changing);
- it is **new**: the only-new ledger of the job has not got it (same connection key, path,
  size and time as ``only_new`` uses), so a file taken by a succeeded run never triggers
  again, across restarts too; the run that a trigger starts enters its files into the ledger
  when it succeeds (:class:`ferryman.jobs.context.Trigger`);
- it is not in a run now, nor in a run that failed less than ``retry_failed_after`` seconds
  ago (unchanged).

Local directories are watched with inotify where available (:mod:`.inotify`): a change wakes
the trigger at once; it still lists the directory to decide.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ..errors import FerrymanError
from ..jobs.context import Endpoint, LedgerRecord, RunContext, Trigger
from ..jobs.loader import LoadedJob
from ..jobs.unattended import FileTrigger
from ..state import StateStore
from ..transfer import split_glob
from ..transfer.arrivals import Stability, list_arrivals, watched_glob
from .inotify import DirectoryWatch, watch_directory

__all__ = ["FileWatch"]

log = logging.getLogger("ferryman.serve")

Key = tuple[str, int | None, datetime | None]
#: ``fire(watch, trigger)``: True when a run was started or queued for the files
Fire = Callable[["FileWatch", Trigger], bool]


class FileWatch:
    """One trigger of one job; :meth:`start` its thread, :meth:`stop` it."""

    def __init__(
        self, loaded: LoadedJob, index: int, trigger: FileTrigger, state: Path, fire: Fire
    ) -> None:
        self.job = loaded.job.name
        self.index = index
        self.trigger = trigger
        self.state = state
        self.fire = fire
        self.ctx = RunContext(loaded)
        self.endpoint: Endpoint = self.ctx.endpoint(trigger.path)
        self.stability = Stability(trigger.stable_for)
        self.in_flight: set[Key] = set()
        self.failed: dict[Key, float] = {}
        self.last_error: str | None = None
        self.polls = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def glob(self) -> str:
        return watched_glob(self.endpoint.path)

    def describe(self) -> str:
        trigger = self.trigger
        return f"{trigger.path} (min {trigger.min_count}, stable {trigger.stable_for:g} s)"

    # --- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"trigger-{self.job}-{self.index}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        watch: DirectoryWatch | None = None
        if not self.endpoint.remote:
            watch = watch_directory(Path(split_glob(self.glob)[0] or "."))
        try:
            while not self._stop.is_set():
                wait = self.check()
                deadline = time.monotonic() + wait
                while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                    if watch is not None:
                        if watch.wait(min(left, 0.5)):
                            break  # something changed: look now
                    else:
                        self._stop.wait(min(left, 0.5))
        finally:
            if watch is not None:
                watch.close()

    # --- one look --------------------------------------------------------------------------

    def _listing(self) -> dict[str, tuple[int | None, datetime | None]]:
        with self.ctx.backend(self.endpoint) as backend:
            return list_arrivals(backend, self.endpoint.path)

    def check(self) -> float:
        """List once, fire when due; returns the seconds until the next look."""
        poll = self.trigger.poll
        try:
            listed = self._listing()
        except FerrymanError as err:
            if err.message != self.last_error:
                log.warning(
                    "trigger %s of job %s cannot list: %s",
                    self.trigger.path,
                    self.job,
                    err,
                    extra={"event": "trigger_error", "job": self.job},
                )
            self.last_error = err.message
            return poll
        if self.last_error is not None:
            log.info("trigger %s of job %s lists again", self.trigger.path, self.job)
            self.last_error = None
        self.polls += 1
        now = time.monotonic()
        stable, settling = self._stable(listed, now)
        if settling:
            poll = min(poll, settling + 0.05)
        if stable:
            self._maybe_fire(stable)
        return poll

    def _stable(
        self, listed: dict[str, tuple[int | None, datetime | None]], now: float
    ) -> tuple[list[Key], float]:
        """The stable files not in a run nor failed lately; and the seconds until the next
        file still settling becomes stable (0: none)."""
        stable = []
        with self._lock:
            ready, settling = self.stability.update(listed, now)
            for path in ready:
                key = (path, *listed[path])
                failed = self.failed.get(key)
                if failed is not None and now - failed < self.trigger.retry_failed_after:
                    continue
                if key not in self.in_flight:
                    stable.append(key)
            self.failed = {k: t for k, t in self.failed.items() if k[0] in listed}
        return stable, settling

    def _maybe_fire(self, stable: list[Key]) -> None:
        with StateStore(self.state) as store:
            fresh = store.filter_new(self.job, self.endpoint.key, stable)
        if len(fresh) < self.trigger.min_count:
            return
        files = tuple(LedgerRecord(self.endpoint.key, p, s, m) for p, s, m in fresh)
        trigger = Trigger(
            kind="files",
            time=datetime.now(UTC).isoformat(timespec="seconds"),
            path=self.trigger.path,
            files=files,
        )
        with self._lock:
            self.in_flight.update(fresh)
        if not self.fire(self, trigger):
            with self._lock:
                self.in_flight.difference_update(fresh)

    def done(self, trigger: Trigger, succeeded: bool) -> None:
        """The run for ``trigger`` ended: its files are free again (and, when it failed, rest
        for ``retry_failed_after`` seconds unless they change)."""
        keys = [(f.path, f.size, f.mtime) for f in trigger.files]
        now = time.monotonic()
        with self._lock:
            self.in_flight.difference_update(keys)
            if not succeeded:
                self.failed.update((k, now) for k in keys)
