"""Reading the history a page at a time, for ``history``/``show`` and the web dashboard.

Every function takes an open ``sqlite3`` connection (the store's, or a read-only one of the
dashboard's) and reads only. Lists are paged by key (``before``: the smallest run id of the
page shown), never by counting through the whole history, so that a page answers as fast with
100 000 runs as with ten; the indexes they rely on are those of schema version 4.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from .ledger import TAKEN_COLUMNS, taken_file
from .records import FileRecord, RunDetail, RunSummary, StepResult, TakenFile

__all__ = [
    "RunFilter",
    "connect_readonly",
    "daily_totals",
    "file_page",
    "job_durations",
    "latest_runs",
    "ledger_page",
    "run_detail",
    "runs_page",
]

SUMMARY = """
    SELECT r.id, r.job, r.job_file, r.status, r.started, r.finished, r.exit_code, r.error,
           r.host, r.pid,
           (SELECT COUNT(*) FROM files AS f WHERE f.run_id = r.id),
           (SELECT COUNT(*) FROM files AS f WHERE f.run_id = r.id AND f.status = 'failed'),
           (SELECT COALESCE(SUM(f.bytes), 0) FROM files AS f WHERE f.run_id = r.id)
    FROM runs AS r
"""


def connect_readonly(path: Path, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """A connection that cannot write to the state file at ``path`` (which must exist)."""
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
    conn.execute("PRAGMA query_only = ON")
    return conn


@dataclass(frozen=True)
class RunFilter:
    """Which runs a list shows; ``since``/``until`` are days (inclusive), in UTC."""

    job: str | None = None
    status: str | None = None
    since: date | None = None
    until: date | None = None

    def where(self) -> tuple[str, list[Any]]:
        parts: list[str] = []
        args: list[Any] = []
        if self.job:
            parts.append("r.job = ?")
            args.append(self.job)
        if self.status:
            parts.append("r.status = ?")
            args.append(self.status)
        if self.since:
            parts.append("r.started >= ?")
            args.append(self.since.isoformat())
        if self.until:
            parts.append("r.started < ?")
            args.append((self.until + timedelta(days=1)).isoformat())
        return " AND ".join(parts) or "1", args


def _summary(row: tuple[Any, ...]) -> RunSummary:
    return RunSummary(*row)


def runs_page(
    conn: sqlite3.Connection,
    which: RunFilter | None = None,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int | None = 50,
) -> tuple[list[RunSummary], bool]:
    """Runs matching ``which``, newest first: the ``limit`` older than run ``before`` (or
    newer than ``after``, or the newest); and whether there are more beyond the page."""
    where, args = (which or RunFilter()).where()
    count = -1 if limit is None else limit + 1
    if after is not None:
        rows = conn.execute(
            f"{SUMMARY} WHERE {where} AND r.id > ? ORDER BY r.id ASC LIMIT ?",
            [*args, after, count],
        ).fetchall()
        more = limit is not None and len(rows) > limit
        rows = list(reversed(rows[:limit] if limit is not None else rows))
    else:
        bound = " AND r.id < ?" if before is not None else ""
        extra = [before] if before is not None else []
        rows = conn.execute(
            f"{SUMMARY} WHERE {where}{bound} ORDER BY r.id DESC LIMIT ?",
            [*args, *extra, count],
        ).fetchall()
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if limit is not None else rows
    return [_summary(r) for r in rows], more


def latest_runs(conn: sqlite3.Connection, job: str) -> tuple[RunSummary | None, str | None]:
    """The latest run of ``job`` and when its latest successful run finished."""
    row = conn.execute(f"{SUMMARY} WHERE r.job = ? ORDER BY r.id DESC LIMIT 1", (job,)).fetchone()
    ok = conn.execute(
        "SELECT finished FROM runs WHERE job = ? AND status = 'succeeded' ORDER BY id DESC LIMIT 1",
        (job,),
    ).fetchone()
    return (_summary(row) if row else None), (str(ok[0]) if ok else None)


def _step(row: tuple[Any, ...]) -> StepResult:
    (position, name, action, status, reason, started, finished, seconds, attempts) = row[:9]
    error, hint, exit_code, result = row[9:]
    return StepResult(
        position,
        name,
        action,
        status,
        reason,
        started,
        finished,
        seconds,
        attempts,
        error,
        hint,
        exit_code,
        json.loads(result),
    )


def run_detail(
    conn: sqlite3.Connection, run_id: int, file_limit: int | None = None
) -> RunDetail | None:
    """Run ``run_id`` with its steps and its first ``file_limit`` files; None if unknown."""
    row = conn.execute(SUMMARY + " WHERE r.id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    extra = conn.execute(
        "SELECT variables, transcript FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    steps = [
        _step(r)
        for r in conn.execute(
            "SELECT position, name, action, status, reason, started, finished, seconds,"
            " attempts, error, hint, exit_code, result FROM steps WHERE run_id = ?"
            " ORDER BY position, id",
            (run_id,),
        )
    ]
    files = [
        FileRecord(*r)
        for r in conn.execute(
            "SELECT step, source, target, status, reason, bytes, seconds, retries,"
            " verified, error FROM files WHERE run_id = ? ORDER BY id LIMIT ?",
            (run_id, -1 if file_limit is None else file_limit),
        )
    ]
    counts = dict(
        conn.execute(
            "SELECT status, COUNT(*) FROM files WHERE run_id = ? GROUP BY status ORDER BY status",
            (run_id,),
        ).fetchall()
    )
    return RunDetail(
        run=_summary(row),
        variables=json.loads(extra[0]),
        transcript=extra[1],
        steps=steps,
        files=files,
        file_counts=counts,
    )


def file_page(
    conn: sqlite3.Connection, run_id: int, offset: int = 0, limit: int = 100
) -> tuple[list[FileRecord], bool]:
    """Files ``offset`` .. ``offset + limit`` of run ``run_id`` (by step, then in order)."""
    rows = conn.execute(
        "SELECT step, source, target, status, reason, bytes, seconds, retries, verified, error"
        " FROM files WHERE run_id = ? ORDER BY step, id LIMIT ? OFFSET ?",
        (run_id, limit + 1, offset),
    ).fetchall()
    return [FileRecord(*r) for r in rows[:limit]], len(rows) > limit


def ledger_page(
    conn: sqlite3.Connection,
    job: str,
    search: str | None = None,
    after: Sequence[str] | None = None,
    limit: int = 100,
) -> tuple[list[TakenFile], list[str] | None]:
    """A page of ``job``'s ledger and the key of the next page (None: it was the last).

    Without ``search``: newest first (key: taken, connection, path). With ``search``: the
    entries whose path contains it (case-sensitive), by connection and path, read in the
    order the file keeps them (a search through 200 000 entries costs tens of ms, not the
    hundreds a search in time order would). ``after`` is the key a previous page returned.
    """
    columns = TAKEN_COLUMNS
    if search:
        bound = "AND (connection, path) > (?, ?)" if after else ""
        rows = conn.execute(
            f"SELECT {columns} FROM ledger WHERE job = ? AND instr(path, ?) > 0 {bound}"  # noqa: S608
            " ORDER BY connection, path LIMIT ?",
            [job, search, *(after or [])[:2], limit + 1],
        ).fetchall()
    else:
        bound = "AND (taken, connection, path) < (?, ?, ?)" if after else ""
        rows = conn.execute(
            f"SELECT {columns} FROM ledger WHERE job = ? {bound}"  # noqa: S608
            " ORDER BY taken DESC, connection DESC, path DESC LIMIT ?",
            [job, *(after or [])[:3], limit + 1],
        ).fetchall()
    found = [taken_file(r) for r in rows[:limit]]
    if len(rows) <= limit:
        return found, None
    last = found[-1]
    return found, [last.connection, last.path] if search else [
        last.taken,
        last.connection,
        last.path,
    ]


def daily_totals(
    conn: sqlite3.Connection, since: date, job: str | None = None, until: date | None = None
) -> list[dict[str, Any]]:
    """Per UTC day from ``since`` (to before ``until``): runs, failed runs, files copied and
    bytes moved."""
    runs = conn.execute(
        "SELECT substr(started, 1, 10) AS day, COUNT(*), SUM(status = 'failed') FROM runs"
        " WHERE started >= ?1 AND (?3 IS NULL OR started < ?3) AND (?2 IS NULL OR job = ?2)"
        " GROUP BY day",
        (since.isoformat(), job, until.isoformat() if until else None),
    ).fetchall()
    moved = conn.execute(
        "SELECT substr(r.started, 1, 10) AS day, SUM(f.status = 'copied'), SUM(f.bytes)"
        " FROM runs AS r JOIN files AS f ON f.run_id = r.id"
        " WHERE r.started >= ?1 AND (?3 IS NULL OR r.started < ?3)"
        " AND (?2 IS NULL OR r.job = ?2) GROUP BY day",
        (since.isoformat(), job, until.isoformat() if until else None),
    ).fetchall()
    files = {str(day): (int(n or 0), int(b or 0)) for day, n, b in moved}
    return [
        {
            "day": str(day),
            "runs": int(count),
            "failed": int(failed or 0),
            "files": files.get(str(day), (0, 0))[0],
            "bytes": files.get(str(day), (0, 0))[1],
        }
        for day, count, failed in sorted(runs)
    ]


def job_durations(conn: sqlite3.Connection, job: str, limit: int = 60) -> list[dict[str, Any]]:
    """The latest ``limit`` finished runs of ``job``, oldest first: id, start, status, seconds."""
    rows = conn.execute(
        "SELECT id, started, finished, status FROM runs"
        " WHERE job = ? AND finished IS NOT NULL ORDER BY id DESC LIMIT ?",
        (job, limit),
    ).fetchall()
    return [
        {
            "id": run_id,
            "started": started,
            "status": status,
            "seconds": RunSummary(
                run_id, job, None, status, started, finished, None, None, "", 0
            ).seconds,
        }
        for run_id, started, finished, status in reversed(rows)
    ]
