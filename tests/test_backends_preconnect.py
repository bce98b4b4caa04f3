"""The TCP connection to an SSH server dialled while asyncssh loads (backends/preconnect.py,
issue 19): taken by the first SSH connection, forgotten when it fails, closed when unused."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from ferryman.backends import preconnect
from ferryman.backends.sftp import SftpBackend
from tests.servers.sshd import Sshd
from tests.test_sftp_conformance import sshd_connection


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(10)
    yield server
    server.close()


def _port(server: socket.socket) -> int:
    return int(server.getsockname()[1])


def test_a_dialled_connection_is_taken_once(listener: socket.socket) -> None:
    preconnect.dial("127.0.0.1", _port(listener), 5)
    preconnect.dial("127.0.0.1", _port(listener), 5)  # one dial per address at a time
    accepted, _ = listener.accept()
    sock = preconnect.take("127.0.0.1", _port(listener), 5)
    assert sock is not None
    try:
        assert sock.getsockname() == accepted.getpeername()
        assert sock.gettimeout() is None  # ready for asyncio
        assert preconnect.take("127.0.0.1", _port(listener), 5) is None  # taken already
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()  # the second dial made no connection
    finally:
        sock.close()
        accepted.close()


def test_nothing_dialled_gives_none_and_a_failed_dial_its_error(
    listener: socket.socket,
) -> None:
    assert preconnect.take("127.0.0.1", _port(listener), 1) is None
    closed = _port(listener)
    listener.close()  # nothing listens there now: the connect is refused
    preconnect.dial("127.0.0.1", closed, 5)
    with pytest.raises(ConnectionRefusedError):  # as connecting again would, at once
        preconnect.take("127.0.0.1", closed, 5)
    assert preconnect.take("127.0.0.1", closed, 5) is None  # once


def test_a_discarded_dial_is_closed_at_once(listener: socket.socket) -> None:
    preconnect.dial("127.0.0.1", _port(listener), 5)
    accepted, _ = listener.accept()
    with accepted:
        preconnect.discard("127.0.0.1", _port(listener))
        accepted.settimeout(2)  # well before UNUSED_FOR
        assert accepted.recv(10) == b""
    assert preconnect.take("127.0.0.1", _port(listener), 1) is None


def test_a_connection_nobody_takes_is_closed(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preconnect, "UNUSED_FOR", 0.2)
    preconnect.dial("127.0.0.1", _port(listener), 5)
    accepted, _ = listener.accept()
    with accepted:
        accepted.settimeout(10)
        assert accepted.recv(10) == b""  # closed by the client after UNUSED_FOR
    assert preconnect.take("127.0.0.1", _port(listener), 1) is None


def test_the_ssh_connection_uses_the_dialled_socket(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sshd_connection(sshd)
    taken: list[socket.socket | None] = []
    real_take = preconnect.take

    def take(host: str, port: int, timeout: float) -> socket.socket | None:
        sock = real_take(host, port, timeout)
        taken.append(sock)
        return sock

    monkeypatch.setattr(preconnect, "take", take)
    preconnect.dial(conn.host, conn.port, 5)
    backend = SftpBackend(conn).connect()
    try:
        assert len(taken) == 1 and taken[0] is not None
        ssh = backend.ssh
        assert ssh is not None
        assert ssh.ssh.get_extra_info("sockname") == taken[0].getsockname()
        assert backend.list("/") is not None
    finally:
        backend.close()
