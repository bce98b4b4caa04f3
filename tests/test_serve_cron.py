"""Cron expressions in a time zone (ferryman.serve.cron): syntax, next times, DST, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ferryman.serve.cron import CronError, CronExpression

BERLIN = ZoneInfo("Europe/Berlin")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def upcoming(text: str, start: datetime, count: int, zone: ZoneInfo | None = None) -> list[str]:
    found = CronExpression.parse(text).upcoming(start, count, zone)
    return [t.astimezone(zone or UTC).isoformat() for t in found]


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ("*/15 * * * *", at(2026, 1, 1, 0, 7), ["00:15", "00:30", "00:45"]),
        ("0 9-11 * * *", at(2026, 1, 1, 9, 0), ["10:00", "11:00", "09:00"]),
        ("5,10 0 * * *", at(2026, 1, 1), ["00:05", "00:10", "00:05"]),
        ("10/20 * * * *", at(2026, 1, 1), ["00:10", "00:30", "00:50"]),
        ("@hourly", at(2026, 1, 1, 0, 30), ["01:00", "02:00", "03:00"]),
    ],
)
def test_times_of_day(text: str, start: datetime, expected: list[str]) -> None:
    found = [t[11:16] for t in upcoming(text, start, 3)]
    assert found == expected


def test_six_fields_put_seconds_first() -> None:
    found = upcoming("*/20 * * * * *", at(2026, 1, 1, 0, 0, 5), 3)
    assert found == [
        "2026-01-01T00:00:20+00:00",
        "2026-01-01T00:00:40+00:00",
        "2026-01-01T00:01:00+00:00",
    ]


def test_next_is_strictly_after() -> None:
    expression = CronExpression.parse("0 * * * *")
    assert expression.next_after(at(2026, 1, 1, 5, 0)) == at(2026, 1, 1, 6, 0)


def test_names_and_sunday_as_seven() -> None:
    mondays = upcoming("0 0 * JAN MON", at(2026, 1, 1), 3)
    assert [t[:10] for t in mondays] == ["2026-01-05", "2026-01-12", "2026-01-19"]
    assert upcoming("0 0 * * 7", at(2026, 1, 1), 1) == upcoming("0 0 * * SUN", at(2026, 1, 1), 1)


def test_day_of_month_or_day_of_week_when_both_are_given() -> None:
    found = [t[:10] for t in upcoming("0 9 1 * MON", at(2026, 1, 1), 4)]
    assert found == ["2026-01-01", "2026-01-05", "2026-01-12", "2026-01-19"]


def test_leap_day() -> None:
    assert upcoming("0 0 29 2 *", at(2026, 1, 1), 1) == ["2028-02-29T00:00:00+00:00"]


def test_a_time_zone() -> None:
    found = upcoming("0 2 * * *", at(2026, 1, 1), 1, BERLIN)
    assert found == ["2026-01-01T02:00:00+01:00"]


def test_a_skipped_wall_time_fires_once_after_the_gap() -> None:
    # 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day
    found = upcoming("30 2 * * *", at(2026, 3, 28, 12), 2, BERLIN)
    assert found == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_a_repeated_wall_time_fires_once() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
    found = upcoming("30 2 * * *", at(2026, 10, 24, 12), 2, BERLIN)
    assert found == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    hourly = upcoming("0 * * * *", at(2026, 10, 24, 22), 4, BERLIN)
    assert [t[11:19] for t in hourly] == ["01:00:00", "02:00:00", "03:00:00", "04:00:00"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", "minute: 61 is outside 0-59"),
        ("* * *", "has 3 fields"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step must be at least 1"),
        ("0 0 * FOO *", "month: 'FOO' is not a number or a name"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 1,x * *", "day of month: 'x' is not a number"),
        ("0 0 * * 1--2", "is not a value, range or step"),
    ],
)
def test_errors_say_which_field(text: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("(", r"\(").replace("*", r"\*")):
        CronExpression.parse(text)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CronExpression.parse("@daily").next_after(datetime(2026, 1, 1))
