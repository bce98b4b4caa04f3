"""Which files a transfer takes: include/exclude patterns, size and modification-time bounds.

Patterns are shell globs (``*``, ``?``, ``[abc]``) matched case-sensitively against the path
relative to the source root (``2026/orders.csv``); a pattern without ``/`` also matches the
base name anywhere, as rsync and rclone users expect. Times are ``2h``/``30m``/``7d`` ages or
ISO dates and date-times (``2026-11-01``, ``2026-11-01T06:00``; UTC unless an offset is given).
Sizes are bytes with an optional K/M/G/T suffix (powers of 1024).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..backends.base import Entry
from ..errors import ConfigError

__all__ = ["Filters", "parse_age_or_time", "parse_size"]

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_age_or_time(text: str, now: datetime | None = None) -> datetime:
    """An aware UTC instant from ``2h`` (that long before ``now``) or an ISO date/date-time."""
    now = now or datetime.now(UTC)
    match = _AGE.match(text)
    if match:
        return now - timedelta(seconds=float(match[1]) * _UNITS[match[2].lower()])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{text!r} is neither an age nor a date",
            hint="write an age such as 30m, 2h, 7d, or a date such as 2026-11-01 or "
            "2026-11-01T06:00+01:00",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_size(text: str) -> int:
    """Bytes from ``1500``, ``10K``, ``2.5M``, ``1GiB``."""
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"{text!r} is not a size", hint="write bytes, or e.g. 10K, 2.5M, 1G")
    return int(float(match[1]) * _SIZE_UNITS[match[2].lower()])


def _matches(pattern: str, relative: str) -> bool:
    if "/" in pattern:
        return fnmatch.fnmatchcase(relative, pattern.lstrip("/"))
    return fnmatch.fnmatchcase(posixpath.basename(relative), pattern)


@dataclass(frozen=True)
class Filters:
    """What a plan keeps. Files pass when they match an include (or there is none), match no
    exclude, and fall within the size and time bounds. Directories are only pruned by
    excludes, so ``--include '*.csv'`` still descends into sub-directories."""

    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    min_size: int | None = None
    max_size: int | None = None
    newer_than: datetime | None = None  #: modified after this instant
    older_than: datetime | None = None  #: modified before this instant

    @classmethod
    def parse(
        cls,
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        min_size: str | None = None,
        max_size: str | None = None,
        newer_than: str | None = None,
        older_than: str | None = None,
    ) -> Filters:
        """Filters from what users write: sizes such as ``10K``, ages or dates such as
        ``2h`` or ``2026-11-01`` (the command line and job files share this)."""
        return cls(
            include=tuple(include),
            exclude=tuple(exclude),
            min_size=parse_size(min_size) if min_size else None,
            max_size=parse_size(max_size) if max_size else None,
            newer_than=parse_age_or_time(newer_than) if newer_than else None,
            older_than=parse_age_or_time(older_than) if older_than else None,
        )

    @property
    def active(self) -> bool:
        return bool(
            self.include
            or self.exclude
            or self.min_size is not None
            or self.max_size is not None
            or self.newer_than
            or self.older_than
        )

    def descend(self, relative: str) -> bool:
        """Whether to list the directory at ``relative`` at all."""
        return not any(_matches(p, relative) for p in self.exclude)

    def accepts(self, relative: str, entry: Entry) -> bool:
        """Whether the file at ``relative`` (described by ``entry``) belongs to the plan."""
        if self.include and not any(_matches(p, relative) for p in self.include):
            return False
        if any(_matches(p, relative) for p in self.exclude):
            return False
        if self.min_size is not None or self.max_size is not None:
            if entry.size is None:
                return False  # a size bound cannot be checked: never guess
            if self.min_size is not None and entry.size < self.min_size:
                return False
            if self.max_size is not None and entry.size > self.max_size:
                return False
        if self.newer_than is not None or self.older_than is not None:
            if entry.mtime is None:
                return False
            slack = timedelta(seconds=entry.mtime_precision or 0)
            if self.newer_than is not None and entry.mtime + slack <= self.newer_than:
                return False
            if self.older_than is not None and entry.mtime >= self.older_than:
                return False
        return True
