"""Retry policy: exponential back-off with jitter, bounded in attempts and in total time.

Only errors classified retriable are retried (4xx, 421, 425, 426, time-outs, resets); a 5xx,
a refused login or a refused certificate fails at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import FerrymanError

__all__ = ["RetryPolicy", "with_retries"]

log = logging.getLogger("ferryman")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 5
    delay: float = 1.0  #: first back-off in seconds, doubled each time
    max_delay: float = 60.0
    max_total: float = 900.0  #: give up once this many seconds have passed since the start

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): full-ish jitter."""
        ceiling = min(self.max_delay, self.delay * (2 ** (attempt - 1)))
        return float(ceiling * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not cryptography


def with_retries(
    action: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[FerrymanError, int], None] | None = None,
) -> T:
    """Run ``action``; retry retriable FerrymanErrors per ``policy``; re-raise the last one."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return action()
        except FerrymanError as err:
            attempt += 1
            elapsed = time.monotonic() - started
            if not err.retriable or attempt > policy.retries:
                raise
            wait = policy.backoff(attempt)
            if elapsed + wait > policy.max_total:
                raise
            # one short line per retry: the message, not the hint (said once, with the error),
            # and ``what`` only when the message does not already say it
            said = err.message
            if said.split(" ")[:2] != what.split(" ")[:2]:
                said = f"{what} failed ({said})"
            log.warning("%s; retry %d of %d in %.1f s", said, attempt, policy.retries, wait)
            if on_retry is not None:
                on_retry(err, attempt)
            sleep(wait)
