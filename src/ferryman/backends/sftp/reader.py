"""Reading an SFTP file with a pipelined, in-order, bounded read-ahead window.

Up to ``requests_in_flight`` read requests are outstanding (one goes with the FSTAT that
tells the size, then as many as the size needs, so that a small file costs one request), and
the data goes to ``readinto`` strictly in file order. At most half as many chunks wait for
the reader, so memory stays flat (1.5 x requests_in_flight x request size at most) whatever
the file size. A short read is completed by a request for the missing range before anything
after it is delivered. The size ends the reading where it ends, without one more round trip;
a file that grows meanwhile is read on until the server says EOF.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import asyncssh

from ...errors import RemoteError
from ..base import ReadStream
from . import loop
from .entries import entry_of
from .streams import Opener, SftpStream, task_error

if TYPE_CHECKING:
    from .backend import SftpBackend

__all__ = ["SftpReadStream"]

#: read requests sent with the FSTAT; once the size is known the whole window is used (a
#: file of unknown size grows it by one request per full reply)
_FIRST_WINDOW = 1


async def _read_at(file: asyncssh.SFTPClientFile, offset: int, length: int) -> bytes:
    return cast(bytes, await file.read(length, offset))  # b"" at the end of the file


@dataclass(slots=True)
class _Read:
    offset: int
    length: int
    task: asyncio.Task[bytes]


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
        #: the CLOSE sent after a complete read (not waited for); None until then
        self.closing: concurrent.futures.Future[object] | None = None
        super().__init__(backend, opener, what)

    # -- loop side ---------------------------------------------------------------------------

    def _opened(self, file: asyncssh.SFTPClientFile) -> None:
        stat = asyncio.ensure_future(file.stat())
        stat.add_done_callback(self._on_stat)
        self._fill()

    def _on_stat(self, task: asyncio.Future[asyncssh.SFTPAttrs]) -> None:
        if task_error(task) is not None or self._stopped:
            return
        attrs = task.result()
        if entry_of(self.what, attrs).is_dir:  # opening a directory works; reading it fails
            with self._cv:
                self._error = RemoteError(
                    f"{self.what}: it is a directory", hint="give the path of a file"
                )
                self._stop_requests()
                self._cv.notify_all()
            return
        self._size = attrs.size
        self._window = self._max_requests  # no request beyond the end: no need to ramp up
        self._fill()

    def _issue(self, offset: int, length: int, *, first: bool = False) -> None:
        assert self._file is not None
        task = asyncio.ensure_future(_read_at(self._file, offset, length))
        request = _Read(offset, length, task)
        if first:
            self._requests.appendleft(request)
        else:
            self._requests.append(request)
        task.add_done_callback(self._on_read)

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

    def _on_read(self, task: asyncio.Future[bytes]) -> None:
        task_error(task)
        if self._stopped:
            return
        delivered: list[bytes] = []
        error: BaseException | None = None
        while self._requests and self._requests[0].task.done() and not self._eof:
            head = self._requests.popleft()
            error = task_error(head.task)
            if error is not None:
                break
            data = head.task.result()
            if not data:
                self._eof = True
                break
            delivered.append(data)
            end = head.offset + len(data)
            if self._size is not None and end >= self._size:
                if end == self._size:
                    self._eof = True  # the file as fstat saw it: read to its end
                    break
                self._size = None  # the file grew: read on until the server says EOF
            if len(data) < head.length:  # a short read: fetch the rest before anything else
                self._request_size = min(self._request_size, len(data))  # the server's limit
                self._issue(end, head.length - len(data), first=True)
                break
            self._window = min(self._window + 1, self._max_requests)
        with self._cv:
            self._ready.extend(delivered)
            if error is not None:
                self._error = error
            if self._eof or self._error is not None:
                self._stop_requests()
            self._cv.notify_all()
        self._fill()

    def _stop_requests(self) -> None:
        for request in self._requests:
            request.task.cancel()
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
        self.closed = True
        # Every byte is here: the CLOSE goes out before any later request (the loop keeps
        # order) and nothing depends on its reply, so the reader does not wait a round trip.
        self.closing = loop.spawn(self._close_quietly())
        self._log_rate()

    async def _close_quietly(self) -> None:
        try:
            await self._close_file()
        except (asyncssh.SFTPConnectionLost, asyncssh.ConnectionLost):
            pass  # the session ended first (a get closes it at once): the server closed the handle
        except Exception as err:  # the data was complete; a failed CLOSE only goes to the log
            self.backend.wire.note("%s: closing the handle failed: %s", self.what, err)
