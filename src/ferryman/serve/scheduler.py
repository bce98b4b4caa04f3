"""The core of ``ferryman serve``: the jobs, their schedules and triggers, the runs.

:class:`Scheduler` is an object with a small API that the command line drives today and a web
dashboard can drive later: :meth:`~Scheduler.jobs` (each job, its next times, whether it
runs), :meth:`~Scheduler.next_runs`, :meth:`~Scheduler.enable` / :meth:`~Scheduler.disable`,
:meth:`~Scheduler.run_now`, :meth:`~Scheduler.reload`, :meth:`~Scheduler.tick` (start what is
due; the clock is injectable) and :meth:`~Scheduler.shutdown`.

Runs go through the job runner in child processes (:mod:`.runs`), at most ``max_runs`` at
once, one per job at a time (the job's lock would refuse a second anyway). A schedule that
fires while its job runs is skipped or queued (``if_running``); a trigger whose job runs waits
and fires after. When a run ends its notifications are queued (:mod:`ferryman.notify`).
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from ..jobs.context import Trigger
from ..jobs.unattended import Notification, ServeSettings
from ..notify import Notifier, global_notifications
from ..notify.message import file_counts
from ..state import StateStore, state_path
from .jobset import JobEntry, Problem, load_jobs
from .runs import RunProcess, RunRequest
from .schedules import JobSchedule
from .triggers import FileWatch

__all__ = ["Clock", "Scheduler", "SystemClock"]

log = logging.getLogger("ferryman.serve")


class Clock(Protocol):
    def now(self) -> datetime:
        """The time now, aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


@dataclass
class _Job:
    entry: JobEntry
    state: Path
    schedules: list[JobSchedule] = field(default_factory=list)
    watches: list[FileWatch] = field(default_factory=list)
    running: RunProcess | None = None
    queue: deque[tuple[int, RunRequest]] = field(default_factory=deque)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def settings(self) -> ServeSettings:
        return self.entry.loaded.job.serve or ServeSettings()


