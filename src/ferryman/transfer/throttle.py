"""Bandwidth limits: a thread-safe token bucket per limit, and ``10M``-style rates.

``--bwlimit`` is one bucket shared by every worker of a run (the total stays under the rate
however many files are in flight); ``--bwlimit-per-file`` is a bucket of each transfer's own
(one file's segments share it). A transfer charges every bucket it is under for each chunk it
moves and then sleeps as long as the most indebted bucket needs to refill: sleep-based, no busy
wait, and the buckets may go into debt, so a chunk larger than the burst still passes (after
its wait) instead of blocking for ever.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Protocol

from ..errors import ConfigError

__all__ = ["Bandwidth", "Limit", "Throttle", "parse_rate"]

#: unit -> bytes; decimal (k, M, G) and binary (KiB, MiB, GiB); "B" and "/s" are optional
_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgG]i?)?\s*(?:[bB])?\s*(?:/\s*s)?\s*$")
#: the slowest rate accepted (bytes per second): below it one chunk takes minutes
MIN_RATE = 1024
#: how much a bucket holds at most, in seconds of its rate (a short burst after a pause)
BURST_SECONDS = 0.1


def parse_rate(text: str | float | int, *, option: str | None = None) -> float:
    """Bytes per second from ``10M``, ``512k``, ``1.5MiB``, ``2000000`` (k/M/G are powers of
    1000, Ki/Mi/Gi of 1024, a trailing ``B`` or ``/s`` is allowed); raises ConfigError,
    whose message starts with ``option`` when given."""
    prefix = f"{option}: " if option else ""
    if isinstance(text, bool):
        raise ConfigError(f"{prefix}expected a rate such as 10M, got {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _RATE.match(text)
        if match is None:
            raise ConfigError(
                f"{prefix}{text!r} is not a rate",
                hint="write bytes per second as a number with an optional unit: "
                "512k, 10M, 1.5MiB, 2G (k/M/G = 1000s, Ki/Mi/Gi = 1024s)",
            )
        number, unit = match.groups()
        value = float(number) * _UNITS[(unit or "").lower()]
    if value < MIN_RATE:
        raise ConfigError(
            f"{prefix}{text!r} is {value:g} bytes per second, below the least of {MIN_RATE} (1Ki)",
            hint="give at least 1Ki; a unit is probably missing (10M is 10 megabytes/s)",
        )
    return value


class Limit(Protocol):
    """What a copy calls after moving each chunk (it sleeps when over the rate)."""

    def take(self, nbytes: int) -> None: ...


class Throttle:
    """A token bucket of ``rate`` bytes per second, safe to share between threads."""

    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else self.rate * BURST_SECONDS
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def charge(self, nbytes: int) -> float:
        """Take ``nbytes`` from the bucket (it may go into debt) and return how many seconds
        the caller must wait before moving more; does not sleep itself."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= nbytes
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def take(self, nbytes: int) -> None:
        """Charge ``nbytes`` and sleep until the bucket is out of debt."""
        wait = self.charge(nbytes)
        if wait > 0:
            time.sleep(wait)


class _Chain:
    """Several buckets charged together; the wait is the longest one's."""

    def __init__(self, buckets: tuple[Throttle, ...]) -> None:
        self.buckets = buckets

    def take(self, nbytes: int) -> None:
        wait = max(bucket.charge(nbytes) for bucket in self.buckets)
        if wait > 0:
            time.sleep(wait)


class Bandwidth:
    """A run's limits: ``total`` bytes per second shared by all its transfers, and
    ``per_file`` for each transfer (None: no limit)."""

    def __init__(self, total: float | None = None, per_file: float | None = None) -> None:
        self.total = Throttle(total) if total else None
        self.per_file = per_file

    def for_file(self) -> Limit | None:
        """What one transfer charges: the shared bucket, a bucket of its own, or both."""
        own = Throttle(self.per_file) if self.per_file else None
        if own is not None and self.total is not None:
            return _Chain((own, self.total))
        return own or self.total
