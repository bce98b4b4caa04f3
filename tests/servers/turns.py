"""A loopback relay that counts the client's turns on FTP control connections (issue 19).

A *turn* is a burst of bytes from the client that follows something from the server (or the
connection's start): each one costs a round trip on a link with latency, whatever number of
commands it carries. Pipelined commands are one turn; commands sent one at a time are one
turn each. The relay forwards bytes unchanged (TLS included: it never decrypts), so the FTP
server and client are real; data connections go straight to the server (EPSV gives a port,
the client dials the control connection's peer address: the relay's, which is the server's
host as well).

    with TurnCounter(server.host, server.port) as relay:
        ...  # connect the client to relay.host, relay.port
    relay.client_turns()  # summed over every control connection relayed

Every wait is bounded; the relay's threads end when either side closes, and ``close`` joins
them.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from types import TracebackType
from typing import Self

__all__ = ["TurnCounter"]


class TurnCounter:
    """See the module docstring."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        timeout: float = 30.0,
        reply_delay: float = 0.0,
    ) -> None:
        self.target = (target_host, target_port)
        self.timeout = timeout
        #: seconds each burst from the server is held before it is passed on (a slow link)
        self.reply_delay = reply_delay
        self.host = "127.0.0.1"
        self.port = 0
        #: per relayed connection, the client's and the server's bursts, in order:
        #: ``("c", n_bytes)`` / ``("s", n_bytes)``
        self.bursts: list[list[tuple[str, int]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        listener.listen(16)
        listener.settimeout(0.1)
        self._listener = listener
        self.port = listener.getsockname()[1]
        thread = threading.Thread(target=self._accept, name="turn-counter", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def client_turns(self) -> int:
        """The client's turns over every connection relayed so far."""
        with self._lock:
            return sum(sum(1 for side, _ in conn if side == "c") for conn in self.bursts)

    def connections(self) -> int:
        with self._lock:
            return len(self.bursts)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(self.target, timeout=self.timeout)
            for sock in (client, server):  # forward each burst as it came, not Nagle-merged
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            record: list[tuple[str, int]] = []
            with self._lock:
                self.bursts.append(record)
            thread = threading.Thread(
                target=self._relay, args=(client, server, record), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _relay(
        self, client: socket.socket, server: socket.socket, record: list[tuple[str, int]]
    ) -> None:
        peer = {client: server, server: client}
        side = {client: "c", server: "s"}
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            stack.enter_context(server)
            selector = stack.enter_context(selectors.DefaultSelector())
            for sock in (client, server):
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            idle = 0.0
            while not self._stop.is_set() and idle < self.timeout:
                events = selector.select(timeout=0.1)
                if not events:
                    idle += 0.1
                    continue
                idle = 0.0
                for key, _ in events:
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        with contextlib.suppress(OSError):
                            peer[sock].shutdown(socket.SHUT_WR)
                        selector.unregister(sock)
                        if not selector.get_map():
                            return
                        continue
                    with self._lock:
                        if record and record[-1][0] == side[sock]:
                            record[-1] = (side[sock], record[-1][1] + len(data))
                        else:
                            record.append((side[sock], len(data)))
                    if side[sock] == "s" and self.reply_delay:
                        time.sleep(self.reply_delay)
                    peer[sock].setblocking(True)
                    peer[sock].settimeout(self.timeout)
                    try:
                        peer[sock].sendall(data)
                    except OSError:
                        return
                    finally:
                        peer[sock].setblocking(False)
