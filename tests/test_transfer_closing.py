"""Connections closed together (transfer/closing.py, issue 19): a run's siblings, a segmented
copy's connections and the fsspec pool end in one round trip, not one per connection."""

from __future__ import annotations

import logging
import threading

import pytest

from ferryman.backends.memory import MemoryBackend
from ferryman.errors import ConnectError
from ferryman.transfer.closing import close_all
from ferryman.transfer.sides import Side


class _SlowGoodbye(MemoryBackend):
    """A connection whose close waits for the server's goodbye: here, until every other
    connection of the test is closing too (a barrier that breaks when closes come one by one)."""

    def __init__(self, barrier: threading.Barrier, error: Exception | None = None) -> None:
        super().__init__()
        self.barrier = barrier
        self.error = error

    def close(self) -> None:
        self.barrier.wait()  # raises BrokenBarrierError after its time-out when closed in turn
        super().close()
        if self.error is not None:
            raise self.error


def test_connections_close_together() -> None:
    barrier = threading.Barrier(12, timeout=10)
    backends = [_SlowGoodbye(barrier) for _ in range(12)]
    close_all(backends)
    assert all(backend.closed for backend in backends)


def test_one_failed_close_does_not_keep_the_others_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    barrier = threading.Barrier(3, timeout=10)
    failing = _SlowGoodbye(barrier, ConnectError("the server hung up"))
    backends = [_SlowGoodbye(barrier), failing, _SlowGoodbye(barrier)]
    with caplog.at_level(logging.WARNING, logger="ferryman.transfer.closing"):
        close_all(backends)  # closing ends a run: not raised, logged
    assert all(backend.closed for backend in backends)
    assert "hung up" in caplog.text


def test_one_or_none() -> None:
    close_all([])
    single = MemoryBackend()
    close_all([single])
    assert single.closed


def test_a_runs_siblings_close_together() -> None:
    barrier = threading.Barrier(5, timeout=10)
    siblings = iter([_SlowGoodbye(barrier) for _ in range(5)])

    class First(MemoryBackend):
        def sibling(self) -> MemoryBackend:
            return next(siblings)

    side = Side(First())
    side.take()  # the first connection: closed by whoever opened it, not by the side
    taken = [side.take() for _ in range(5)]
    side.close_extra()
    assert all(backend.closed for backend in taken)
    assert not side.first.closed  # type: ignore[attr-defined]
