"""``/metrics``: Prometheus text exposition of the history -- runs by job and status, files
and bytes moved per job, the last success time per job -- and serve's own gauges.

Summing a long history on every scrape would read every file record. Instead the totals of
each state file are kept here up to a *mark*: the highest run id below which every run has
ended (a finished run's files do not change any more). A scrape reads only the runs above the
mark, adds what has ended to the kept totals and moves the mark up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["Totals", "TotalsCache", "render_metrics"]


@dataclass
class Totals:
    """Totals of the runs of one state file."""

    runs: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    files: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_success: dict[str, str] = field(default_factory=dict)

    def add(self, other: Totals) -> Totals:
        both = Totals()
        for source in (self, other):
            for key, n in source.runs.items():
                both.runs[key] += n
            for job, n in source.files.items():
                both.files[job] += n
            for job, n in source.bytes.items():
                both.bytes[job] += n
            for job, when in source.last_success.items():
                both.last_success[job] = max(when, both.last_success.get(job, when))
        return both


def _read(conn: sqlite3.Connection, low: int, high: int | None) -> Totals:
    """The totals of runs ``low < id <= high`` (``high`` None: no upper bound)."""
    bound = (low, -1 if high is None else high)
    where = "r.id > ?1 AND (?2 < 0 OR r.id <= ?2)"
    found = Totals()
    for job, status, count in conn.execute(
        f"SELECT r.job, r.status, COUNT(*) FROM runs AS r WHERE {where} GROUP BY 1, 2",  # noqa: S608
        bound,
    ):
        found.runs[(str(job), str(status))] = int(count)
    for job, files, size in conn.execute(
        "SELECT r.job, SUM(f.status = 'copied'), SUM(f.bytes) FROM runs AS r"  # noqa: S608
        f" JOIN files AS f ON f.run_id = r.id WHERE {where} GROUP BY 1",
        bound,
    ):
        found.files[str(job)] = int(files or 0)
        found.bytes[str(job)] = int(size or 0)
    for job, finished in conn.execute(
        "SELECT r.job, MAX(r.finished) FROM runs AS r"  # noqa: S608
        f" WHERE {where} AND r.status = 'succeeded' GROUP BY 1",
        bound,
    ):
        found.last_success[str(job)] = str(finished)
    return found


class TotalsCache:
    """Per state file: the totals up to its mark (see the module documentation)."""

    def __init__(self) -> None:
        self._kept: dict[Path, tuple[int, Totals]] = {}
        self._lock = threading.Lock()

    def totals(self, path: Path, conn: sqlite3.Connection) -> Totals:
        with self._lock:
            mark, kept = self._kept.get(path, (0, Totals()))
        row = conn.execute(
            "SELECT MIN(id) FROM runs WHERE status = 'running' AND id > ?", (mark,)
        ).fetchone()
        newest = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0])
        settled = newest if row[0] is None else int(row[0]) - 1
        if settled > mark:
            kept = kept.add(_read(conn, mark, settled))
            with self._lock:
                self._kept[path] = (settled, kept)
            mark = settled
        return kept.add(_read(conn, mark, None)) if newest > mark else kept


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(totals: Totals, serve: dict[str, Any]) -> str:
    """The exposition text of ``totals`` and of serve's own numbers."""
    out: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")

    family("ferryman_runs_total", "counter", "Runs recorded in the state file, by job and status.")
    for (job, status), count in sorted(totals.runs.items()):
        out.append(f'ferryman_runs_total{{job="{_label(job)}",status="{status}"}} {count}')
    family("ferryman_files_total", "counter", "Files copied, by job.")
    for job, count in sorted(totals.files.items()):
        out.append(f'ferryman_files_total{{job="{_label(job)}"}} {count}')
    family("ferryman_bytes_total", "counter", "Bytes moved, by job.")
    for job, count in sorted(totals.bytes.items()):
        out.append(f'ferryman_bytes_total{{job="{_label(job)}"}} {count}')
    family(
        "ferryman_last_success_timestamp_seconds",
        "gauge",
        "When the job's latest successful run finished (Unix time).",
    )
    for job, when in sorted(totals.last_success.items()):
        stamp = datetime.fromisoformat(when).timestamp()
        out.append(f'ferryman_last_success_timestamp_seconds{{job="{_label(job)}"}} {stamp:.3f}')
    family("ferryman_serve_jobs", "gauge", "Jobs serve runs.")
    out.append(f"ferryman_serve_jobs {serve['jobs']}")
    family("ferryman_serve_job_enabled", "gauge", "1 when the job's schedules and triggers run.")
    for job, enabled in sorted(serve["enabled"].items()):
        out.append(f'ferryman_serve_job_enabled{{job="{_label(job)}"}} {int(enabled)}')
    family("ferryman_serve_runs_running", "gauge", "Runs going on now.")
    out.append(f"ferryman_serve_runs_running {serve['running']}")
    family("ferryman_serve_runs_queued", "gauge", "Runs waiting to start.")
    out.append(f"ferryman_serve_runs_queued {serve['queued']}")
    return "\n".join(out) + "\n"
