"""Reading an SFTP file with a pipelined, in-order, bounded read-ahead window.

Up to ``requests_in_flight`` read requests are outstanding (one goes with the FSTAT that
tells the size, then as many as the size needs, so that a small file costs one request), and
the data goes to ``readinto`` strictly in file order. At most half as many chunks wait for
the reader, so memory stays flat (1.5 x requests_in_flight x request size at most) whatever
the file size. A short read is completed by a request for the missing range before anything
after it is delivered. The size ends the reading where it ends, without one more round trip;
a file that grows meanwhile is read on until the server says EOF. A read opened with the size
its listing gave (``SftpBackend.open_read_ahead``) sends no FSTAT: its reads go right behind
the OPEN's answer, and a short read at that size is the end (a file that grew since fills the
request and is read on; one that shrank ends short and fails the copy's size check).
"""

from __future__ import annotations

import concurrent.futures
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from ...errors import RemoteError
from ..base import ReadStream
from . import loop, requests
from .entries import entry_of
from .streams import Opener, SftpStream, task_error

if TYPE_CHECKING:
    from .backend import SftpBackend

__all__ = ["SftpReadStream"]

#: read requests sent with the FSTAT; once the size is known the whole window is used (a
#: file of unknown size grows it by one request per full reply)
_FIRST_WINDOW = 1


@dataclass(slots=True)
class _Read:
    offset: int
    length: int
    reply: requests.Reply


