"""Cron expressions, evaluated in a time zone: when does a schedule fire next?

Our own small evaluator (the standard library has none; croniter's answers around daylight
saving changes differ between its versions, and a schedule is too central to depend on that).

Syntax, as in crontab(5)::

    [SECOND] MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK

- five fields, or six with seconds first (``*/5 * * * * *``: every five seconds);
- each field: ``*``, a value, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n``, or a
  comma-separated list of those; months may be ``JAN``-``DEC``, days of the week
  ``SUN``-``SAT`` (0 and 7 are both Sunday);
- ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``),
  ``@hourly``;
- when both day-of-month and day-of-week are restricted (neither is ``*``), a day matching
  *either* fires (``0 9 1 * MON``: the 1st and every Monday), as in Vixie cron.

Times are wall-clock times in the schedule's zone. Around a daylight-saving change:

- a wall time that does not exist (the hour skipped in spring) fires once, at the first
  instant after the gap, so a daily 02:30 job still runs on that day;
- a wall time that happens twice (the hour repeated in autumn) fires once, the first time.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["CronError", "CronExpression"]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
#: (name, lowest, highest, names)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_PART = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>\d+))?$")
#: how far ahead a search looks before it says "never" (Feb 29 on a Monday recurs in 28 years)
_HORIZON_YEARS = 30


class CronError(ValueError):
    """A cron expression that cannot be read; the message says which field and why."""


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is outside {low}-{high}")
    return value


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it is ``*`` (unrestricted)."""
    name, low, high, names = _FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part)
        if not match:
            raise CronError(f"{name}: {part!r} is not a value, range or step (e.g. 1-5, */10)")
        spec, step_text = match["range"], match["step"]
        step = int(step_text) if step_text else 1
        if step < 1:
            raise CronError(f"{name}: a step must be at least 1, not {step}")
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            a, b = spec.split("-", 1)
            first, last = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if first > last:
                raise CronError(f"{name}: the range {spec} runs backwards")
        else:
            first = _value(spec, name, low, high, names)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    if index == 5 and 7 in values:  # 7 is Sunday too
        values.discard(7)
        values.add(0)
    return frozenset(values), text == "*"


@dataclass(frozen=True)
class CronExpression:
    """A parsed cron expression; :meth:`next_after` gives its next firing time."""

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]  #: 0 = Sunday
    any_day: bool  #: day of month is *
    any_weekday: bool  #: day of week is *

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse ``text``; :class:`CronError` says what is wrong."""
        spec = _MACROS.get(text.strip().lower(), text)
        parts = spec.split()
        if len(parts) == 5:
            parts = ["0", *parts]
        elif len(parts) != 6:
            raise CronError(
                f"{text!r} has {len(parts)} fields; a cron expression has 5 "
                "(minute hour day-of-month month day-of-week) or 6 (seconds first)"
            )
        fields = [_field(part, index) for index, part in enumerate(parts)]
        expression = cls(
            text.strip(),
            tuple(sorted(fields[0][0])),
            tuple(sorted(fields[1][0])),
            tuple(sorted(fields[2][0])),
            fields[3][0],
            tuple(sorted(fields[4][0])),
            fields[5][0],
            fields[3][1],
            fields[5][1],
        )
        if expression._next_wall(datetime(2000, 1, 1)) is None:
            raise CronError(f"{text!r} never fires (no such day in any of its months)")
        return expression

    def _day_matches(self, moment: datetime) -> bool:
        in_month = moment.day in self.days
        in_week = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def _next_wall(self, start: datetime) -> datetime | None:
        """The first matching naive wall-clock time at or after ``start``."""
        t = start.replace(microsecond=0)
        if t < start:
            t += timedelta(seconds=1)
        limit = start.year + _HORIZON_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                i = bisect.bisect_right(self.months, t.month)
                year, month = (t.year, self.months[i]) if i < len(self.months) else (t.year + 1, 0)
                t = datetime(year, month or self.months[0], 1)
                continue
            if not self._day_matches(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            found = self._time_of_day(t)
            if found is None:
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            return found
        return None

    def _time_of_day(self, t: datetime) -> datetime | None:
        """The first matching time on ``t``'s day at or after ``t``'s time of day."""
        for hour in self.hours[bisect.bisect_left(self.hours, t.hour) :]:
            start_minute = t.minute if hour == t.hour else 0
            for minute in self.minutes[bisect.bisect_left(self.minutes, start_minute) :]:
                start_second = t.second if (hour, minute) == (t.hour, t.minute) else 0
                i = bisect.bisect_left(self.seconds, start_second)
                if i < len(self.seconds):
                    return t.replace(hour=hour, minute=minute, second=self.seconds[i])
        return None

    def next_after(self, after: datetime, zone: ZoneInfo | None = None) -> datetime | None:
        """The first firing strictly after ``after`` (an aware time), as an aware UTC time;
        None when it never fires again. Wall times are read in ``zone`` (UTC by default)."""
        zone = zone or ZoneInfo("UTC")
        if after.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        moment = after.astimezone(UTC)
        wall = moment.astimezone(zone).replace(tzinfo=None, fold=0) + timedelta(seconds=1)
        for _ in range(100_000):  # bounded: every loop moves forward by at least one second
            found = self._next_wall(wall)
            if found is None:
                return None
            instant = _instant(found, zone)
            if instant > moment:
                return instant
            wall = found + timedelta(seconds=1)
        return None

    def upcoming(self, after: datetime, count: int, zone: ZoneInfo | None = None) -> list[datetime]:
        """The next ``count`` firings after ``after`` (fewer when it stops firing)."""
        found: list[datetime] = []
        moment = after
        while len(found) < count:
            following = self.next_after(moment, zone)
            if following is None:
                break
            found.append(following)
            moment = following
        return found


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    there = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return there.replace(tzinfo=None) == wall


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall time in ``zone``: its first occurrence when it happens twice,
    the end of the gap when it does not exist at all."""
    if _exists(wall, zone):
        return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    probe = wall.replace(second=0)
    for _ in range(24 * 60):  # gaps are whole minutes long and at most a day
        probe += timedelta(minutes=1)
        if _exists(probe, zone):
            return probe.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return wall.replace(tzinfo=zone).astimezone(UTC)
