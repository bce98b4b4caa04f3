"""The backend conformance suite against real SFTP servers: OpenSSH sshd and asyncssh in-process.

The sshd run logs in as the key-only shell user with ``exec_hash`` on, so that the suite's
hash test checks ``sha256sum`` over an exec channel too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferryman.backends.sftp import SftpBackend
from ferryman.connection import SftpConnection
from tests.backend_conformance import BackendAndRoot, BackendConformance
from tests.servers import sftp_inprocess
from tests.servers.sftp_inprocess import InProcessSftpServer
from tests.servers.sshd import SHELL_USER, Sshd

sftp_server = sftp_inprocess.sftp_server


def sshd_connection(server: Sshd, **overrides: object) -> SftpConnection:
    """Password login as the test user, host key checked against the fixture's known_hosts."""
    fields: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "known_hosts": server.known_hosts,
        "timeout": 10,
        "retries": 0,
        "use_netrc": False,
        "use_keyring": False,
        "use_agent": False,
    }
    fields.update(overrides)
    return SftpConnection.model_validate(fields)


class TestInProcessSftpConformance(BackendConformance):
    @pytest.fixture
    def backend_and_root(self, sftp_server: InProcessSftpServer) -> Iterator[BackendAndRoot]:
        (sftp_server.root / "work").mkdir()
        backend = SftpBackend(sftp_server.connection()).connect()
        yield backend, "/work"
        backend.close()


class TestSshdConformance(BackendConformance):
    @pytest.fixture
    def backend_and_root(
        self, sshd: Sshd, request: pytest.FixtureRequest
    ) -> Iterator[BackendAndRoot]:
        workdir = sshd.workdir(request.node.name, owner=SHELL_USER)
        conn = sshd_connection(
            sshd, user=SHELL_USER, password=None, private_key=sshd.keys["plain"], exec_hash=True
        )
        backend = SftpBackend(conn).connect()
        assert backend.capabilities.atomic_rename_replace  # OpenSSH offers posix-rename
        assert backend.capabilities.hashes == ("sha256",)
        yield backend, workdir.path
        backend.close()
