"""Reading the dashboard's query parameters, each with an error that says what was wrong."""

from __future__ import annotations

import ipaddress
from datetime import date

__all__ = ["choice", "day", "loopback", "number"]


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def number(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise ValueError(f"{value!r} is not a number")
    return int(value)


def day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a day (YYYY-MM-DD)") from None


def choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise ValueError(f"status {value!r} is not one of {', '.join(allowed)}")
    return value