class SftpReadStream(SftpStream, ReadStream):
    """A remote file read with a pipelined, in-order read-ahead window."""

    def __init__(
        self,
        backend: SftpBackend,
        opener: Opener,
        what: str,
        offset: int,
        request_size: int,
        max_requests: int,
        size_hint: int | None = None,
    ) -> None:
        self._ready: deque[bytes] = deque()
        self._current = memoryview(b"")
        self._eof = False
        self._throttled = False
        # loop side only
        self._requests: deque[_Read] = deque()
        self._next_offset = offset
        self._request_size = request_size
        self._max_requests = max_requests
        self._window = min(_FIRST_WINDOW, max_requests)
        self._backlog = max(2, max_requests // 2)  #: most chunks kept for the reader
        self._size: int | None = None
        #: the size the listing gave (``open_read_ahead``), used instead of an FSTAT
        self._size_hint = size_hint
        #: ``_size`` came from FSTAT (else from the listing: confirmed only by a short read)
        self._size_fresh = False
        #: the CLOSE, sent by the loop as soon as the last byte arrived (nobody waits for
        #: it); None until then
        self.closing: concurrent.futures.Future[object] | None = None
        super().__init__(backend, opener, what)

    # -- loop side ---------------------------------------------------------------------------

    def _opened(self, file: asyncssh.SFTPClientFile) -> None:
        if self._size_hint:  # the listing said: no FSTAT, the whole window at once
            self._size, self._window = self._size_hint, self._max_requests
        elif self._size_hint is None:
            requests.fstat(file).add_done_callback(self._on_stat)
        self._fill()

    def _on_stat(self, reply: requests.Reply) -> None:
        if task_error(reply) is not None or self._stopped or self._file is None:
            return
        try:
            attrs = requests.size_of(self._file, reply)
        except Exception:  # no size: read on until the server says EOF
            return
        if entry_of(self.what, attrs).is_dir:  # opening a directory works; reading it fails
            with self._cv:
                self._error = RemoteError(
                    f"{self.what}: it is a directory", hint="give the path of a file"
                )
                self._stop_requests()
                self._cv.notify_all()
            return
        self._size, self._size_fresh = attrs.size, True
        self._window = self._max_requests  # no request beyond the end: no need to ramp up
        self._fill()

    def _issue(self, offset: int, length: int, *, first: bool = False) -> None:
        assert self._file is not None
        reply = requests.read(self._file, offset, length)
        request = _Read(offset, length, reply)
        if first:
            self._requests.appendleft(request)
        else:
            self._requests.append(request)
        reply.add_done_callback(self._on_read)

    def _fill(self) -> None:
        if self._stopped or self._file is None:
            return
        with self._cv:
            if self._eof or self._error is not None:
                return
            # Requests in flight are bounded by the window, and so are chunks waiting for the
            # reader (half a window): memory stays flat, and as long as the reader keeps up
            # the loop refills at once, without waiting to be woken by it.
            in_flight, waiting = len(self._requests), len(self._ready)
            room = min(self._window - in_flight, self._backlog - waiting)
            self._throttled = waiting >= self._backlog
        for _ in range(room):
            if self._size is not None and self._next_offset >= self._size:
                break  # the end is known: the last request already reaches it
            self._issue(self._next_offset, self._request_size)
            self._next_offset += self._request_size

    def _on_read(self, reply: requests.Reply) -> None:
        task_error(reply)
        if self._stopped or self._file is None:
            return
        # the end is published under the lock together with the last data: a reader that
        # saw it before the data would take the file for shorter than it is
        eof = self._eof
        delivered: list[bytes] = []
        error: BaseException | None = None
        while self._requests and self._requests[0].reply.done() and not eof:
            head = self._requests.popleft()
            error = task_error(head.reply)
            if error is not None:
                break
            try:
                data = requests.data_of(self._file, head.reply)
            except Exception as failed:
                error = failed
                break
            if not data:
                eof = True
                break
            delivered.append(data)
            end = head.offset + len(data)
            if self._size is not None and end >= self._size:
                # the end as FSTAT saw it, or as the listing said and a short read confirms
                # (a file that grew since fills the request: it is read on)
                if end == self._size and (self._size_fresh or len(data) < head.length):
                    eof = True
                    break
                self._size = None  # the file grew: read on until the server says EOF
            if len(data) < head.length:  # a short read: fetch the rest before anything else
                self._request_size = min(self._request_size, len(data))  # the server's limit
                self._issue(end, head.length - len(data), first=True)
                break
            self._window = min(self._window + 1, self._max_requests)
        if eof and error is None and self._error is None:
            self._close_remote(self._file)  # before the reader sees the last byte
        with self._cv:
            self._ready.extend(delivered)
            self._eof = eof
            if error is not None:
                self._error = error
            if self._eof or self._error is not None:
                self._stop_requests()
            if delivered or eof or self._error is not None:
                self._cv.notify_all()
        self._fill()

    def _close_remote(self, file: asyncssh.SFTPClientFile) -> None:
        """Every byte is here: CLOSE at once, from the loop (the reader neither waits for
        its reply nor wakes the loop for it), before any later request (the loop keeps
        order). Nothing depends on the reply: a failure only goes to the log."""
        reply = requests.close(file)
        if reply is None:
            return
        closing: concurrent.futures.Future[object] = concurrent.futures.Future()
        self.closing = closing

        def closed(reply: requests.Reply) -> None:
            error = task_error(reply)
            if error is None:
                try:
                    requests.outcome(file, requests.FXP_STATUS, reply)
                except Exception as failed:
                    error = failed
            if error is not None and not isinstance(
                error, asyncssh.SFTPConnectionLost | asyncssh.ConnectionLost
            ):  # a lost session closed the handle with it: nothing failed
                self.backend.wire.note("%s: closing the handle failed: %s", self.what, error)
            closing.set_result(None)

        reply.add_done_callback(closed)

    def _stop_requests(self) -> None:
        for request in self._requests:
            request.reply.cancel()
        self._requests.clear()

    # -- caller side -------------------------------------------------------------------------

    def readinto(self, buffer: memoryview) -> int:
        if self._raised is not None:
            raise self._raised
        if not self._current:
            if self.closed:
                return 0
            with self._cv:
                arrived = self._cv.wait_for(
                    lambda: self._ready or self._eof or self._error is not None, self.timeout
                )
                chunk = self._ready.popleft() if self._ready else None
                error = self._error
                wake = chunk is not None and self._throttled
                if wake:
                    self._throttled = False
            if chunk is None:
                if error is not None:
                    raise self._fail(error)
                if not arrived:
                    raise self._fail(self._timeout("data"))
                return 0
            if wake:
                loop.call_soon(self._fill)
            self._current = memoryview(chunk)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        self.bytes_transferred += count
        return count

    def close(self) -> None:
        if self.closed:
            return
        if not self._eof or self._current or self._ready:
            self.abort()  # the reader stopped early on purpose: nothing to check
            return
        self.closed = True  # the loop sent the CLOSE when the last byte came (_close_remote)
        self._log_rate()
