"""The latency relay of benchmarks/ (benchmarks/relay.py) on real loopback sockets: the delay,
the handshake, the window, the rate cap, EOF and resets, and its statistics over SIGUSR1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from benchmarks.relay import Mapping, Relay, parse_map, parse_size

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parent.parent
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads to EOF, then answers with the number of bytes read and closes."""
    total = 0
    try:
        while data := await reader.read(1 << 20):
            total += len(data)
        writer.write(str(total).encode())
        await writer.drain()
    finally:
        writer.close()


async def _relayed(
    handler: Handler, *, delay: float, window: int = 4 << 20, rate: float | None = None
) -> tuple[asyncio.Server, Relay]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[1]
    relay = Relay(
        [Mapping("127.0.0.2", 0, "127.0.0.1", target)], delay=delay, window=window, rate=rate
    )
    await relay.start()
    return server, relay


async def _open(relay: Relay) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.2", relay.port())


async def _close(
    server: asyncio.Server, relay: Relay, client: asyncio.StreamWriter | None = None
) -> None:
    if client is not None:
        client.close()
        with contextlib.suppress(OSError):
            await client.wait_closed()
    await asyncio.sleep(2 * relay.delay + 0.02)  # the EOF or reset reaches the handler
    await relay.close()
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.01)


def test_sizes_and_maps() -> None:
    assert parse_size("4MiB") == 4 << 20
    assert parse_size("20MB") == 20_000_000
    assert parse_size("512k") == 512_000
    assert parse_map("127.0.0.2:10-12=127.0.0.1:20") == [
        Mapping("127.0.0.2", 10 + i, "127.0.0.1", 20 + i) for i in range(3)
    ]
    with pytest.raises(Exception, match="differ in length"):
        parse_map("127.0.0.2:10-12=127.0.0.1:20-21")


def test_each_round_trip_costs_two_delays_and_data_arrives_intact() -> None:
    delay = 0.04

    async def scenario() -> None:
        server, relay = await _relayed(_echo, delay=delay)
        started = time.monotonic()
        reader, writer = await _open(relay)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        first = time.monotonic() - started
        # handshake (1 RTT before the client may send) + the exchange (1 RTT)
        assert first >= 4 * delay - 0.005, first
        payload = os.urandom(3 << 20)
        started = time.monotonic()
        writer.write(payload)
        assert await reader.readexactly(len(payload)) == payload  # intact, in order
        assert time.monotonic() - started >= 2 * delay - 0.005
        for _ in range(3):
            started = time.monotonic()
            writer.write(b"x")
            await reader.readexactly(1)
            elapsed = time.monotonic() - started
            assert 2 * delay - 0.005 <= elapsed < 2 * delay + 0.05, elapsed
        assert relay.stats.turns == 4  # every request after a response; not the first
        assert relay.stats.c2s_bytes == relay.stats.s2c_bytes == 4 + len(payload) + 3
        await _close(server, relay, writer)

    asyncio.run(scenario())


def test_the_window_limits_one_flow_to_window_per_round_trip() -> None:
    delay, window, size = 0.02, 256 * 1024, 4 << 20
    read = 256 * 1024  # asyncio reads this much at once: the window may overshoot by one read

    async def scenario() -> None:
        server, relay = await _relayed(_sink, delay=delay, window=window)
        reader, writer = await _open(relay)
        await asyncio.sleep(4 * delay)  # past the handshake
        started = time.monotonic()
        writer.write(os.urandom(size))
        writer.write_eof()  # half-close: the sink answers after it
        assert await reader.read() == str(size).encode()  # then the server's EOF arrives
        elapsed = time.monotonic() - started
        # at most window + one read per round trip (unlimited, it would take about one RTT)
        assert elapsed >= size / (window + read) * 2 * delay, elapsed
        await _close(server, relay, writer)

    asyncio.run(scenario())


def test_the_rate_cap_holds() -> None:
    rate, size = 4_000_000.0, 1_000_000

    async def scenario() -> None:
        server, relay = await _relayed(_sink, delay=0.0, rate=rate)
        reader, writer = await _open(relay)
        started = time.monotonic()
        writer.write(os.urandom(size))
        writer.write_eof()
        assert await reader.read() == str(size).encode()
        elapsed = time.monotonic() - started
        assert elapsed >= size / rate * 0.9, elapsed
        await _close(server, relay, writer)

    asyncio.run(scenario())


def test_a_reset_reaches_the_other_side() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # RST
        writer.close()

    async def scenario() -> None:
        server, relay = await _relayed(rude, delay=0.01)
        reader, writer = await _open(relay)
        writer.write(b"x")
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 5)
        await asyncio.sleep(0.1)
        assert relay.stats.open == 0  # the relay dropped the connection by itself
        await _close(server, relay, writer)

    asyncio.run(scenario())


def test_the_process_reports_its_totals_on_sigusr1(tmp_path: Path) -> None:
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        target = upstream.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
            port = probe.getsockname()[1]
        stats = tmp_path / "stats.json"
        argv = [sys.executable, "-m", "benchmarks.relay", "--delay-ms", "1", "--stats", str(stats)]
        argv += ["--map", f"127.0.0.2:{port}=127.0.0.1:{target}"]
        relay = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        try:
            assert relay.stdout is not None
            assert b"ready" in relay.stdout.readline()
            assert json.loads(stats.read_text())["seq"] == 0
            with socket.create_connection(("127.0.0.2", port), timeout=5) as client:
                server, _addr = upstream.accept()
                with server:
                    server.sendall(b"220 hello\r\n")  # the server speaks first, as FTP does
                    client.recv(100)
                    for _ in range(2):
                        client.sendall(b"NOOP\r\n")
                        server.recv(100)
                        server.sendall(b"200 ok\r\n")
                        client.recv(100)
            relay.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 5
            while json.loads(stats.read_text())["seq"] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            found = json.loads(stats.read_text())
            assert (found["connections"], found["turns"]) == (1, 2)
            assert found["c2s_bytes"] == 12 and found["s2c_bytes"] == 27
        finally:
            relay.terminate()
            relay.wait(10)
            if relay.stdout is not None:
                relay.stdout.close()
