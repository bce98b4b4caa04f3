"""A TCP relay that puts a slow link between the tools and the loopback servers.

    python -m benchmarks.relay --delay-ms 25 [--rate-per-conn 20MB] [--window 4MiB] \\
        [--stats FILE] --map 127.0.0.2:2121=127.0.0.1:2121 \\
        --map 127.0.0.2:64000-64127=127.0.0.1:64000-64127

Each ``--map LISTEN=TARGET`` (one port, or a range of as many ports on both sides) makes the
relay listen on ``LISTEN`` and forward every accepted connection to ``TARGET``. ``tc netem``
is not available in this kernel ("Specified qdisc kind is unknown"), so the link is modelled
here, in user space, per connection and per direction:

- **delay**: a chunk read at ``t`` is written at ``t + delay`` (one way), in order;
- **handshake**: a TCP connect costs the client one round trip before it can send and the
  server sees the connection after 1.5 round trips; the kernel completes the client's connect
  at once, so the relay holds the client's first bytes until ``accept + RTT`` and connects
  upstream at ``accept + 1.5 RTT`` (a server's banner then reaches the client at ``2 RTT``,
  as on a real link);
- **window**: at most ``--window`` bytes are unacknowledged per direction: a chunk's bytes
  count from when they are read until their ACK would be back (``t + RTT``); reading pauses
  at the window (which one read, 256 KiB at most in asyncio, may overshoot). Without this
  the relay's instant local ACKs would let one flow send at loopback speed whatever the
  delay. The default, 4 MiB, is what Linux reaches with its
  default ``tcp_rmem`` maximum of 6 MiB (the receive window is about 3/4 of the buffer);
- **rate** (optional): a token bucket per direction caps each connection's throughput, as a
  partner's line shaped per flow does;
- back-pressure (a slow receiver pauses the sender's side), half-close (EOF is forwarded
  after the data before it), resets (the other side is aborted after the data before it).

It counts connections, bytes each way and **turns**: a client-to-server burst that starts
after the server sent data, i.e. one request/response exchange. Round trips per file =
(turns + connections) / files (each connection's handshake being one round trip). On
SIGUSR1, and at start (``seq`` 0, when every port is bound), it writes the totals as JSON to
``--stats`` (atomically: written beside it, then renamed).

The relay runs on asyncio Protocols with one timer per direction (no streams, no task per
chunk), so that its own CPU stays small; the harness measures it per run (/proc/PID/stat).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Mapping", "Relay", "RelayStats", "main", "parse_map", "parse_size"]

#: what a transport may buffer before it asks us to pause (asyncio's default is 64 KiB)
_WRITE_HIGH = 1024 * 1024
_EOF = b""  #: a queued end of stream
_RESET = None  #: a queued reset: the other side is aborted


def parse_size(text: str) -> int:
    """``4MiB``, ``20MB``, ``512k``, ``1000`` -> bytes (``K``/``M``/``G`` = 1000s,
    ``KiB``/``MiB``/``GiB`` = 1024s; a trailing ``/s`` is ignored)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(i?)b?(?:/s)?\s*", text, re.IGNORECASE)
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r}: a size is a number and a unit (4MiB, 20MB)")
    number, unit, binary = found.groups()
    base = 1024 if binary else 1000
    power = {"": 0, "k": 1, "m": 2, "g": 3}[unit.lower()]
    return int(float(number) * base**power)


@dataclass(frozen=True)
class Mapping:
    listen_host: str
    listen_port: int
    target_host: str
    target_port: int


