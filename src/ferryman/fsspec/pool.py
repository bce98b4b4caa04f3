"""The connections of one fsspec filesystem, shared by the threads that use it.

An fsspec filesystem is one cached object per set of storage options, used from many threads
at once (dask's threaded scheduler, pyarrow's readers). A ferryman backend carries one
operation at a time (one FTP control connection), so the filesystem lends connections from
this pool: the first one made, then siblings (``Backend.sibling``: another control connection
for FTP, another channel of the same SSH connection for SFTP). An open file holds its
connection until it is closed; a metadata call borrows one for the call. Connecting is retried
under the connection's policy; a backend whose session broke reconnects on its next use, so
a connection the server dropped while idle costs one reconnect, not an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from ..backends import Backend, ReadStream, WriteStream, backend_for
from ..connection import Connection
from ..retry import RetryPolicy, with_retries
from ..transfer.closing import close_all

__all__ = ["BackendPool", "Loan"]

T = TypeVar("T")

#: idle connections kept for the next call; more are closed when returned
IDLE_KEPT = 8


def _in_python_thread(action: Callable[[], T]) -> T:
    """Run ``action`` in a thread Python started, waiting for it.

    Why: pyarrow reads files from its own C++ threads. A TLS control connection made in such a
    thread was found closed (fd -1, "Underlying socket connection gone") once the thread had
    returned to pyarrow, although nothing of ours closed it; made in a Python thread, the same
    connection lives on. Connecting is rare (the pool reuses connections), so the hop is cheap.
    """
    if not isinstance(threading.current_thread(), threading._DummyThread):
        return action()
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(action())
        except BaseException as err:
            failure.append(err)

    thread = threading.Thread(target=run, name="ferryman-fsspec-connect", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


@dataclass(eq=False)
class Loan:
    """A connection lent to one open file, and the stream open on it.

    The pool holds every loan until the file gives it back. Why: pyarrow drops the files it
    opened without closing them; the garbage collector then finalizes the file, its stream
    and its connection together, in any order, and a socket finalized before the file's
    ``close()`` ran was closed under a connection that the close then returned to the pool.
    Held by the pool, the connection and its stream stay alive until the file is closed.
    """

    backend: Backend
    reader: ReadStream | None = None
    writer: WriteStream | None = None


class BackendPool:
    """Connected backends for ``connection``, lent one caller at a time."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.policy = RetryPolicy(retries=connection.retries, delay=connection.retry_delay)
        self._first: Backend | None = None
        self._idle: list[Backend] = []
        self._loans: set[Loan] = set()
        self._lock = threading.Lock()
        self._closed = False

    def describe(self) -> str:
        return self.connection.describe()

    def acquire(self) -> Backend:
        """A connected backend for the caller alone; give it back with :meth:`release`."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            first = self._first
        backend = _in_python_thread(lambda: self._connected(first))
        with self._lock:
            if self._first is None:
                self._first = backend
        return backend

    def _connected(self, first: Backend | None) -> Backend:
        backend = backend_for(self.connection) if first is None else first.sibling()
        try:
            with_retries(backend.connect, self.policy, f"connecting to {backend.describe()}")
        except BaseException:
            backend.close()
            raise
        return backend

    def release(self, backend: Backend) -> None:
        """Take ``backend`` back (kept for the next caller, or closed when enough are idle)."""
        with self._lock:
            keep = not self._closed and len(self._idle) < IDLE_KEPT
            if keep:
                self._idle.append(backend)
        if not keep and backend is not self._first:
            backend.close()

    def lend(self) -> Loan:
        """A connection for an open file, held by the pool too (see :class:`Loan`)."""
        loan = Loan(self.acquire())
        with self._lock:
            self._loans.add(loan)
        return loan

    def settle(self, loan: Loan) -> None:
        """The file is done with ``loan``: its connection goes back to the pool."""
        with self._lock:
            self._loans.discard(loan)
        self.release(loan.backend)

    @contextmanager
    def backend(self) -> Iterator[Backend]:
        backend = self.acquire()
        try:
            yield backend
        finally:
            self.release(backend)

    def call(self, what: str, action: Callable[[Backend], T]) -> T:
        """Run ``action`` on a lent backend, retried under the connection's policy (a dropped
        connection reconnects on the retry)."""

        def attempt() -> T:
            with self.backend() as backend:
                return action(backend)

        return with_retries(attempt, self.policy, what)

    def close(self) -> None:
        """Close every idle connection, the first one last (SFTP siblings ride on it)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            first, self._first = self._first, None
            idle += [loan.backend for loan in self._loans]
            self._loans.clear()
        close_all(backend for backend in idle if backend is not first)
        if first is not None:
            first.close()
