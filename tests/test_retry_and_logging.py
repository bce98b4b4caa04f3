"""Retry policy (bounded, by class) and the secret mask in log records."""

from __future__ import annotations

import logging

import pytest

from ferryman.errors import AuthenticationError, ConnectError, TransferError
from ferryman.retry import RetryPolicy, with_retries
from ferryman.wirelog import SecretMaskFilter, WireLog, register_secret


def test_retriable_errors_are_retried_with_growing_backoff() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectError("dropped")
        return "ok"

    policy = RetryPolicy(retries=5, delay=1.0, max_delay=3.0)
    assert with_retries(flaky, policy, "op", sleep=waits.append) == "ok"
    assert len(calls) == 4
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 1.5 <= waits[2] <= 3.0


def test_retries_are_bounded_in_attempts() -> None:
    calls: list[int] = []

    def always() -> None:
        calls.append(1)
        raise TransferError("426 aborted")

    with pytest.raises(TransferError):
        with_retries(always, RetryPolicy(retries=2, delay=0.0), "op", sleep=lambda _: None)
    assert len(calls) == 3


def test_retries_are_bounded_in_total_time() -> None:
    calls: list[int] = []

    def always() -> None:
        calls.append(1)
        raise ConnectError("dropped")

    policy = RetryPolicy(retries=50, delay=10.0, max_total=5.0)
    with pytest.raises(ConnectError):
        with_retries(always, policy, "op", sleep=lambda _: None)
    assert len(calls) == 1  # the first back-off (5-10 s) would already pass the 5 s budget


def test_permanent_errors_are_not_retried() -> None:
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise AuthenticationError("530")

    with pytest.raises(AuthenticationError):
        with_retries(refused, RetryPolicy(retries=5, delay=0.0), "op", sleep=lambda _: None)
    assert calls == [1]


def test_registered_secrets_are_masked_in_any_record() -> None:
    register_secret("sw0rdfish-secret")
    record = logging.LogRecord(
        "ferryman", logging.INFO, __file__, 1, "oops %s", ("sw0rdfish-secret",), None
    )
    SecretMaskFilter().filter(record)
    assert record.getMessage() == "oops ****"


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_pass_command_is_masked_in_the_transcript() -> None:
    wire_logger = logging.getLogger("ferryman.wire")
    handler = _ListHandler()
    wire_logger.addHandler(handler)
    level = wire_logger.level
    wire_logger.setLevel(logging.DEBUG)
    try:
        wire = WireLog("test")
        wire.sent("PASS hunter2")
        wire.sent("pass hunter2")
        wire.sent("USER bob")
    finally:
        wire_logger.removeHandler(handler)
        wire_logger.setLevel(level)
    assert [m.split("] ", 1)[1] for m in handler.messages] == [
        "> PASS ****",
        "> PASS ****",
        "> USER bob",
    ]
