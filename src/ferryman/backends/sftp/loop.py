"""The private event loop that every SFTP backend of the process shares.

asyncssh is asyncio-only; ferryman's backends are synchronous and used from worker threads. One
daemon thread runs one event loop (started lazily, restarted in a forked child), and callers
hand it coroutines with :func:`run`, which waits for the result with a time-out. The loop
thread itself never waits for a caller, so several worker threads can use it at once without
deadlocks; the thread-safe pieces the streams need are :func:`call_soon` and :func:`spawn`.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["call_soon", "event_loop", "in_loop_thread", "run", "spawn"]

T = TypeVar("T")

log = logging.getLogger("ferryman.sftp")

#: extra seconds the caller waits beyond the coroutine's own time-out, so that the time-out
#: normally fires inside the loop (where it cancels cleanly) rather than in the caller
_GRACE = 5.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_owner_pid: int | None = None


def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_quiet_exception_handler)
    loop.call_soon(started.set)
    loop.run_forever()


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Stray errors of background tasks (a peer closing mid-request) go to the debug log:
    every error that matters reaches its caller through a future."""
    exc = context.get("exception")
    log.debug("sftp event loop: %s%s", context.get("message", ""), f" ({exc!r})" if exc else "")


def event_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use (and again after a fork)."""
    global _loop, _thread, _owner_pid
    with _lock:
        pid = os.getpid()
        if _loop is None or _owner_pid != pid or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            started = threading.Event()
            thread = threading.Thread(
                target=_serve, args=(loop, started), name="ferryman-sftp-loop", daemon=True
            )
            thread.start()
            started.wait()
            _loop, _thread, _owner_pid = loop, thread, pid
        return _loop


def in_loop_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


async def _bounded(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    async with asyncio.timeout(timeout):  # cheaper than wait_for: no second task per call
        return await coro


def run(coro: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``coro`` on the shared loop and return its result; raise what it raised.

    The coroutine is cancelled after ``timeout`` seconds and the builtin ``TimeoutError`` is
    raised (the backend translates it). Interrupting the caller cancels the coroutine too.
    """
    if in_loop_thread():
        coro.close()
        raise RuntimeError("a blocking SFTP call was made from the SFTP event loop itself")
    future = asyncio.run_coroutine_threadsafe(_bounded(coro, timeout), event_loop())
    try:
        return future.result(timeout + _GRACE)
    except concurrent.futures.CancelledError:
        raise builtins.TimeoutError("the operation was cancelled") from None
    except BaseException:
        future.cancel()  # a time-out of the caller, or KeyboardInterrupt: stop the work too
        raise


def call_soon(callback: Callable[..., object], *args: object) -> None:
    """Schedule ``callback(*args)`` on the loop from any thread (never blocks)."""
    event_loop().call_soon_threadsafe(callback, *args)


def spawn(coro: Coroutine[Any, Any, object]) -> concurrent.futures.Future[object]:
    """Start ``coro`` on the loop without waiting for it (best-effort clean-ups)."""
    return asyncio.run_coroutine_threadsafe(coro, event_loop())