def _endpoint(text: str) -> tuple[str, int, int]:
    host, sep, ports = text.rpartition(":")
    low, _dash, high = ports.partition("-")
    if not sep or not host or not low.isdigit() or (high and not high.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT or HOST:LOW-HIGH")
    return host, int(low), int(high or low)


def parse_map(text: str) -> list[Mapping]:
    """``LISTEN=TARGET``: ``127.0.0.2:21=127.0.0.1:2121`` or, port for port, a range
    ``127.0.0.2:64000-64127=127.0.0.1:64000-64127`` (a target of one port is the range's
    first: ``127.0.0.2:64000-64127=127.0.0.1:64000``)."""
    listen, sep, target = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LISTEN=TARGET")
    lhost, llow, lhigh = _endpoint(listen)
    thost, tlow, thigh = _endpoint(target)
    count = lhigh - llow + 1
    if count < 1 or (thigh != tlow and thigh - tlow + 1 != count):
        raise argparse.ArgumentTypeError(f"{text!r}: the two port ranges differ in length")
    return [Mapping(lhost, llow + i, thost, tlow + i) for i in range(count)]


@dataclass
class RelayStats:
    connections: int = 0
    open: int = 0
    turns: int = 0
    c2s_bytes: int = 0
    s2c_bytes: int = 0
    failed_connects: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


class _Direction:
    """One direction of one connection: the delayed queue, the window, the rate."""

    def __init__(self, link: _Link, name: str) -> None:
        self.link, self.name = link, name
        self.src: asyncio.Transport | None = None
        self.dst: asyncio.Transport | None = None
        self.queue: deque[tuple[float, bytes | None]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.in_flight = 0
        self.departure = 0.0  #: when the bucket lets the next byte go (rate cap)
        self.floor = 0.0  #: nothing leaves before this (the handshake)
        self.dst_paused = False
        self.reading_paused = False
        self.finished = False  #: EOF or reset delivered

    # -- input ---------------------------------------------------------------------------

    def push(self, item: bytes | None, size: int = 0) -> None:
        relay, loop = self.link.relay, self.link.loop
        now = loop.time()
        leave = max(now, self.floor, self.departure)
        if size and relay.rate:
            self.departure = leave + size / relay.rate
            leave = self.departure
        when = leave + relay.delay
        self.queue.append((when, item))
        if size:
            self.in_flight += size
            # the ACK of these bytes is back one round trip after they left
            loop.call_at(when + relay.delay, self._acked, size)
            self._gate()
        if self.timer is None:
            self.timer = loop.call_at(self.queue[0][0], self._deliver)

    def _acked(self, size: int) -> None:
        self.in_flight -= size
        self._gate()

    def _gate(self) -> None:
        """Pause reading the source above the window or while the destination is full."""
        if self.src is None:
            return
        stop = self.in_flight >= self.link.relay.window or self.dst_paused
        if stop and not self.reading_paused:
            self.reading_paused = True
            self.src.pause_reading()
        elif not stop and self.reading_paused:
            self.reading_paused = False
            with contextlib.suppress(RuntimeError):  # closing
                self.src.resume_reading()

    # -- output --------------------------------------------------------------------------

    def _deliver(self) -> None:
        self.timer = None
        # upstream not connected yet: made() calls this again
        if self.dst is None or self.link.closed:
            return
        now = self.link.loop.time()
        while self.queue and self.queue[0][0] <= now:
            _when, item = self.queue.popleft()
            if item is _RESET:
                self.finished = True
                self.link.abort()
                return
            if item == _EOF:
                self.finished = True
                if self.dst.can_write_eof() and not self.dst.is_closing():
                    try:
                        self.dst.write_eof()
                    except OSError:  # the peer is gone already (ENOTCONN): nothing to end
                        pass
                self.link.maybe_close()
                if self.link.closed:
                    return
                continue
            self.dst.write(item)
        if self.queue:
            self.timer = self.link.loop.call_at(self.queue[0][0], self._deliver)

    def set_dst_paused(self, paused: bool) -> None:
        self.dst_paused = paused
        self._gate()


class _Side(asyncio.Protocol):
    """The relay's end of one of the two sockets of a connection."""

    def __init__(self, link: _Link, client: bool) -> None:
        self.link, self.client = link, client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH)
        self.link.made(self, transport)

    def data_received(self, data: bytes) -> None:
        self.link.received(self.client, data)

    def eof_received(self) -> bool:
        self.link.outgoing(self.client).push(_EOF)
        return True  # keep the transport: the other direction may still carry data

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self.client, exc)

    def pause_writing(self) -> None:
        self.link.outgoing(not self.client).set_dst_paused(True)

    def resume_writing(self) -> None:
        self.link.outgoing(not self.client).set_dst_paused(False)


