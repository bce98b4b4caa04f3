"""A real MariaDB server (Debian's ``mariadb-server``) on a free loopback port, from a
throw-away data directory made by ``mariadb-install-db``, and fixtures.

``mariadbd`` runs as a child of the test process (``--user=root`` when the tests run as root:
it refuses root otherwise), in its own process group, with its unix socket, pid file and log
in the temporary directory; it is probed until it answers ``SELECT 1`` and stopped by pid.
A test user :data:`USER` with the TEST-ONLY password :data:`PASSWORD` is created over the
unix socket (root authenticates there by its uid); ``local_infile`` is on, as it is by
default. ``innodb_flush_log_at_trx_commit=2``: the tests need transactions, not durability.

Fixtures: ``mariadb`` (session-scoped) and ``mariadb_db`` (a fresh database per test).
``start_mariadb()`` starts a private one (a test that kills it). A missing package FAILS the
test, with the install hint: it is never skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.servers.processes import HOST, free_port, stop_group, wait_until_ready

__all__ = [
    "MariaDBServer",
    "MariaDBUnavailableError",
    "mariadb",
    "mariadb_db",
    "start_mariadb",
]

MARIADBD: Final = Path("/usr/sbin/mariadbd")
INSTALL_DB: Final = Path("/usr/bin/mariadb-install-db")
CLIENT: Final = Path("/usr/bin/mariadb")
USER: Final = "ferryman"
# TEST-ONLY password of a user that exists only in the throw-away server started here.
PASSWORD: Final = "ferryman-test-only"
INSTALL_HINT: Final = "run `bash scripts/install-test-servers.sh` as root first"


class MariaDBUnavailableError(RuntimeError):
    """MariaDB is not installed or did not start."""


@dataclass
class MariaDBServer:
    """A running server: ``url(db)`` for ferryman (``mysql+pymysql://``)."""

    proc: subprocess.Popen[bytes]
    port: int
    base: Path

    @property
    def socket(self) -> Path:
        return self.base / "mysqld.sock"

    def url(self, database: str) -> str:
        return f"mysql+pymysql://{USER}:{PASSWORD}@{HOST}:{self.port}/{database}"

    def log(self) -> str:
        path = self.base / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def sql(self, statement: str, database: str | None = None) -> str:
        """Run ``statement`` as root over the unix socket with the ``mariadb`` client."""
        argv = [str(CLIENT), "--no-defaults", "-S", str(self.socket), "-u", "root", "-N", "-B"]
        if database:
            argv.append(database)
        done = subprocess.run(
            [*argv, "-e", statement], capture_output=True, timeout=60, check=False, text=True
        )
        if done.returncode != 0:
            raise MariaDBUnavailableError(f"{statement!r} failed: {done.stderr}")
        return done.stdout

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.sql(f"CREATE DATABASE `{name}`")
        return name

    def stop(self) -> None:
        stop_group(self.proc)
        shutil.rmtree(self.base, ignore_errors=True)


def _ready(server: MariaDBServer) -> bool:
    if not server.socket.exists():
        return False
    try:
        server.sql("SELECT 1")
    except (MariaDBUnavailableError, subprocess.TimeoutExpired):
        return False
    return True


def start_mariadb() -> MariaDBServer:
    """mariadb-install-db a fresh data directory and start mariadbd on a free port."""
    for binary in (MARIADBD, INSTALL_DB, CLIENT):
        if not binary.exists():
            raise MariaDBUnavailableError(f"{binary} is missing; {INSTALL_HINT}")
    base = Path(tempfile.mkdtemp(prefix="ferryman-mariadb-"))
    data = base / "data"
    user = ["--user=root"] if os.geteuid() == 0 else []
    init = subprocess.run(
        [
            str(INSTALL_DB),
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--skip-name-resolve",
            *user,
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise MariaDBUnavailableError(
            f"mariadb-install-db failed ({init.returncode}): "
            f"{init.stderr.decode(errors='replace')[-2000:]}"
        )
    port = free_port()
    argv = [
        str(MARIADBD),
        "--no-defaults",
        f"--datadir={data}",
        f"--port={port}",
        f"--bind-address={HOST}",
        f"--socket={base / 'mysqld.sock'}",
        f"--pid-file={base / 'mysqld.pid'}",
        f"--log-error={base / 'error.log'}",
        "--skip-name-resolve",
        "--local-infile=1",
        "--innodb-buffer-pool-size=128M",
        "--innodb-flush-log-at-trx-commit=2",
        "--max-allowed-packet=64M",
        "--character-set-server=utf8mb4",
        *user,
    ]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = MariaDBServer(proc, port, base)
    try:
        wait_until_ready(
            proc,
            lambda: _ready(server),
            90,
            f"mariadbd on {HOST}:{port}",
            server.log,
            MariaDBUnavailableError,
        )
        server.sql(
            f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';"
            f" GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%'"
        )
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    """One MariaDB server for the whole test run."""
    server = start_mariadb()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mariadb_db(mariadb: MariaDBServer) -> Iterator[str]:
    """A fresh database in the session's server; yields its URL."""
    name = mariadb.create_database()
    yield mariadb.url(name)
    with contextlib.suppress(MariaDBUnavailableError, subprocess.TimeoutExpired):
        mariadb.sql(f"DROP DATABASE IF EXISTS `{name}`")
