"""Schedule marks: the latest time of each cron schedule that ``ferryman serve`` dealt with.

Serve moves a schedule's mark forward when it starts a run for a scheduled time, skips it (the
job was still running) or gives it up (the catch-up policy). After a restart the times between
the mark and now are the missed ones (docs/serve.md, "Catch-up"). A schedule is known by its
key (cron text and zone): a changed expression is a new schedule, with nothing to catch up.
"""

from __future__ import annotations

from datetime import datetime

from .db import Database
from .records import iso

__all__ = ["ScheduleStore"]


class ScheduleStore:
    """The schedule-marks half of :class:`~ferryman.state.StateStore`."""

    _db: Database

    def schedule_mark(self, job: str, schedule: str) -> datetime | None:
        """The latest time of ``schedule`` dealt with for ``job`` (None: never)."""
        with self._db.read("read a schedule mark") as conn:
            row = conn.execute(
                "SELECT fired FROM schedule_marks WHERE job = ? AND schedule = ?", (job, schedule)
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def set_schedule_mark(self, job: str, schedule: str, fired: datetime) -> None:
        """Record that ``schedule`` of ``job`` was dealt with up to ``fired`` (never moves back)."""
        stamp = iso(fired)
        with self._db.write(f"record a schedule mark of job {job!r}") as conn:
            conn.execute(
                "INSERT INTO schedule_marks (job, schedule, fired) VALUES (?, ?, ?)"
                " ON CONFLICT (job, schedule) DO UPDATE SET fired = excluded.fired"
                " WHERE excluded.fired > schedule_marks.fired",
                (job, schedule, stamp),
            )
