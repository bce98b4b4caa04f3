"""Run history: runs, their steps and their files; interrupted-run detection.

A run is started with :meth:`History.start_run` (status ``running``, with this host and pid)
and ended with :meth:`History.finish_run`. A process that dies before that -- SIGKILL, a
crash, a power cut -- leaves it ``running``; the next store opened on the same host marks it
``interrupted`` once its process is gone (same host, pid no longer running, or running but
started at another time: the pid was reused). Runs of other hosts are never touched: whether
their process lives cannot be known from here.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError, FerrymanError
from ..redact import mask, mask_data
from .browse import RunFilter, run_detail, runs_page
from .db import Database
from .records import (
    RunDetail,
    RunStatus,
    RunSummary,
    StepStatus,
    iso,
    now_iso,
    seconds_between,
)

__all__ = ["FileOutcomeLike", "History", "process_alive", "process_start"]


class FileOutcomeLike(Protocol):
    """What :meth:`History.record_files` reads of a file outcome (``transfer.FileOutcome``)."""

    @property
    def source(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def bytes(self) -> int: ...
    @property
    def seconds(self) -> float: ...
    @property
    def retries(self) -> int: ...
    @property
    def verified(self) -> str | None: ...
    @property
    def error(self) -> BaseException | None: ...


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from Linux ``/proc``."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()  # the command name may hold spaces and ')'
    return (fields[0], fields[19]) if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    """When ``pid`` started (opaque; None where ``/proc`` does not tell)."""
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this host runs, and is the one that started at ``started``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: the pid exists, that is all we can know
    state, start = stat
    if state in ("Z", "X"):
        return False  # a zombie has ended; only its exit status waits to be collected
    return started is None or start == started


def _dumps(value: Mapping[str, Any] | None) -> str:
    """JSON text of ``value``, every registered secret masked (as everything written here)."""
    masked = mask_data(dict(value or {}))
    return json.dumps(masked, default=lambda o: mask(str(o)), sort_keys=True, ensure_ascii=False)


def _masked(text: str | None) -> str | None:
    return None if text is None else mask(text)


def _error_parts(error: BaseException | str | None) -> tuple[str | None, str | None, int | None]:
    """(message, hint, exit code) of an error, secrets masked."""
    if error is None:
        return None, None, None
    if isinstance(error, FerrymanError):
        return error.message, error.hint, int(error.exit_code)
    if isinstance(error, BaseException):
        return mask(str(error) or type(error).__name__), None, None
    return mask(str(error)), None, None


def _error_text(error: BaseException | str | None) -> str | None:
    if error is None:
        return None
    return mask(str(error) or type(error).__name__)


class History:
    """The history half of :class:`~ferryman.state.StateStore`."""

    _db: Database

    def start_run(
        self,
        job: str,
        *,
        job_file: Path | str | None = None,
        variables: Mapping[str, Any] | None = None,
        transcript: Path | str | None = None,
    ) -> int:
        """Record a new ``running`` run of ``job`` by this process; returns its id.

        ``variables`` are stored as JSON: the caller passes them without secrets, and any
        registered secret value in them is masked all the same (:mod:`ferryman.redact`).
        """
        pid = os.getpid()
        with self._db.write("record the start of a run") as conn:
            cursor = conn.execute(
                "INSERT INTO runs (job, job_file, started, status, variables, transcript,"
                " host, pid, proc_start) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (
                    job,
                    str(job_file) if job_file is not None else None,
                    now_iso(),
                    _dumps(variables),
                    str(transcript) if transcript is not None else None,
                    socket.gethostname(),
                    pid,
                    process_start(pid),
                ),
            )
            run_id = cursor.lastrowid
        assert run_id is not None
        return run_id

    def finish_run(
        self,
        run_id: int,
        status: RunStatus | str,
        exit_code: int | None = None,
        error: BaseException | str | None = None,
        *,
        transcript: Path | str | None = None,
    ) -> None:
        """End run ``run_id`` with ``status`` (succeeded, failed or interrupted)."""
        final = RunStatus(status)
        if final is RunStatus.RUNNING:
            raise ValueError("finish_run needs a final status, not 'running'")
        with self._db.write(f"record the end of run {run_id}") as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, finished = ?, exit_code = ?, error = ?,"
                " transcript = COALESCE(?, transcript) WHERE id = ?",
                (
                    str(final),
                    now_iso(),
                    exit_code,
                    _error_text(error),
                    str(transcript) if transcript is not None else None,
                    run_id,
                ),
            )
            if cursor.rowcount != 1:
                raise ValueError(f"there is no run {run_id} in {self._db.path}")

    def record_step(
        self,
        run_id: int,
        name: str,
        status: StepStatus | str,
        *,
        action: str | None = None,
        order: int | None = None,
        started: datetime | str | None = None,
        finished: datetime | str | None = None,
        seconds: float | None = None,
        attempts: int = 1,
        reason: str | None = None,
        error: BaseException | str | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> int:
        """Record one step's result; returns its position (``order``, else the next one).

        ``started``/``finished`` are datetimes or ISO text (naive means UTC); ``seconds``
        defaults to their difference. ``result`` is what the step exposes to later steps
        (file lists, counts), stored as JSON.
        """
        checked = StepStatus(status)
        start, end = iso(started), iso(finished)
        if seconds is None:
            seconds = seconds_between(start, end)
        message, hint, code = _error_parts(error)
        with self._db.write(f"record step {name!r} of run {run_id}") as conn:
            if order is None:
                row = conn.execute(
                    "SELECT COALESCE(MAX(position), 0) + 1 FROM steps WHERE run_id = ?",
                    (run_id,),
                ).fetchone()
                order = int(row[0])
            conn.execute(
                "INSERT INTO steps (run_id, position, name, action, status, reason, started,"
                " finished, seconds, attempts, error, hint, exit_code, result)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    order,
                    name,
                    action,
                    str(checked),
                    _masked(reason or None),
                    start,
                    end,
                    seconds,
                    attempts,
                    message,
                    hint,
                    code,
                    _dumps(result),
                ),
            )
        return order

    def record_files(self, run_id: int, step: str, outcomes: Iterable[FileOutcomeLike]) -> int:
        """Record what ``step`` did to each file, in one transaction; returns how many.

        Safe to call from several worker threads at once (see :mod:`ferryman.state.db`).
        """
        rows = (
            (
                run_id,
                step,
                mask(o.source),
                mask(o.target),
                str(o.status),
                _masked(o.reason or None),
                o.bytes,
                o.seconds,
                o.retries,
                o.verified,
                _error_text(o.error),
            )
            for o in outcomes
        )
        with self._db.write(f"record the files of step {step!r} of run {run_id}") as conn:
            cursor = conn.executemany(
                "INSERT INTO files (run_id, step, source, target, status, reason, bytes,"
                " seconds, retries, verified, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return cursor.rowcount

    def runs(self, job: str | None = None, limit: int | None = 20) -> list[RunSummary]:
        """The latest runs (of ``job``, or of every job), newest first."""
        with self._db.read("read the run history") as conn:
            found, _ = runs_page(conn, RunFilter(job=job), limit=limit)
        return found

    def run_detail(self, run_id: int, file_limit: int | None = None) -> RunDetail:
        """Run ``run_id`` with its steps and (the first ``file_limit``) files."""
        with self._db.read(f"read run {run_id}") as conn:
            detail = run_detail(conn, run_id, file_limit)
        if detail is None:
            raise ConfigError(
                f"there is no run {run_id} in the state file {self._db.path}",
                hint="`ferryman history` lists the runs and their ids",
            )
        return detail

    def mark_interrupted(self) -> list[int]:
        """Mark ``running`` runs of this host whose process is gone ``interrupted``.

        Called when a store opens; returns the ids it marked.
        """
        host = socket.gethostname()
        marked: list[int] = []
        with self._db.write("mark interrupted runs") as conn:
            running = conn.execute(
                "SELECT id, pid, proc_start FROM runs WHERE status = 'running' AND host = ?",
                (host,),
            ).fetchall()
            for run_id, pid, started in running:
                if process_alive(int(pid), started):
                    continue
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', finished = ?, error = ?"
                    " WHERE id = ? AND status = 'running'",
                    (
                        now_iso(),
                        f"the run's process (pid {pid} on {host}) ended without finishing it "
                        "(killed or crashed)",
                        run_id,
                    ),
                )
                marked.append(int(run_id))
        return marked
