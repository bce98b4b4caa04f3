"""One endpoint's connections for a run of the transfer engine: the first, then siblings
made on demand or borrowed from a lender; the server's refusals counted and remembered
(``transfer.hostlimits``)."""

from __future__ import annotations

import threading
from typing import Protocol

from ..backends.base import Backend
from ..errors import FerrymanError
from . import hostlimits
from .closing import close_all
from .inflight import host_key

__all__ = ["Lender", "RunOver", "Side"]


class RunOver(Exception):
    """A connection was made after the run ended: it was closed, there is nothing to do."""


class Lender(Protocol):
    """Where a run borrows its extra connections instead of making and closing its own (the
    fsspec filesystem's pool, which keeps them for the next call)."""

    def acquire(self) -> Backend: ...
    def release(self, backend: Backend) -> None: ...


class Side:
    """One endpoint's connections: the first one, then siblings made on demand (or borrowed
    from ``lender``, and given back at the end)."""

    def __init__(self, first: Backend, lender: Lender | None = None) -> None:
        self.first = first
        self.lender = lender
        self._first_taken = False
        self._lock = threading.Lock()
        self._closed = False
        self.extra: list[Backend] = []
        #: connections the server refused, and the most this side held at once
        self.refused = 0
        self.most = 1

    def _another(self) -> Backend:
        if self.lender is not None:
            return self.lender.acquire()
        backend = self.first.sibling()
        try:
            backend.connect()
        except BaseException:
            backend.close()
            raise
        return backend

    def take(self) -> Backend:
        with self._lock:
            if not self._first_taken:
                self._first_taken = True
                return self.first
        try:
            backend = self._another()
        except FerrymanError:
            with self._lock:
                self.refused += 1
            raise
        if backend is not self.first:
            with self._lock:
                late = self._closed
                if not late:
                    self.extra.append(backend)
                    self.most = max(self.most, 1 + len(self.extra))
            if late:  # the run ended while this connection was being made (issue 13)
                self._end(backend)
                raise RunOver
        return backend

    def _end(self, backend: Backend) -> None:
        if self.lender is not None:
            self.lender.release(backend)
        else:
            backend.close()

    def remember_limit(self) -> None:
        """A server that refused connections: remember how many it took (``hostlimits``)."""
        if self.refused and self.lender is None:
            hostlimits.remember(host_key(self.first), self.most)

    def close_extra(self) -> None:
        """Close (or give back) the siblings, together (``closing.close_all``); one whose
        connect is still under way closes when it returns."""
        with self._lock:
            self._closed = True
            extra, self.extra = self.extra, []
        if self.lender is None:
            close_all(extra)
            return
        for backend in extra:
            self.lender.release(backend)
