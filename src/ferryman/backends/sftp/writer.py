"""Writing an SFTP file with many write requests in flight and the CLOSE right behind them.

Requests are queued without waiting for their replies, at most ``requests_in_flight`` at a
time (a bounded write-behind window); a failed request is reported by the next ``write`` or by
``close``, which waits for every reply, the CLOSE's included. Small writes are gathered into
full requests; large ones are split into equal requests within the server's limit.

``close`` sends an FSTAT of the handle between the last WRITE and the CLOSE: the server
handles requests on one file in order (draft-ietf-secsh-filexfer-02, 6.1), so its answer is
the size that landed, and checking it costs no round trip of its own (``landed_size``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

import asyncssh

from ...errors import TransferError
from ..base import WriteStream
from . import loop, requests
from .streams import Opener, SftpStream, task_error

if TYPE_CHECKING:
    from .backend import SftpBackend

__all__ = ["SftpWriteStream"]

#: queued in place of data: the FSTAT that reports the landed size, and the CLOSE
_FSTAT = "fstat"
_CLOSE = "close"


class SftpWriteStream(SftpStream, WriteStream):
    """A remote file written with many write requests in flight."""

    def __init__(
        self,
        backend: SftpBackend,
        opener: Opener,
        what: str,
        offset: int,
        request_size: int,
        max_requests: int,
    ) -> None:
        self._offset = offset
        self._request_size = request_size
        self._max_requests = max_requests
        self._in_flight = 0  #: queued or sent, not yet answered (the CLOSE included)
        self._answers = 0  #: replies so far (the caller's time-out counts from the last)
        #: the caller waits until ``_in_flight`` is at most this (-1: nobody waits): the loop
        #: wakes it then, not for every reply
        self._wake_at = -1
        self._pending = bytearray()
        #: requests the loop has yet to send: WRITEs, then the FSTAT and the CLOSE
        self._queued: deque[tuple[int, bytes | str]] = deque()
        self._drain_scheduled = False
        super().__init__(backend, opener, what)

    # -- loop side ---------------------------------------------------------------------------

    def _on_open(self, task: asyncio.Future[asyncssh.SFTPClientFile]) -> None:
        super()._on_open(task)
        error = task_error(task)
        if error is not None:  # nothing queued will be sent: account for it
            with self._cv:
                self._in_flight -= len(self._queued)
                self._queued.clear()
                self._cv.notify_all()

    def _opened(self, file: asyncssh.SFTPClientFile) -> None:
        self._drain()

    def _drain(self) -> None:
        """Send every queued request (one wake-up of the loop for many requests)."""
        file = self._file
        if file is None:
            return  # the handle is not there yet: ``_opened`` drains when it arrives
        with self._cv:
            queued, self._queued = self._queued, deque()
            self._drain_scheduled = False
        for offset, data in queued:  # a request that cannot be sent fails its reply
            if isinstance(data, bytes):
                requests.write(file, offset, data).add_done_callback(self._on_answer)
            elif data == _FSTAT:
                requests.fstat(file).add_done_callback(self._on_size)
            elif (reply := requests.close(file)) is not None:
                reply.add_done_callback(self._on_answer)
            else:
                self._answered(None)  # closed already (an abort)

    def _on_size(self, reply: requests.Reply) -> None:
        # a failed FSTAT only means no size: the caller then asks for it, and a session that
        # broke fails the CLOSE queued behind it anyway
        if task_error(reply) is None and self._file is not None:
            with contextlib.suppress(Exception):  # no size: the caller asks for it
                self.landed_size = requests.size_of(self._file, reply).size
        self._answered(None)

    def _on_answer(self, reply: requests.Reply) -> None:
        error = task_error(reply)
        if error is None and self._file is not None:
            try:
                requests.outcome(self._file, requests.FXP_STATUS, reply)
            except Exception as failed:
                error = failed
        self._answered(error)

    def _answered(self, error: BaseException | None) -> None:
        """One more request answered (``error``: how it failed, if it did)."""
        with self._cv:
            self._in_flight -= 1
            self._answers += 1
            if error is not None and self._error is None:
                self._error = error
            if error is not None or self._in_flight <= self._wake_at:
                self._cv.notify_all()

    # -- caller side -------------------------------------------------------------------------

    def _send(self, data: bytes | str) -> None:
        """Queue a WRITE of ``data`` at the next offset (or ``_FSTAT``, ``_CLOSE``)."""
        with self._cv:
            self._wake_at = self._max_requests - 1
            room = self._cv.wait_for(
                lambda: self._in_flight < self._max_requests or self._error is not None,
                self.timeout,
            )
            self._wake_at = -1
            error = self._error
            wake = False
            if room and error is None:
                self._in_flight += 1
                self._queued.append((self._offset, data))
                if isinstance(data, bytes):
                    self._offset += len(data)
                wake, self._drain_scheduled = not self._drain_scheduled, True
        if error is not None:
            raise self._fail(error)
        if not room:
            raise self._fail(self._timeout("write acknowledgement"))
        if wake:
            loop.call_soon(self._drain)

    def write(self, data: bytes | memoryview) -> None:
        if self._raised is not None:
            raise self._raised
        if self.closed:
            raise TransferError(f"{self.what}: write after close")
        if self._error is not None:
            raise self._fail(self._error)
        view = memoryview(data).cast("B")
        self.bytes_transferred += len(view)
        size = self._request_size
        if self._pending:  # complete the request that small writes started
            take = min(size - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < size:
                return
            self._send(bytes(self._pending))
            self._pending.clear()
        if len(view) < size // 4:
            self._pending += view  # small writes are gathered into full requests
            return
        # Large writes go out as they are, split into equal requests within the limit: one
        # copy (the caller reuses its buffer), no leftovers to copy again.
        parts = -(-len(view) // size)
        step = -(-len(view) // parts)
        for start in range(0, len(view), step):
            self._send(bytes(view[start : start + step]))

    def close(self) -> None:
        if self._raised is not None:
            raise self._raised
        if self.closed:
            return
        if self._pending:
            self._send(bytes(self._pending))
            self._pending.clear()
        # The FSTAT and the CLOSE follow the last WRITE without waiting for the replies: one
        # round trip for all of them.
        self._send(_FSTAT)
        self._send(_CLOSE)
        while True:  # the time-out counts from the last reply, not from the first request
            with self._cv:
                answers = self._answers
                self._wake_at = 0  # woken once, by the last reply (or a failure)
                done = self._cv.wait_for(
                    lambda: self._in_flight == 0 or self._error is not None, self.timeout
                )
                self._wake_at = -1
                error, progressed = self._error, self._answers != answers
            if error is not None:
                raise self._fail(error)
            if done:
                break
            if not progressed:
                raise self._fail(self._timeout("write acknowledgement"))
        self.closed = True
        if self.landed_size is not None:
            self.backend.wire.received(f"FSTAT before CLOSE: size={self.landed_size}")
        self._log_rate()
