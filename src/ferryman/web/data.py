"""What the dashboard's pages show, as plain data: each page's HTML and its JSON twin are made
from the same dict. Reads go through read-only connections (:mod:`ferryman.state.browse`);
every text that comes from the state file passes through :func:`ferryman.redact.mask`."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ..redact import mask, mask_data
from ..state import SCHEMA_VERSION, StateStore
from ..state.browse import (
    RunFilter,
    connect_readonly,
    daily_totals,
    file_page,
    job_durations,
    latest_runs,
    ledger_page,
    run_detail,
    runs_page,
)

__all__ = ["LOG_CHUNK", "DashboardData", "JobSource"]

log = logging.getLogger("ferryman.serve.web")

#: bytes of a run log shown per page
LOG_CHUNK = 64 * 1024
RUNS_PER_PAGE = 50
FILES_PER_PAGE = 100
LEDGER_PER_PAGE = 100


class JobSource(Protocol):
    """What the dashboard needs of :class:`ferryman.serve.scheduler.Scheduler`."""

    def jobs(self) -> list[dict[str, Any]]: ...
    def next_runs(self, name: str, count: int = 5) -> list[tuple[datetime, str]]: ...


class DashboardData:
    """The pages' data, from the scheduler's jobs and their state files."""

    def __init__(self, jobs: JobSource, state: Path | None = None) -> None:
        self.source = jobs
        self.state = state
        self._ready: set[Path] = set()
        #: per (state file, job): days ``lo`` to before ``hi`` whose totals cannot change
        self._days: dict[tuple[Path, str | None], tuple[date, date, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()

    # --- state files ------------------------------------------------------------------------

    def state_files(self) -> list[Path]:
        """The state files shown: ``serve --state``, else those of the jobs (sorted)."""
        if self.state is not None:
            return [self.state]
        return sorted({Path(j["state_file"]) for j in self.source.jobs()})

    def state_file(self, index: int) -> Path:
        files = self.state_files()
        if not 0 <= index < len(files):
            raise LookupError(f"there is no state file number {index} (there are {len(files)})")
        return files[index]

    def _prepare(self, path: Path) -> None:
        """Bring a state file to this schema (the dashboard's indexes) once; read-only after."""
        with self._lock:
            if path in self._ready:
                return
            if path.exists():
                conn = connect_readonly(path)
                try:
                    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
                finally:
                    conn.close()
                if version < SCHEMA_VERSION:
                    with StateStore(path):
                        pass  # opening migrates it forward
                self._ready.add(path)

    @contextmanager
    def reading(self, path: Path) -> Iterator[sqlite3.Connection | None]:
        """A read-only connection to ``path`` in one snapshot, or None while it does not exist."""
        self._prepare(path)
        if not path.exists():
            yield None
            return
        conn = connect_readonly(path)
        try:
            conn.execute("BEGIN")
            yield conn
        finally:
            conn.close()

    # --- pages ----------------------------------------------------------------------------------

    def jobs(self) -> dict[str, Any]:
        files = self.state_files()
        found = []
        for job in self.source.jobs():
            state = Path(job["state_file"])
            last, success = None, None
            with self.reading(state) as conn:
                if conn is not None:
                    last, success = latest_runs(conn, job["name"])
            upcoming = self.source.next_runs(job["name"], 3)
            found.append(
                {
                    "name": job["name"],
                    "path": job["path"],
                    "state": files.index(state) if state in files else 0,
                    "enabled": job["enabled"],
                    "schedules": job["schedules"],
                    "triggers": [mask(t) for t in job["triggers"]],
                    "running": job["running"],
                    "queued": job["queued"],
                    "next": [t.isoformat(timespec="seconds") for t, _ in upcoming],
                    "last_run": _masked_run(last.to_dict()) if last else None,
                    "last_success": success,
                }
            )
        return {"jobs": found, "state_files": [str(p) for p in files]}

    def runs(
        self,
        index: int,
        which: RunFilter,
        before: int | None = None,
        after: int | None = None,
    ) -> dict[str, Any]:
        path = self.state_file(index)
        with self.reading(path) as conn:
            found, more = (
                ([], False)
                if conn is None
                else runs_page(conn, which, before=before, after=after, limit=RUNS_PER_PAGE)
            )
        ids = [r.id for r in found]
        older = more if after is None else True
        newer = more if after is not None else before is not None
        return {
            "state": index,
            "state_file": str(path),
            "filter": {
                "job": which.job,
                "status": which.status,
                "since": which.since.isoformat() if which.since else None,
                "until": which.until.isoformat() if which.until else None,
            },
            "runs": [_masked_run(r.to_dict()) for r in found],
            "older": min(ids) if ids and older else None,
            "newer": max(ids) if ids and newer else None,
        }

    def run(self, index: int, run_id: int, offset: int = 0) -> dict[str, Any] | None:
        path = self.state_file(index)
        with self.reading(path) as conn:
            if conn is None:
                return None
            detail = run_detail(conn, run_id, file_limit=0)
            if detail is None:
                return None
            files, more = file_page(conn, run_id, offset, FILES_PER_PAGE)
        data = detail.to_dict()
        data.pop("files")
        return {
            "state": index,
            "state_file": str(path),
            **mask_data(data),
            "error": mask(data["error"]) if data["error"] else None,
            "files": [mask_data(f.to_dict()) for f in files],
            "files_offset": offset,
            "files_next": offset + FILES_PER_PAGE if more else None,
            "files_previous": max(0, offset - FILES_PER_PAGE) if offset else None,
            "has_log": bool(detail.transcript) and Path(str(detail.transcript)).is_file(),
        }

    def log(self, index: int, run_id: int, offset: int = 0) -> dict[str, Any] | None:
        """A page of the run's log (its masked transcript): whole lines from byte ``offset``."""
        path = self.state_file(index)
        with self.reading(path) as conn:
            row = (
                None
                if conn is None
                else conn.execute(
                    "SELECT transcript, job FROM runs WHERE id = ?", (run_id,)
                ).fetchone()
            )
        if row is None:
            return None
        transcript, job = row
        text, size, end = "", 0, offset
        if transcript and Path(transcript).is_file():
            with open(transcript, "rb") as log_file:
                size = log_file.seek(0, 2)
                log_file.seek(min(offset, size))
                chunk = log_file.read(LOG_CHUNK)
            if offset + len(chunk) < size and b"\n" in chunk:
                chunk = chunk[: chunk.rindex(b"\n") + 1]  # whole lines; the rest on the next page
            end = min(offset, size) + len(chunk)
            text = mask(chunk.decode("utf-8", "replace"))
        return {
            "state": index,
            "run_id": run_id,
            "job": job,
            "log_file": transcript,
            "size": size,
            "offset": offset,
            "text": text,
            "next": end if end < size else None,
            "previous": max(0, offset - LOG_CHUNK) if offset else None,
        }

    def ledger(self, job: str | None, search: str | None, after: str | None) -> dict[str, Any]:
        """A page of a job's ledger; ``after`` is the JSON key the previous page gave."""
        names = [j["name"] for j in self.source.jobs()]
        chosen = job if job in names else (names[0] if names else None)
        entries: list[dict[str, Any]] = []
        following: list[str] | None = None
        key = json.loads(after) if after else None
        if key is not None and (
            not isinstance(key, list) or not all(isinstance(k, str) for k in key)
        ):
            raise ValueError("after: not a key of a ledger page")
        index = 0
        if chosen is not None:
            state = next(Path(j["state_file"]) for j in self.source.jobs() if j["name"] == chosen)
            files = self.state_files()
            index = files.index(state) if state in files else 0
            with self.reading(state) as conn:
                if conn is not None:
                    found, following = ledger_page(conn, chosen, search, key, LEDGER_PER_PAGE)
                    entries = [mask_data(t.to_dict()) for t in found]
        return {
            "jobs": names,
            "job": chosen,
            "search": search or "",
            "order": "by path" if search else "newest first",
            "state": index,
            "entries": entries,
            "next": json.dumps(following) if following else None,
            "first_page": key is not None,
        }

    def charts(self, index: int, days: int, job: str | None) -> dict[str, Any]:
        path = self.state_file(index)
        since = (datetime.now(UTC) - timedelta(days=days - 1)).date()
        names = [j["name"] for j in self.source.jobs() if Path(j["state_file"]) == path]
        per_day: list[dict[str, Any]] = []
        durations: dict[str, list[dict[str, Any]]] = {}
        with self.reading(path) as conn:
            if conn is not None:
                per_day = self._per_day(conn, path, since, job)
                for name in [job] if job else names:
                    durations[name] = job_durations(conn, name)
        return {
            "state": index,
            "days": days,
            "since": since.isoformat(),
            "job": job,
            "jobs": names,
            "per_day": _fill_days(per_day, since, days),
            "durations": durations,
        }

    def _per_day(
        self, conn: sqlite3.Connection, path: Path, since: date, job: str | None
    ) -> list[dict[str, Any]]:
        """:func:`daily_totals`, with the days that are over kept: a day before today and
        before the oldest run still going on gets no new runs or files."""
        row = conn.execute("SELECT MIN(started) FROM runs WHERE status = 'running'").fetchone()
        settled = datetime.now(UTC).date()
        if row[0]:
            settled = min(settled, date.fromisoformat(str(row[0])[:10]))
        with self._lock:
            lo, hi, kept = self._days.get((path, job), (settled, settled, []))
        if hi > settled:
            lo, hi, kept = settled, settled, []  # a run of those days is going on again
        if since < lo:
            kept = daily_totals(conn, since, job, lo) + kept
            lo = since
        if hi < settled:
            kept = kept + daily_totals(conn, hi, job, settled)
            hi = settled
        with self._lock:
            self._days[(path, job)] = (lo, hi, kept)
        first = since.isoformat()
        return [d for d in kept if d["day"] >= first] + daily_totals(conn, max(since, hi), job)

    def warm(self, days: int = 366) -> None:
        """Read the long sums once (the charts' days), so the first visitor need not wait."""
        for index, path in enumerate(self.state_files()):
            self.charts(index, days, None)
            log.debug("dashboard: %s read", path)


def _masked_run(run: dict[str, Any]) -> dict[str, Any]:
    masked: dict[str, Any] = mask_data(run)
    return masked


def _fill_days(found: list[dict[str, Any]], since: date, days: int) -> list[dict[str, Any]]:
    """Every day of the range, those without runs as zeros (a chart shows the gaps)."""
    known = {d["day"]: d for d in found}
    every = []
    for n in range(days):
        day = (since + timedelta(days=n)).isoformat()
        every.append(known.get(day, {"day": day, "runs": 0, "failed": 0, "files": 0, "bytes": 0}))
    return every
