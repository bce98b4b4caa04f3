"""A real PostgreSQL server (Debian's ``postgresql`` package) on a free loopback port, from a
throw-away data directory made by ``initdb``, and fixtures.

PostgreSQL refuses to run as root, so ``initdb`` and ``postgres`` run as the ``postgres``
system user the package creates (``subprocess`` switches user and group, no ``su``). The data
directory and the unix-socket directory are in a fresh ``mkdtemp`` directory owned by that
user. The server runs as a child of the test process in its own process group, is probed
until it accepts a connection and is stopped by pid (``stop_group``). ``fsync`` is off: the
tests need transactions, not durability across power loss.

Fixtures: ``postgres`` (session-scoped, one server for the run) and ``postgres_db`` (a fresh
database in it per test). ``start_postgres()`` starts a private one (a test that kills it).
A missing package FAILS the test, with the install hint: it is never skipped.
"""

from __future__ import annotations

import contextlib
import os
import pwd
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
    "PostgresServer",
    "PostgresUnavailableError",
    "pg_bin",
    "postgres",
    "postgres_db",
    "start_postgres",
]

RUN_AS: Final = "postgres"
SUPERUSER: Final = "ferryman"
INSTALL_HINT: Final = "run `bash scripts/install-test-servers.sh` as root first"


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL is not installed or did not start."""


def pg_bin() -> Path:
    """The newest ``/usr/lib/postgresql/VERSION/bin`` (Debian's layout)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresUnavailableError(f"PostgreSQL is not installed; {INSTALL_HINT}")
    return found[-1].parent


@dataclass
class PostgresServer:
    """A running server: connect with ``url(db)`` (user :data:`SUPERUSER`, no password:
    trust authentication on loopback)."""

    proc: subprocess.Popen[bytes]
    port: int
    base: Path

    @property
    def host(self) -> str:
        return HOST

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host={HOST} port={self.port} user={SUPERUSER} dbname={database}"

    def log(self) -> str:
        path = self.base / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        stop_group(self.proc)
        shutil.rmtree(self.base, ignore_errors=True)


def _as_postgres() -> dict[str, object]:
    try:
        entry = pwd.getpwnam(RUN_AS)
    except KeyError:
        raise PostgresUnavailableError(f"no {RUN_AS!r} system user; {INSTALL_HINT}") from None
    if os.geteuid() != 0:
        return {}  # not root: run as ourselves
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _probe(port: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host=HOST, port=port, user=SUPERUSER, dbname="postgres", connect_timeout=2
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def start_postgres(*, fsync: bool = False) -> PostgresServer:
    """initdb a fresh cluster and start it on a free loopback port."""
    binaries = pg_bin()
    switch = _as_postgres()
    base = Path(tempfile.mkdtemp(prefix="ferryman-pg-"))
    data = base / "data"
    if switch:
        os.chown(base, int(switch["user"]), int(switch["group"]))  # type: ignore[call-overload]
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    init = subprocess.run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
        **switch,  # type: ignore[arg-type]
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise PostgresUnavailableError(
            f"initdb failed ({init.returncode}): {init.stderr.decode(errors='replace')}"
        )
    port = free_port()
    settings = {
        "listen_addresses": HOST,
        "port": str(port),
        "unix_socket_directories": str(base),
        "fsync": "on" if fsync else "off",
        "full_page_writes": "on" if fsync else "off",
        "synchronous_commit": "on" if fsync else "off",
        "max_connections": "40",
        "shared_buffers": "64MB",
        "logging_collector": "off",
    }
    argv = [str(binaries / "postgres"), "-D", str(data)]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    log = open(base / "server.log", "wb")  # noqa: SIM115 - the child holds it
    with log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            **switch,  # type: ignore[arg-type]
        )
    server = PostgresServer(proc, port, base)
    try:
        wait_until_ready(
            proc,
            lambda: _probe(port),
            60,
            f"postgres on {HOST}:{port}",
            server.log,
            PostgresUnavailableError,
        )
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test run."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_db(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database in the session's server; yields its URL."""
    import psycopg

    name = postgres.create_database()
    yield postgres.url(name)
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(postgres.dsn(), autocommit=True, connect_timeout=10) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
