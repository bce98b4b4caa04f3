"""A job's cron schedule as serve keeps it: its zone, end, next time, and the times it missed.

Catch-up (the job's ``serve.catch_up``), for the times between the schedule's mark in the
state file (the latest time dealt with) and now, when serve starts or loads the job again:

- ``none``: none of them runs; the next run is at the next time;
- ``latest`` (default): one run, for the latest missed time;
- ``all``: one run per missed time, oldest first, one after another (at most
  :data:`MAX_CATCH_UP`).

A schedule seen for the first time (no mark) has missed nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..jobs.unattended import Schedule
from .cron import CronExpression

__all__ = ["MAX_CATCH_UP", "JobSchedule", "local_zone"]

#: missed times run by ``catch_up: all``, at most (the latest ones)
MAX_CATCH_UP = 100


def local_zone() -> ZoneInfo:
    """The machine's zone: ``$TZ``, else ``/etc/localtime``, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        target = ""
    if "zoneinfo/" in target:
        try:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


@dataclass
class JobSchedule:
    """One schedule of one job, with its next time (None: it fires no more)."""

    schedule: Schedule
    expression: CronExpression
    zone: ZoneInfo
    end: datetime | None
    next: datetime | None = None

    @classmethod
    def of(cls, schedule: Schedule) -> JobSchedule:
        zone = ZoneInfo(schedule.timezone) if schedule.timezone else local_zone()
        return cls(schedule, schedule.expression, zone, _end(schedule.until, zone))

    @property
    def key(self) -> str:
        return self.schedule.key

    def after(self, moment: datetime) -> datetime | None:
        """The first time strictly after ``moment`` (None past the end)."""
        found = self.expression.next_after(moment, self.zone)
        if found is None or (self.end is not None and found > self.end):
            return None
        return found

    def upcoming(self, moment: datetime, count: int) -> list[datetime]:
        found: list[datetime] = []
        while len(found) < count and (moment := self.after(moment)) is not None:  # type: ignore[assignment]
            found.append(moment)
        return found

    def missed(self, mark: datetime, now: datetime) -> list[datetime]:
        """The times after ``mark`` up to ``now`` (the latest :data:`MAX_CATCH_UP`)."""
        found: list[datetime] = []
        moment: datetime | None = mark
        while moment is not None:
            moment = self.after(moment)
            if moment is None or moment > now:
                break
            found.append(moment)
            if len(found) > MAX_CATCH_UP:
                found.pop(0)
        return found


def _end(until: datetime | date | None, zone: ZoneInfo) -> datetime | None:
    """The last instant a schedule may fire: a date means the end of that day in ``zone``."""
    if until is None:
        return None
    if isinstance(until, datetime):
        moment = until if until.tzinfo else until.replace(tzinfo=zone)
        return moment.astimezone(UTC)
    next_day = datetime.combine(until + timedelta(days=1), time(0), tzinfo=zone)
    return next_day.astimezone(UTC) - timedelta(microseconds=1)
