"""A complete SFTP read whose CLOSE is cut by the end of the session logs nothing (issue 12).

``ferryman -v get`` over SFTP sometimes logged "closing the handle failed: Connection closed"
after a successful download: the reader sends its CLOSE without waiting for the reply and the
command ends the session at once; the server closes the handle with the session, nothing
failed. Here the race is forced: an in-process asyncssh SFTP server holds its answer to CLOSE
until the client has closed the session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from ferryman.backends.sftp import SftpBackend
from tests.servers.sftp_inprocess import InProcessSftpServer, _Server


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def wire() -> Iterator[_Lines]:
    handler = _Lines()
    logger = logging.getLogger("ferryman.wire")
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(saved)


class _SlowCloseServer(InProcessSftpServer):
    """Answers CLOSE only after ``release`` is set (on the server's loop)."""

    def start(self) -> _SlowCloseServer:
        self._thread.start()
        key = asyncssh.generate_private_key("ssh-ed25519")
        self.fingerprint = key.get_fingerprint("sha256")
        root = str(self.root).encode()
        self.release = asyncio.Event()
        self.close_asked = asyncio.Event()
        server = self

        class Sftp(asyncssh.SFTPServer):
            async def close(self, file_obj: object) -> None:  # type: ignore[override]
                server.close_asked.set()
                await server.release.wait()
                super().close(file_obj)

        async def listen() -> Any:
            server.release = asyncio.Event()  # made on the server's loop
            server.close_asked = asyncio.Event()
            return await asyncssh.create_server(
                _Server,
                self.host,
                0,
                server_host_keys=[key],
                sftp_factory=lambda chan: Sftp(chan, chroot=root),
                allow_scp=False,
            )

        self._acceptor = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        self.port = int(self._acceptor.sockets[0].getsockname()[1])
        return self

    def wait_close_asked(self) -> None:
        asyncio.run_coroutine_threadsafe(self.close_asked.wait(), self._loop).result(10)

    def let_close(self) -> None:
        self._loop.call_soon_threadsafe(self.release.set)


def test_a_close_cut_by_the_end_of_the_session_is_not_reported(
    tmp_path: Path, wire: _Lines
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.bin").write_bytes(b"x" * 100_000)
    server = _SlowCloseServer(root).start()
    try:
        backend = SftpBackend(server.connection()).connect()
        stream = backend.open_read("/a.bin")
        data = bytearray()
        chunk = bytearray(65536)
        while count := stream.readinto(memoryview(chunk)):
            data += chunk[:count]
        assert bytes(data) == b"x" * 100_000
        stream.close()  # sends CLOSE, does not wait
        server.wait_close_asked()
        backend.close()  # the session ends while the CLOSE waits for its answer
        assert stream.closing is not None
        stream.closing.result(10)
        server.let_close()
    finally:
        server.stop()
    assert any("OPEN /a.bin" in line for line in wire.lines), wire.lines  # transcript on
    assert not [line for line in wire.lines if "closing the handle failed" in line], wire.lines
