"""Shared fixtures: in-process pyftpdlib servers in every TLS mode, connections to them."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from ferryman.backends.ftp.pipelining import forget_hosts
from ferryman.connection import FtpConnection, TLSMode
from ferryman.embedded import EmbeddedServer
from ferryman.redact import forget_secrets

PASSWORD = "Pw-for-tests-0nly"

# connection limits remembered per host (transfer.hostlimits) stay inside this test session
os.environ["FERRYMAN_CACHE_DIR"] = tempfile.mkdtemp(prefix="ferryman-test-cache-")

# The tests read result.stderr apart from result.stdout, which CliRunner always does since
# click 8.2 (it dropped mix_stderr); click 8.1, which the package still admits, mixes them
# unless told not to.
if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
    CliRunner.__init__ = functools.partialmethod(  # type: ignore[method-assign]
        CliRunner.__init__, mix_stderr=False
    )


@dataclass
class Served:
    """A running embedded server and how to reach it."""

    server: EmbeddedServer
    root: Path

    def connection(self, **overrides: object) -> FtpConnection:
        fields: dict[str, object] = {
            "host": self.server.host,
            "port": self.server.port,
            "user": self.server.user,
            "password": SecretStr(PASSWORD),
            "tls": TLSMode(self.server.tls),
            "timeout": 10,
            "retries": 0,
            "use_netrc": False,
            "use_keyring": False,
        }
        if self.server.pki is not None:
            fields["ca_file"] = self.server.pki.ca_cert
        fields.update(overrides)
        return FtpConnection.model_validate(fields)

    def url(self, path: str = "/") -> str:
        return self.server.url().rstrip("/") + path


ServerFactory = Callable[..., Served]


@pytest.fixture(autouse=True)
def _restore_ferryman_logging() -> Iterator[None]:
    """The CLI configures the process-wide ``ferryman`` logger; undo it after each test."""
    logger = logging.getLogger("ferryman")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in list(logger.handlers):
        if handler not in saved[0]:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    """Secret values are registered process-wide (ferryman.redact); one test's password must
    not mask words in the next test's messages."""
    yield
    forget_secrets()


@pytest.fixture(autouse=True)
def _forget_ftp_hosts() -> Iterator[None]:
    """What the FTP backend learned about a server (pipelining) is kept per host:port for the
    process; the next test's server may listen on the same port and behave otherwise."""
    yield
    forget_hosts()


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Start embedded servers with any options; all are stopped after the test."""
    started: list[EmbeddedServer] = []

    def start(tls: str = "explicit", **options: object) -> Served:
        root = tmp_path / f"root{len(started)}"
        root.mkdir()
        server = EmbeddedServer(root, tls=tls, password=PASSWORD, **options).start()  # type: ignore[arg-type]
        started.append(server)
        return Served(server, root)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["none", "explicit", "implicit"])
def served(request: pytest.FixtureRequest, ftp_server: ServerFactory) -> Served:
    """One embedded server per TLS mode (plain, explicit, implicit)."""
    return ftp_server(request.param)


# Real vsftpd servers (require_ssl_reuse=YES, forced TLS); see tests/servers/vsftpd.py.
from tests.servers.vsftpd import (  # noqa: E402
    vsftpd_explicit,
    vsftpd_explicit_tls12,
    vsftpd_implicit,
    vsftpd_pki,
    vsftpd_plain,
    vsftpd_root,
    vsftpd_workdir,
)

__all__ = [
    "PASSWORD",
    "Served",
    "ServerFactory",
    "vsftpd_explicit",
    "vsftpd_explicit_tls12",
    "vsftpd_implicit",
    "vsftpd_pki",
    "vsftpd_plain",
    "vsftpd_root",
    "vsftpd_workdir",
]
# Real PostgreSQL and MariaDB servers for the database loads (issue 18).
from tests.servers.mariadb import mariadb, mariadb_db  # noqa: E402, F401
from tests.servers.postgres import postgres, postgres_db  # noqa: E402, F401
from tests.servers.proftpd import (  # noqa: E402, F401 - real ProFTPD fixtures (issue 12, 1b)
    proftpd_explicit,
    proftpd_plain,
    proftpd_root,
    proftpd_workdir,
)
from tests.servers.sshd import sshd, sshd_workdir  # noqa: E402, F401 - real OpenSSH sshd fixtures


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave tests/airflow out of a run of the whole suite in the main venv: they need the
    Airflow venv (scripts/airflow-env.sh), where scripts/test.sh runs them. Named explicitly
    they are collected, and fail without Airflow (tests/airflow/conftest.py)."""
    airflow_tests = Path(__file__).parent / "airflow"
    if collection_path != airflow_tests or importlib.util.find_spec("airflow") is not None:
        return None
    named = [Path(str(arg).split("::")[0]).resolve() for arg in config.args]
    return not any(p == airflow_tests or airflow_tests in p.parents for p in named)
