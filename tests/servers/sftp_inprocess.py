"""An in-process asyncssh SFTP server on 127.0.0.1 (port 0), for fast tests without root.

It runs on its own event loop in its own thread (not the one ferryman's SFTP backends share),
accepts one user with a TEST-ONLY password, serves a temporary directory as the SFTP root
(asyncssh's chroot: the client sees it as ``/``), and presents a freshly generated ed25519
host key whose fingerprint tests pin. Fixture: ``sftp_server`` (one server per test).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import asyncssh
import pytest
from pydantic import SecretStr

from ferryman.connection import SftpConnection

__all__ = ["INPROCESS_PASSWORD", "INPROCESS_USER", "InProcessSftpServer", "sftp_server"]

INPROCESS_USER: Final = "sftpuser"
INPROCESS_PASSWORD: Final = "inprocess-test-password"  # TEST-ONLY


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == INPROCESS_USER and password == INPROCESS_PASSWORD


@dataclass
class InProcessSftpServer:
    """A running in-process server: ``host``, ``port``, ``root`` and the pinned fingerprint."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    fingerprint: str = ""
    #: the SFTP request handler; a subclass can misbehave (e.g. never answer a request)
    handler: type[asyncssh.SFTPServer] = asyncssh.SFTPServer

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="inprocess-sftp-server", daemon=True
        )
        self._acceptor: Any = None

    def start(self) -> InProcessSftpServer:
        self._thread.start()
        key = asyncssh.generate_private_key("ssh-ed25519")
        self.fingerprint = key.get_fingerprint("sha256")
        root, handler = str(self.root), self.handler

        async def listen() -> Any:
            return await asyncssh.create_server(
                _Server,
                self.host,
                0,
                server_host_keys=[key],
                sftp_factory=lambda chan: handler(chan, chroot=root.encode()),
                allow_scp=False,
            )

        self._acceptor = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        self.port = int(self._acceptor.sockets[0].getsockname()[1])
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._acceptor.close()
            await self._acceptor.wait_closed()

        if self._acceptor is not None:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def connection(self, **overrides: object) -> SftpConnection:
        fields: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": INPROCESS_USER,
            "password": SecretStr(INPROCESS_PASSWORD),
            "fingerprint": self.fingerprint,
            "timeout": 10,
            "retries": 0,
            "use_netrc": False,
            "use_keyring": False,
            "use_agent": False,
        }
        fields.update(overrides)
        return SftpConnection.model_validate(fields)


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[InProcessSftpServer]:
    """An in-process asyncssh SFTP server serving ``tmp_path / "sftp-root"`` as ``/``."""
    root = tmp_path / "sftp-root"
    root.mkdir()
    server = InProcessSftpServer(root).start()
    try:
        yield server
    finally:
        server.stop()
