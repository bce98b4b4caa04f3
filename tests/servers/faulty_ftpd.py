"""pyftpdlib (the embedded server) with faults injected into its data connections.

A real FTP/FTPS server -- the same :class:`ferryman.embedded.EmbeddedServer`, same TLS modes,
same file system -- whose data-transfer handler misbehaves on command, for the transfer
engine's fault tests::

    faults = [DataFault("RETR", after=100_000, action="426")]   # first download cut at 100 kB
    with FaultyFtpServer(root, tls="none", password=PW, faults=faults) as server:
        ...
    assert faults[0].hits == 1

Actions, once ``after`` bytes of the file went through the data connection:

- ``"426"``: the server closes the data connection and replies ``426`` (a dropped transfer);
- ``"421"``: it closes the data connection, replies ``421`` and ends the control connection
  too (as pyftpdlib does when a data connection times out);
- ``"stall"``: it stops sending (RETR) or reading (STOR) and never replies: the client sees a
  silent data connection. A stalled transfer is left alone until the client goes away or the
  server stops (``stall_seconds`` bounds it, then the connection is closed with a 426).

``times`` is how many transfers the fault hits (None: every one); ``name`` restricts it to
files of that base name. ``listing_faults={"sub": 1}`` makes the next MLSD/LIST of a directory
named ``sub`` fail with ``451`` (a temporary failure) that many times. The server also records
how many sessions were logged in at once (:attr:`FaultyFtpServer.peak_sessions`) and in all
(:attr:`FaultyFtpServer.logins`).
Everything runs in the server's IO-loop thread; sendfile() is off so every byte goes through
the handler.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ferryman.embedded import EmbeddedServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.handlers.ftp.producers import FileProducer
    from pyftpdlib.log import logger as _pyftpdlib_logger

__all__ = ["DataFault", "FaultyFtpServer"]

Action = Literal["426", "421", "stall"]


@dataclass
class DataFault:
    """One fault: ``command`` (RETR or STOR) cut by ``action`` after ``after`` bytes."""

    command: Literal["RETR", "STOR"]
    after: int
    action: Action = "426"
    times: int | None = 1
    name: str | None = None
    stall_seconds: float = 30.0
    hits: int = 0  #: how many transfers it hit so far
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def claim(self, command: str, path: str) -> bool:
        """Whether this transfer of ``path`` is hit (counts it)."""
        if command != self.command:
            return False
        if self.name is not None and os.path.basename(path) != self.name:
            return False
        with self._lock:
            if self.times is not None and self.hits >= self.times:
                return False
            self.hits += 1
            return True


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.logins = 0


class _FaultyDTPMixin:
    """Mixed in before pyftpdlib's (TLS_)DTPHandler."""

    faults: list[DataFault] = []
    # set by pyftpdlib's DTPHandler
    cmd_channel: Any
    file_obj: Any
    receive: bool
    tot_bytes_sent: int
    tot_bytes_received: int
    ioloop: Any
    _fileno: int | None
    _resp: tuple[Any, ...]

    _fault: DataFault | None = None
    _tripped = False

    def _arm(self, command: str) -> None:
        path = getattr(self.file_obj, "name", "")
        for fault in self.faults:
            if fault.claim(command, str(path)):
                self._fault = fault
                return

    # -- downloads ---------------------------------------------------------------------------

    def push_with_producer(self, producer: Any) -> None:
        if isinstance(producer, FileProducer):
            self._arm("RETR")
        super().push_with_producer(producer)  # type: ignore[misc]

    def send(self, data: bytes) -> int:
        fault = self._fault
        if fault is None or self.receive:
            return int(super().send(data))  # type: ignore[misc]
        if self._tripped:
            return 0
        room = fault.after - self.tot_bytes_sent
        if room > 0:
            return int(super().send(data[:room]))  # type: ignore[misc]
        self._trip(fault)
        return 0

    # -- uploads -----------------------------------------------------------------------------

    def enable_receiving(self, type: str, cmd: str) -> None:
        super().enable_receiving(type, cmd)  # type: ignore[misc]
        if cmd == "STOR":
            self._arm("STOR")

    def handle_read(self) -> None:
        fault = self._fault
        if fault is None or not self.receive:
            super().handle_read()  # type: ignore[misc]
            return
        if self._tripped:
            return
        if self.tot_bytes_received >= fault.after:
            self._trip(fault)
            return
        super().handle_read()  # type: ignore[misc]

    def handle_read_event(self) -> None:  # pyftpdlib aliases it to DTPHandler.handle_read
        self.handle_read()

    # -- the faults --------------------------------------------------------------------------

    def _trip(self, fault: DataFault) -> None:
        self._tripped = True
        if fault.action == "stall":
            # no more interest in the socket: nothing sent, nothing read, no reply
            self.ioloop.modify(self._fileno, 0)
            self.call_later(fault.stall_seconds, self._give_up)  # type: ignore[attr-defined]
            return
        if fault.action == "421":
            self._resp = (
                "421 Data connection lost; closing control connection.",
                _pyftpdlib_logger.debug,
            )
            self.close()  # type: ignore[attr-defined]
            self.cmd_channel.close_when_done()
            return
        self._resp = ("426 Connection closed; transfer aborted.", _pyftpdlib_logger.debug)
        self.close()  # type: ignore[attr-defined]

    def _give_up(self) -> None:
        self._resp = ("426 Stalled transfer given up.", _pyftpdlib_logger.debug)
        self.close()  # type: ignore[attr-defined]


class FaultyFtpServer(EmbeddedServer):
    """An :class:`EmbeddedServer` whose data connections obey ``faults`` (see the module)."""

    def __init__(
        self,
        root: Path,
        *,
        faults: list[DataFault] | None = None,
        listing_faults: dict[str, int] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(root, **options)
        self.faults: list[DataFault] = faults if faults is not None else []
        self.listing_faults: dict[str, int] = dict(listing_faults or {})
        self._stats = _Stats()

    @property
    def peak_sessions(self) -> int:
        """The most sessions logged in at the same time."""
        return self._stats.peak

    @property
    def logins(self) -> int:
        return self._stats.logins

    def _make_handler(self) -> type[Any]:
        handler = super()._make_handler()
        dtp = type(
            f"Faulty{handler.dtp_handler.__name__}",
            (_FaultyDTPMixin, handler.dtp_handler),
            {"faults": self.faults},
        )
        stats = self._stats

        def on_login(session: Any, username: str) -> None:
            with stats.lock:
                session._ferryman_counted = True
                stats.logins += 1
                stats.active += 1
                stats.peak = max(stats.peak, stats.active)

        def on_disconnect(session: Any) -> None:
            if getattr(session, "_ferryman_counted", False):
                with stats.lock:
                    session._ferryman_counted = False
                    stats.active -= 1

        listing_faults, lock = self.listing_faults, stats.lock

        def failing_listing(command: str) -> Any:
            original = getattr(handler, f"ftp_{command}")

            def listing(session: Any, path: str) -> Any:
                name = os.path.basename(str(path).rstrip("/"))
                with lock:
                    left = listing_faults.get(name, 0)
                    if left:
                        listing_faults[name] = left - 1
                if left:
                    session.respond("451 Requested action aborted: local error in processing.")
                    return None
                return original(session, path)

            return listing

        attrs = {
            "dtp_handler": dtp,
            "use_sendfile": False,
            "on_login": on_login,
            "on_disconnect": on_disconnect,
            "ftp_MLSD": failing_listing("MLSD"),
            "ftp_LIST": failing_listing("LIST"),
        }
        return type(f"Faulty{handler.__name__}", (handler,), attrs)
