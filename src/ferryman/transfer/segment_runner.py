"""What segmented downloads and uploads share: the segments, their threads, the extra
connections, and one retry budget for the file (``transfer.segments``,
``transfer.segment_upload``).

A :class:`SegmentedCopy` copies each :class:`Segment` on a connection of its own (its own TCP
flow: links cap each one); a segment whose connection breaks is retried after the policy's
back-off, from where it is known to have landed, and all retries of all segments count against
the file's one budget. The first segment to fail for good stops the others.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..backends.base import Backend
from ..errors import FerrymanError, TransferError
from ..retry import RetryPolicy
from .report import FileOutcome
from .throttle import Limit

__all__ = ["STOP_WAIT", "Segment", "SegmentedCopy", "join", "siblings"]

log = logging.getLogger("ferryman.transfer")

#: most seconds to wait for segments to stop once the copy is given up
STOP_WAIT = 60.0


@dataclass(slots=True)
class Segment:
    start: int
    end: int
    done: int = 0  #: bytes known to have landed, from ``start`` on
    sent: int = 0  #: most bytes any attempt sent (progress is reported once per byte)
    error: BaseException | None = None

    @property
    def left(self) -> int:
        return self.end - self.start - self.done


class SegmentedCopy(abc.ABC):
    """The shared state of one segmented copy: the stop signal and the retries; subclasses
    move one segment's bytes (:meth:`copy_segment`)."""

    def __init__(
        self,
        src_path: str,
        size: int,
        *,
        chunk_size: int,
        progress: Callable[[int], None] | None,
        throttle: Limit | None,
        retry: RetryPolicy,
        outcome: FileOutcome | None,
    ) -> None:
        self.src_path, self.size = src_path, size
        self.chunk_size, self.progress, self.throttle = chunk_size, progress, throttle
        self.retry, self.outcome = retry, outcome
        self.stop = threading.Event()
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._retries = outcome.retries if outcome is not None else 0

    @abc.abstractmethod
    def copy_segment(self, segment: Segment, backend: Backend, buffer: memoryview) -> None:
        """Move what is left of ``segment`` over ``backend``; return early once ``stop`` is
        set; raise FerrymanError when the connection fails (it is then retried)."""

    def counted(self, segment: Segment, position: int, n: int) -> None:
        """Report ``n`` bytes of ``segment`` sent up to ``position`` to progress and the
        throttle (bytes an earlier attempt already reported are charged, not reported)."""
        sent = position - segment.start
        if self.progress is not None and sent > segment.sent:
            self.progress(min(n, sent - segment.sent))
        segment.sent = max(segment.sent, sent)
        if self.throttle is not None:
            self.throttle.take(n)

    def next_retry(self, err: FerrymanError) -> float | None:
        """The back-off before retrying after ``err``, or None when the budget is spent."""
        with self._lock:
            attempt = self._retries + 1
            wait = self.retry.backoff(attempt)
            spent = time.monotonic() - self.started
            if (
                not err.retriable
                or attempt > self.retry.retries
                or spent + wait > self.retry.max_total
            ):
                return None
            self._retries = attempt
            if self.outcome is not None:
                self.outcome.retries = attempt
        log.warning(
            "%s: %s; retry %d of %d of a segment in %.1f s",
            self.src_path,
            err,
            attempt,
            self.retry.retries,
            wait,
        )
        return wait

    def run(self, segment: Segment, backend: Backend) -> None:
        """Copy ``segment`` over ``backend``; keep its error instead of raising it, and
        stop the others when it fails for good."""
        try:
            self._segment(segment, backend)
        except Exception as err:  # not Ctrl-C: that goes straight up the caller's thread
            segment.error = err
            self.stop.set()

    def _segment(self, segment: Segment, backend: Backend) -> None:
        buffer = memoryview(bytearray(self.chunk_size))
        while not self.stop.is_set():
            try:
                self.copy_segment(segment, backend, buffer)
                return
            except FerrymanError as err:
                wait = self.next_retry(err)
                if wait is None:
                    raise
                if self.stop.wait(wait):
                    return  # another segment failed for good meanwhile

    def start(self, parts: list[Segment], connections: list[Backend]) -> list[threading.Thread]:
        """A running thread for each segment on its connection (the caller copies one more
        segment on its own connection meanwhile, then waits with :func:`join`)."""
        threads = [
            threading.Thread(
                target=self.run, args=(segment, backend), name="ferryman-segment", daemon=True
            )
            for segment, backend in zip(parts, connections, strict=True)
        ]
        for thread in threads:
            thread.start()
        return threads

    def raise_failure(self, parts: list[Segment]) -> None:
        """Raise the first segment's error; a segment short of its end without one is a bug."""
        for segment in parts:
            if segment.error is not None:
                raise segment.error
        if any(segment.left for segment in parts):
            raise TransferError(
                f"{self.src_path}: a segment stopped before its end", retriable=False
            )


def siblings(backend: Backend, count: int) -> list[Backend]:
    """Up to ``count`` more connections to ``backend``'s server, made in parallel; the ones
    the server refuses are left out (fewer segments)."""

    def make() -> Backend | None:
        sibling = backend.sibling_with_own_connection()  # its own TCP flow: links cap each
        try:
            sibling.connect()
        except FerrymanError as err:
            log.info("a segment connection was refused (%s); using fewer segments", err)
            sibling.close()
            return None
        except BaseException:
            sibling.close()
            raise
        return sibling

    if count <= 0:
        return []
    with ThreadPoolExecutor(count, thread_name_prefix="ferryman-segment-connect") as pool:
        made = list(pool.map(lambda _: make(), range(count)))
    return [b for b in made if b is not None]


def join(threads: list[threading.Thread], state: SegmentedCopy, limit: float | None = None) -> bool:
    """Wait for the segment threads; True when all have ended. While the copy runs each one
    is bounded by its connection's time-outs; once stopped, by ``limit`` seconds in all."""
    deadline = None if limit is None else time.monotonic() + limit
    for thread in threads:
        while thread.is_alive():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            thread.join(0.5)  # in slices: Ctrl-C reaches the caller's thread meanwhile
            if limit is None and state.stop.is_set():
                deadline = time.monotonic() + STOP_WAIT
                limit = STOP_WAIT
    return True