class Scheduler:
    """See the module docstring. Thread-safe: every method may be called from any thread."""

    def __init__(
        self,
        sources: Iterable[Path],
        *,
        state: Path | None = None,
        max_runs: int = 4,
        clock: Clock | None = None,
        notify_file: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.sources = [Path(s) for s in sources]
        self.state = state
        self.max_runs = max_runs
        self.clock = clock or SystemClock()
        self.notify_file = notify_file
        self.python = python
        self.notifier = Notifier()
        self.problems: list[Problem] = []
        self.stopping = False
        self.counts: dict[str, int] = {}  #: finished runs by status
        self.started = 0
        self._global: list[tuple[Notification, Path]] = []
        self._jobs: dict[str, _Job] = {}
        self._disabled: set[str] = set()  #: by the API, kept across reloads
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self.wakeup = threading.Event()  #: set when something may be due (the loop waits on it)

    # --- loading ---------------------------------------------------------------------------

    def load(self) -> list[Problem]:
        """(Re)read the job files and the global notifications; returns the problems.

        Jobs whose file did not change keep their state; a file that no longer validates
        leaves its job out (its run, if any, goes on to its end)."""
        self._global = global_notifications(self.notify_file)
        jobs, problems = load_jobs(self.sources)
        now = self.clock.now()
        with self._lock:
            for name in set(self._jobs) - set(jobs):
                self._remove(name)
            for name, entry in jobs.items():
                old = self._jobs.get(name)
                same = old is not None and old.entry.path == entry.path
                if same and old is not None and old.entry.stamp == entry.stamp:
                    continue
                self._add(entry, now, old)
            self.problems = problems
        for problem in problems:  # one line each: every problem at its file:line:column
            lines = problem.message.split("\n")
            for line in lines[:-1]:
                log.error("%s", line, extra={"event": "invalid", "path": str(problem.path)})
            log.error(
                "%s%s (left out)",
                lines[-1],
                f" -- {problem.hint}" if problem.hint else "",
                extra={"event": "invalid", "path": str(problem.path)},
            )
        self.wakeup.set()
        return problems

    def reload(self) -> list[Problem]:
        """:meth:`load` again; a broken global notifications file keeps the previous one."""
        log.info("reloading the job files", extra={"event": "reload"})
        try:
            return self.load()
        except ConfigError as err:
            log.error("reload failed: %s", err, extra={"event": "invalid"})
            return [Problem(self.notify_file or Path("."), err.message, err.hint)]

    def _state_of(self, entry: JobEntry) -> Path:
        return self.state or state_path(entry.loaded.path, entry.loaded.job.state)

    def _add(self, entry: JobEntry, now: datetime, old: _Job | None) -> None:
        if old is not None:
            self._stop_watches(old)
        job = _Job(entry, self._state_of(entry))
        if old is not None:
            job.running, job.queue = old.running, old.queue
        job.schedules = [JobSchedule.of(s) for s in job.settings.schedules]
        self._jobs[job.name] = job
        self._catch_up(job, now)
        if self._enabled(job):
            for index, trigger in enumerate(job.settings.triggers):
                watch = FileWatch(entry.loaded, index, trigger, job.state, self._files_arrived)
                job.watches.append(watch)
                watch.start()
        nexts = [s.next for s in job.schedules if s.next is not None]
        log.info(
            "job %s loaded from %s: %d schedule(s), %d trigger(s)%s%s",
            job.name,
            entry.path,
            len(job.schedules),
            len(job.settings.triggers),
            f", next run {_iso(min(nexts))}" if nexts else "",
            "" if self._enabled(job) else " (disabled)",
            extra={
                "event": "loaded",
                "job": job.name,
                "path": str(entry.path),
                "next": _iso(min(nexts)) if nexts else None,
            },
        )

    def _remove(self, name: str) -> None:
        job = self._jobs.pop(name)
        self._stop_watches(job)
        log.info("job %s removed", name, extra={"event": "removed", "job": name})

    @staticmethod
    def _stop_watches(job: _Job) -> None:
        for watch in job.watches:
            watch.stop(timeout=0)
        job.watches = []

    def _enabled(self, job: _Job) -> bool:
        return job.settings.enabled and job.name not in self._disabled

    def _catch_up(self, job: _Job, now: datetime) -> None:
        """Each schedule's next time, and the runs for the times it missed (module docs of
        :mod:`.schedules`); the marks in the state file move up to now."""
        if not job.schedules:
            return
        with StateStore(job.state) as store:
            for schedule in job.schedules:
                mark = store.schedule_mark(job.name, schedule.key)
                missed = schedule.missed(mark, now) if mark is not None else []
                policy = job.settings.catch_up
                if missed and self._enabled(job) and policy != "none":
                    chosen = missed if policy == "all" else missed[-1:]
                    log.info(
                        "job %s missed %d time(s) of %s since %s; catching up %d",
                        job.name,
                        len(missed),
                        schedule.schedule.cron,
                        _iso(mark),
                        len(chosen),
                        extra={"event": "catch_up", "job": job.name},
                    )
                    for moment in chosen:
                        trigger = Trigger("catch_up", _iso(moment) or "", schedule.schedule.cron)
                        self._enqueue(job, self._request(job, trigger, schedule))
                store.set_schedule_mark(job.name, schedule.key, missed[-1] if missed else now)
                schedule.next = schedule.after(now)

    # --- requests and runs --------------------------------------------------------------------

    def _request(
        self, job: _Job, trigger: Trigger, schedule: JobSchedule | None = None, **kw: Any
    ) -> RunRequest:
        variables = dict(schedule.schedule.variables) if schedule else {}
        variables.update(kw.pop("variables", None) or {})
        return RunRequest(
            job.name,
            job.entry.path,
            job.state,
            trigger,
            variables,
            state_override=self.state,
            **kw,
        )

    def _enqueue(self, job: _Job, request: RunRequest) -> None:
        job.queue.append((next(self._seq), request))
        self.wakeup.set()

    def tick(self) -> float:
        """Start what is due now; returns the seconds until the next schedule time."""
        now = self.clock.now()
        wait = 60.0
        with self._lock:
            for job in list(self._jobs.values()):
                for schedule in job.schedules:
                    if schedule.next is not None and schedule.next <= now:
                        self._fire(job, schedule, now)
                    if schedule.next is not None:
                        wait = min(wait, (schedule.next - now).total_seconds())
            self._start_due()
        return max(wait, 0.0)

    def _fire(self, job: _Job, schedule: JobSchedule, now: datetime) -> None:
        moment = schedule.next
        assert moment is not None
        while (following := schedule.after(moment)) is not None and following <= now:
            moment = following  # serve was held up past several times: the latest counts
        schedule.next = schedule.after(moment)
        with StateStore(job.state) as store:
            store.set_schedule_mark(job.name, schedule.key, moment)
        if not self._enabled(job) or self.stopping:
            return
        busy = job.running is not None or bool(job.queue)
        if busy and job.settings.if_running == "skip":
            log.info(
                "job %s is still running; schedule time %s skipped",
                job.name,
                _iso(moment),
                extra={"event": "skipped", "job": job.name},
            )
            return
        if busy and any(r.trigger.kind == "schedule" for _, r in job.queue):
            return  # queue: at most one waiting scheduled run
        trigger = Trigger("schedule", _iso(moment) or "", schedule.schedule.cron)
        self._enqueue(job, self._request(job, trigger, schedule))

    def _files_arrived(self, watch: FileWatch, trigger: Trigger) -> bool:
        with self._lock:
            job = self._jobs.get(watch.job)
            if job is None or watch not in job.watches or self.stopping:
                return False
            if job.running is not None or job.queue:
                return False  # fires again when the run has ended
            log.info(
                "job %s: %d new file(s) at %s",
                job.name,
                len(trigger.files),
                watch.trigger.path,
                extra={"event": "trigger", "job": job.name, "files": len(trigger.files)},
            )
            request = self._request(
                job, trigger, on_done=lambda s: watch.done(trigger, s.get("status") == "succeeded")
            )
            self._enqueue(job, request)
            self._start_due()
        return True

    def _start_due(self) -> None:
        while not self.stopping:
            running = sum(1 for j in self._jobs.values() if j.running is not None)
            if running >= self.max_runs:
                return
            ready = [j for j in self._jobs.values() if j.running is None and j.queue]
            if not ready:
                return
            job = min(ready, key=lambda j: j.queue[0][0])
            _, request = job.queue.popleft()
            try:
                job.running = RunProcess(request, self._finished, self.python)
            except OSError as err:
                log.error("job %s: cannot start a run: %s", job.name, err)
                if request.on_done is not None:
                    request.on_done({"status": "not started"})
                continue
            self.started += 1
            log.info(
                "job %s: run started by %s (pid %d)",
                job.name,
                request.trigger.kind,
                job.running.pid,
                extra={
                    "event": "run_started",
                    "job": job.name,
                    "trigger": request.trigger.kind,
                    "pid": job.running.pid,
                },
            )

    def _finished(self, proc: RunProcess, summary: dict[str, Any]) -> None:
        request = proc.request
        status = str(summary.get("status"))
        with self._lock:
            self.counts[status] = self.counts.get(status, 0) + 1
            job = self._jobs.get(request.name)
            if job is not None and job.running is proc:
                job.running = None
            loaded = job.entry.loaded if job is not None else None
            notify = [(n, loaded.base) for n in loaded.job.notify] if loaded else []
        error = summary.get("error") or {}
        level = logging.INFO if status == "succeeded" else logging.WARNING
        log.log(
            level,
            "job %s: run %s %s (exit code %s, %d file(s) moved)%s",
            request.name,
            summary.get("run_id"),
            status,
            summary.get("exit_code"),
            file_counts(summary)["moved"],
            f": {error.get('message')}" if error else "",
            extra={
                "event": "run_finished",
                "job": request.name,
                "run_id": summary.get("run_id"),
                "status": status,
                "exit_code": summary.get("exit_code"),
                "seconds": summary.get("seconds"),
                "trigger": request.trigger.kind,
                "files": file_counts(summary)["moved"],
            },
        )
        if request.on_done is not None:
            request.on_done(summary)
        if status not in ("locked", "not started"):
            self.notifier.notify([*notify, *self._global], summary)
        self.wakeup.set()

    # --- the API for a dashboard -----------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        """Each job: name, file, enabled, schedules with their next time, triggers, the run
        going on (pid, trigger) and how many runs wait."""
        with self._lock:
            return [self._info(job) for job in sorted(self._jobs.values(), key=lambda j: j.name)]

    def _info(self, job: _Job) -> dict[str, Any]:
        running = job.running
        return {
            "name": job.name,
            "path": str(job.entry.path),
            "state_file": str(job.state),
            "enabled": self._enabled(job),
            "schedules": [
                {"cron": s.schedule.cron, "timezone": s.zone.key, "next": _iso(s.next)}
                for s in job.schedules
            ],
            "triggers": [w.describe() for w in job.watches],
            "running": None
            if running is None
            else {"pid": running.pid, "trigger": running.request.trigger.kind},
            "queued": len(job.queue),
        }

    def next_runs(self, name: str, count: int = 5) -> list[tuple[datetime, str]]:
        """The next ``count`` schedule times of job ``name`` (time, cron), soonest first."""
        job = self._job(name)
        now = self.clock.now()
        found = [(t, s.schedule.cron) for s in job.schedules for t in s.upcoming(now, count)]
        return sorted(found)[:count]

    def enable(self, name: str) -> None:
        """Let job ``name``'s schedules and triggers start runs again (from now on)."""
        with self._lock:
            job = self._job(name)
            self._disabled.discard(name)
            self._add(job.entry, self.clock.now(), job)

    def disable(self, name: str) -> None:
        """Start no run of job ``name`` from its schedules and triggers (run_now still can)."""
        with self._lock:
            job = self._job(name)
            self._disabled.add(name)
            self._stop_watches(job)

    def run_now(self, name: str, variables: dict[str, str] | None = None) -> None:
        """Queue a run of job ``name`` (after its running one, if any)."""
        with self._lock:
            job = self._job(name)
            trigger = Trigger("now", _iso(self.clock.now()) or "")
            self._enqueue(job, self._request(job, trigger, variables=variables))
            self._start_due()

    def _job(self, name: str) -> _Job:
        job = self._jobs.get(name)
        if job is None:
            known = ", ".join(sorted(self._jobs)) or "(none)"
            raise ConfigError(f"serve has no job named {name!r}", hint=f"its jobs: {known}")
        return job

    # --- running and stopping ----------------------------------------------------------------

    def running(self) -> list[RunProcess]:
        with self._lock:
            return [j.running for j in self._jobs.values() if j.running is not None]

    def serve(self, stop: threading.Event, reload: Callable[[], bool]) -> None:
        """Tick until ``stop`` is set; ``reload()`` says when to reload the job files."""
        while not stop.is_set():
            if reload():
                self.reload()
            wait = self.tick()
            self.wakeup.wait(min(wait, 1.0))
            self.wakeup.clear()

    def shutdown(self, grace: float, *, settle: float = 10.0) -> list[RunProcess]:
        """Stop: no new run; running ones may finish their step within ``grace`` seconds, then
        their step is interrupted, then (after ``settle`` seconds) they are killed. Returns
        the runs that had to be interrupted or killed."""
        with self._lock:
            self.stopping = True
            for job in self._jobs.values():
                job.queue.clear()
                self._stop_watches(job)
            runs = self.running()
        log.info(
            "stopping: %d run(s) going on, %g s to finish their step",
            len(runs),
            grace,
            extra={"event": "stopping"},
        )
        for run in runs:
            run.stop_after_step()
        late = self._wait_for(runs, grace)
        for run in late:
            log.warning("job %s: interrupting its step", run.request.name)
            run.interrupt()
        for run in self._wait_for(late, settle):
            log.warning("job %s: killing its run (pid %d)", run.request.name, run.pid)
            run.kill()
            run.join(settle)
        self.notifier.close(timeout=settle)
        log.info("stopped", extra={"event": "stopped"})
        return late

    @staticmethod
    def _wait_for(runs: list[RunProcess], seconds: float) -> list[RunProcess]:
        deadline = datetime.now(UTC).timestamp() + seconds
        for run in runs:
            run.join(deadline - datetime.now(UTC).timestamp())
        return [r for r in runs if r.thread.is_alive()]
