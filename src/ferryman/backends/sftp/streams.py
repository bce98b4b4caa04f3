"""What the SFTP file streams share: a deferred OPEN, failing once, time-outs, closing.

Opening does not wait: the OPEN goes out at once, and the loop sends the first requests as
soon as the handle arrives, so a small file costs the caller one wait, not two. A failed OPEN
(no such file, permission denied) is raised by the first ``readinto``/``write`` or by
``close``. The streams themselves are in ``reader`` and ``writer``.

The loop side of a stream (``_on_*``, ``_fill``, ``_drain``) runs in the event-loop thread;
``readinto``, ``write`` and ``close`` in the caller's thread. They meet only under
``self._cv``, which neither side holds while it waits for the other.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncssh

from ...errors import FerrymanError
from ...errors import TimeoutError as FerrymanTimeout
from . import loop

if TYPE_CHECKING:
    from .backend import SftpBackend

__all__ = ["Opener", "SftpStream", "task_error"]

#: opens the file on the server (runs in the loop); see ``SftpBackend.open_read``
Opener = Callable[[], Awaitable[asyncssh.SFTPClientFile]]

_ABORT_WAIT = 5.0


def task_error(task: asyncio.Future[Any]) -> BaseException | None:
    """The task's error, retrieved (so asyncio never reports it as forgotten)."""
    return TimeoutError("request cancelled") if task.cancelled() else task.exception()


class SftpStream:
    """What both directions share: opening, time-outs, failing once, closing, the rate."""

    bytes_transferred: int
    #: the path opened (set by the backend): a "not found" for it gets the login-directory hint
    path: str = ""

    def __init__(self, backend: SftpBackend, opener: Opener, what: str) -> None:
        self.backend = backend
        self.what = what
        self.timeout = backend.conn.timeout
        self.bytes_transferred = 0
        self.started = time.monotonic()
        self.closed = False
        self._cv = threading.Condition()
        self._error: BaseException | None = None  #: a failed request (set by the loop side)
        self._raised: FerrymanError | None = None  #: what this stream raised, raised again
        # loop side only
        self._file: asyncssh.SFTPClientFile | None = None
        self._opening: asyncio.Task[asyncssh.SFTPClientFile] | None = None
        self._stopped = False
        self._awaiting_open = False  #: the caller waits in ``wait_opened`` (under ``_cv``)
        loop.call_soon(self._open, opener)

    # -- loop side ---------------------------------------------------------------------------

    def _open(self, opener: Opener) -> None:
        self._opening = asyncio.ensure_future(opener())
        self._opening.add_done_callback(self._on_open)

    def _on_open(self, task: asyncio.Future[asyncssh.SFTPClientFile]) -> None:
        error = task_error(task)
        with self._cv:
            if error is not None:
                self._error = self._error or error
            else:
                self._file = task.result()
            if error is not None or self._awaiting_open:  # else nobody waits for this alone
                self._cv.notify_all()
        if self._file is not None and not self._stopped:
            self._opened(self._file)

    def _opened(self, file: asyncssh.SFTPClientFile) -> None:
        """Start sending requests (subclasses)."""

    async def _close_file(self) -> None:
        """Close the handle once the OPEN has answered (a no-op if it failed or is closed)."""
        if self._opening is None:
            return
        try:
            file = await self._opening
        except Exception:  # the OPEN failed: there is no handle to close
            return
        await file.close()

    # -- caller side -------------------------------------------------------------------------

    def wait_opened(self) -> None:
        """Wait for the OPEN's answer; raise its error (for callers that need it at once)."""
        with self._cv:
            self._awaiting_open = True
            answered = self._cv.wait_for(
                lambda: self._file is not None or self._error is not None, self.timeout
            )
            self._awaiting_open = False
            error = self._error
        if error is not None:
            raise self._fail(error)
        if not answered:
            raise self._fail(self._timeout("answer to OPEN"))

    def _fail(self, error: BaseException) -> FerrymanError:
        """Give up: close the handle, tell the backend, return the error to raise."""
        failure = self.backend.translate(error, self.what, transfer=True)
        self.backend.hint_not_found(failure, self.path)
        self._raised = failure
        self.backend.wire.received(f"{self.what}: {failure.reply_text or failure.message}")
        self.abort()
        self.backend.after_error(failure)
        return failure

    def _timeout(self, waited_for: str) -> FerrymanTimeout:
        return FerrymanTimeout(
            f"{self.what}: no {waited_for} from {self.backend.describe()} in {self.timeout:g} s",
            hint="the server or network is stuck; raise --timeout if this is expected",
        )

    def _log_rate(self) -> None:
        seconds = max(time.monotonic() - self.started, 1e-6)
        self.backend.wire.note(
            "%s: %d bytes in %.3f s (%.1f MB/s)",
            self.what,
            self.bytes_transferred,
            seconds,
            self.bytes_transferred / seconds / 1e6,
        )

    def abort(self) -> None:
        """Stop, close the handle within a short time-out; never raises."""
        if self.closed:
            return
        self.closed = True

        def stop() -> None:
            self._stopped = True
            self._stop_requests()

        loop.call_soon(stop)
        try:
            loop.run(self._close_file(), min(_ABORT_WAIT, self.timeout))
        except Exception as err:  # the session may be gone already: nothing to keep
            self.backend.after_error(self.backend.translate(err, self.what, transfer=True))

    def _stop_requests(self) -> None:
        """Cancel outstanding requests (loop side; readers)."""