class _Link:
    """One relayed connection: the client's socket, the server's, two directions."""

    def __init__(self, relay: Relay, mapping: Mapping) -> None:
        self.relay, self.mapping = relay, mapping
        self.loop = relay.loop
        self.c2s = _Direction(self, "c2s")
        self.s2c = _Direction(self, "s2c")
        self.client: asyncio.Transport | None = None
        self.server: asyncio.Transport | None = None
        self.last_from_server = False
        self.closed = False
        self.connecting: asyncio.Task[object] | None = None

    def outgoing(self, from_client: bool) -> _Direction:
        return self.c2s if from_client else self.s2c

    def made(self, side: _Side, transport: asyncio.Transport) -> None:
        if side.client:
            self.client = transport
            self.c2s.src = self.s2c.dst = transport
            accepted = self.loop.time()
            rtt = 2 * self.relay.delay
            self.c2s.floor = accepted + rtt  # sent after the handshake: at the server at 1.5 RTT
            self.loop.call_at(accepted + 1.5 * rtt, self._connect)
            self.relay.stats.connections += 1
            self.relay.stats.open += 1
            self.relay.links.add(self)
        else:
            self.server = transport
            self.s2c.src = self.c2s.dst = transport
            self.s2c._gate()
            if self.c2s.timer is not None:  # one timer per direction, never two
                self.c2s.timer.cancel()
            self.c2s._deliver()  # what the client sent meanwhile
            if self.closed:
                transport.abort()

    def _connect(self) -> None:
        if self.closed:
            return
        self.connecting = self.loop.create_task(self._open())

    async def _open(self) -> None:
        target = (self.mapping.target_host, self.mapping.target_port)
        try:
            await self.loop.create_connection(lambda: _Side(self, client=False), *target)
        except OSError:
            self.relay.stats.failed_connects += 1
            self.abort()

    def received(self, from_client: bool, data: bytes) -> None:
        stats = self.relay.stats
        if from_client:
            if self.last_from_server:
                stats.turns += 1
            self.last_from_server = False
            stats.c2s_bytes += len(data)
        else:
            self.last_from_server = True
            stats.s2c_bytes += len(data)
        self.outgoing(from_client).push(data, len(data))

    def lost(self, from_client: bool, exc: Exception | None) -> None:
        if self.closed:
            return
        direction = self.outgoing(from_client)
        clean = exc is None and direction.queue and direction.queue[-1][1] == _EOF
        if not clean and not direction.finished:
            direction.push(_RESET)  # the other side learns it after the data before it

    def maybe_close(self) -> None:
        if self.c2s.finished and self.s2c.finished:
            self._close(abort=False)

    def abort(self) -> None:
        self._close(abort=True)

    def _close(self, *, abort: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.relay.stats.open -= 1
        self.relay.links.discard(self)
        for direction in (self.c2s, self.s2c):
            if direction.timer is not None:
                direction.timer.cancel()
                direction.timer = None
        for transport in (self.client, self.server):
            if transport is not None:
                if abort:
                    transport.abort()
                else:
                    transport.close()  # after what is still buffered


class Relay:
    def __init__(
        self,
        mappings: list[Mapping],
        *,
        delay: float,
        window: int = 4 * 1024 * 1024,
        rate: float | None = None,
        stats_path: Path | None = None,
    ) -> None:
        self.mappings = mappings
        self.delay, self.window, self.rate = delay, window, rate
        self.stats_path = stats_path
        self.stats = RelayStats()
        self.seq = 0
        self.servers: list[asyncio.base_events.Server] = []
        self.links: set[_Link] = set()
        self.loop = asyncio.get_running_loop()

    async def start(self) -> None:
        for mapping in self.mappings:
            server = await self.loop.create_server(
                lambda m=mapping: _Side(_Link(self, m), client=True),  # type: ignore[misc]
                mapping.listen_host,
                mapping.listen_port,
                reuse_address=True,
                backlog=256,
            )
            self.servers.append(server)
        self.write_stats()

    def write_stats(self) -> None:
        if self.stats_path is None:
            return
        document = {"seq": self.seq, "pid": os.getpid(), **self.stats.to_dict()}
        self.seq += 1
        partial = self.stats_path.with_name(self.stats_path.name + ".part")
        partial.write_text(json.dumps(document) + "\n")
        partial.replace(self.stats_path)

    async def close(self) -> None:
        """Stop listening and abort the connections still open."""
        for server in self.servers:
            server.close()
        for link in list(self.links):
            link.abort()
        for server in self.servers:
            await server.wait_closed()

    def port(self, index: int = 0) -> int:
        """The port the ``index``-th mapping listens on (useful when mapped from port 0)."""
        sockets = self.servers[index].sockets
        return int(sockets[0].getsockname()[1])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.relay", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay, ms")
    parser.add_argument("--window", type=parse_size, default=4 * 1024 * 1024, help="4MiB")
    parser.add_argument("--rate-per-conn", type=parse_size, help="bytes/s each way (20MB)")
    parser.add_argument("--stats", type=Path, help="JSON totals, written on SIGUSR1")
    parser.add_argument(
        "--map", type=parse_map, action="append", required=True, metavar="LISTEN=TARGET"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    mappings = [m for group in args.map for m in group]
    relay = Relay(
        mappings,
        delay=args.delay_ms / 1000,
        window=args.window,
        rate=args.rate_per_conn,
        stats_path=args.stats,
    )
    stop = asyncio.Event()
    relay.loop.add_signal_handler(signal.SIGTERM, stop.set)
    relay.loop.add_signal_handler(signal.SIGINT, stop.set)
    relay.loop.add_signal_handler(signal.SIGUSR1, relay.write_stats)
    await relay.start()
    print(f"relay: {len(mappings)} port(s), delay {args.delay_ms} ms, ready", flush=True)
    await stop.wait()
    await relay.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
