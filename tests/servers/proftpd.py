"""A real ProFTPD (1.3.8, with mod_tls) on a free loopback port, from a temporary config.

ProFTPD is here for what vsftpd does not do: its defaults refuse to overwrite a file
(``AllowOverwrite off``) and to continue a partial upload (``AllowStoreRestart off``), so a
resumed upload gets ``REST`` accepted and then ``550 Overwrite permission denied`` (issue 12,
item 1b). Both are left at their defaults in the config below.

Needs what ``scripts/install-test-servers.sh`` sets up (as root): ProFTPD unpacked under
:data:`PROFTPD_ROOT` (the Debian package conflicts with vsftpd's, so it is not installed
through dpkg), and the local test user of ``tests/servers/vsftpd.py`` (ProFTPD authenticates it
with ``mod_auth_unix``, from ``/etc/shadow``). ProFTPD runs in the foreground (``-n``) as a
child of the test process, in its own process group, and is stopped by pid like vsftpd.

Modes: ``"explicit"`` (AUTH TLS required for login and data; ProFTPD requires TLS session reuse
on data connections by default) and ``"none"`` (no TLS). Fixtures: ``proftpd_explicit`` and
``proftpd_plain`` (session-scoped) and ``proftpd_workdir`` (a fresh directory per test in the
shared root). A missing ProFTPD FAILS the test (it is not skipped), saying what to run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, NoReturn, Self

import pytest

from tests.servers.processes import first_line, free_port, stop_group, wait_until_ready
from tests.servers.vsftpd import (
    INSTALL_HINT,
    TEST_PASSWORD,
    TEST_USER,
    Workdir,
    _chown_to_test_user,
    make_ftp_root,
)

if TYPE_CHECKING:
    from ferryman.certs import PkiFiles

__all__ = [
    "PROFTPD_BINARY",
    "PROFTPD_ROOT",
    "Proftpd",
    "ProftpdUnavailableError",
    "check_prerequisites",
    "proftpd_explicit",
    "proftpd_plain",
    "proftpd_root",
    "proftpd_workdir",
]

PROFTPD_ROOT: Final = Path("/opt/ferryman-test/proftpd")  # scripts/install-test-servers.sh
PROFTPD_BINARY: Final = PROFTPD_ROOT / "usr/sbin/proftpd"
MODULE_PATH: Final = PROFTPD_ROOT / "usr/lib/proftpd"
HOST: Final = "127.0.0.1"

Mode = Literal["none", "explicit"]


class ProftpdUnavailableError(RuntimeError):
    """ProFTPD or its test setup is missing, or ProFTPD did not start."""


def check_prerequisites() -> None:
    """Raise :class:`ProftpdUnavailableError` (with the install hint) unless ProFTPD can run."""
    problems = []
    if not os.access(PROFTPD_BINARY, os.X_OK):
        problems.append(f"{PROFTPD_BINARY} is not there")
    if not (MODULE_PATH / "mod_tls.so").is_file():
        problems.append(f"{MODULE_PATH}/mod_tls.so (proftpd-mod-crypto) is not there")
    if os.geteuid() != 0:
        problems.append("ProFTPD must be started as root (it logs local users in)")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        problems.append(f"the test user {TEST_USER!r} does not exist")
    if problems:
        raise ProftpdUnavailableError("; ".join(problems) + f": {INSTALL_HINT}")


class Proftpd:
    """One ProFTPD instance; ``start()``/``stop()`` or a context manager. Attributes: ``host``,
    ``port``, ``user``, ``password``, ``root`` (on disk; ``/`` for the FTP user), ``pki`` (None
    in mode ``"none"``), ``mode``, ``base_dir`` (config and logs)."""

    def __init__(
        self,
        mode: Mode = "explicit",
        *,
        root: Path | None = None,
        pki: PkiFiles | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self.mode: Mode = mode
        self.host = HOST
        self.port = 0
        self.user = TEST_USER
        self.password = TEST_PASSWORD
        self.start_timeout = start_timeout
        self._given_root = root
        self.root: Path = root if root is not None else Path()
        self.pki: PkiFiles | None = pki
        self.base_dir: Path = Path()
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Proftpd {self.mode} {self.host}:{self.port} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def scheme(self) -> str:
        return "ftp" if self.mode == "none" else "ftpes"

    def config(self) -> str:
        """proftpd.conf for the current port, root and PKI. AllowOverwrite and
        AllowStoreRestart are left at their defaults (off): that is what is tested here."""
        base = self.base_dir
        lines = [
            f"ModulePath {MODULE_PATH}",
            "ServerType standalone",
            'ServerName "ferryman test ProFTPD"',
            "DefaultServer on",
            "UseIPv6 off",
            f"DefaultAddress {self.host}",
            "SocketBindTight on",
            f"Port {self.port}",
            "User nobody",
            "Group nogroup",
            "Umask 022",
            "MaxInstances 30",
            f"DefaultRoot {self.root}",
            "AuthOrder mod_auth_unix.c",
            "RequireValidShell off",  # the test user has no login shell
            "UseReverseDNS off",
            "WtmpLog off",
            "UseLastlog off",
            "DelayEngine off",
            f"PidFile {base / 'proftpd.pid'}",
            f"ScoreboardFile {base / 'proftpd.scoreboard'}",
            f"SystemLog {base / 'proftpd.log'}",
            f"TransferLog {base / 'xferlog'}",
            "TimeoutIdle 120",
            "TimeoutNoTransfer 120",
            "<Directory />",
            "  AllowAll",
            "</Directory>",
        ]
        if self.mode == "explicit":
            assert self.pki is not None
            lines += [
                "LoadModule mod_tls.c",
                "<IfModule mod_tls.c>",
                "  TLSEngine on",
                "  TLSRequired on",  # login and data; session reuse is required by default
                "  TLSProtocol TLSv1.2 TLSv1.3",
                f"  TLSRSACertificateFile {self.pki.server_cert}",
                f"  TLSRSACertificateKeyFile {self.pki.server_key}",
                "  TLSVerifyClient off",
                f"  TLSLog {base / 'tls.log'}",
                "</IfModule>",
            ]
        return "\n".join(lines) + "\n"

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("ProFTPD is already running")
        check_prerequisites()
        self.base_dir = Path(tempfile.mkdtemp(prefix=f"ferryman-proftpd-{self.mode}-"))
        self.base_dir.chmod(0o755)  # the FTP user must be able to pass through to the root
        try:
            if self._given_root is None:
                self.root = make_ftp_root(self.base_dir / "root")
            if self.mode == "explicit" and self.pki is None:
                from ferryman.certs import make_test_pki

                self.pki = make_test_pki(self.base_dir / "pki")
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self) -> None:
        config = self.base_dir / "proftpd.conf"
        output = self.base_dir / "proftpd.out"
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            config.write_text(self.config())
            config.chmod(0o600)
            with output.open("wb") as out:
                self._proc = subprocess.Popen(
                    [str(PROFTPD_BINARY), "-n", "-q", "-c", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group, stopped as a whole
                )
            try:
                self._wait_ready()
                return
            except ProftpdUnavailableError as exc:
                last_error = str(exc)
                self._terminate()
                if "in use" not in last_error:
                    break
        raise ProftpdUnavailableError(last_error)

    def _diagnostics(self) -> str:
        parts = []
        for name in ("proftpd.out", "proftpd.log", "tls.log"):
            with contextlib.suppress(OSError):
                text = (self.base_dir / name).read_text(errors="replace").strip()
                if text:
                    parts.append(f"ProFTPD {name}:\n{text[-3000:]}")
        return "\n".join(parts) or "(ProFTPD wrote nothing)"

    def _probe(self) -> bool:
        """One readiness probe: True once the 220 banner arrived."""
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as sock:
                return (first_line(sock) or b"").startswith(b"220")
        except OSError:
            return False

    def _wait_ready(self) -> None:
        assert self._proc is not None
        where = f"ProFTPD on {self.host}:{self.port}"
        wait_until_ready(
            self._proc,
            self._probe,
            self.start_timeout,
            where,
            self._diagnostics,
            ProftpdUnavailableError,
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc)

    def stop(self) -> None:
        """Stop ProFTPD and remove its config, logs and (when it made them) root and PKI."""
        self._terminate()
        if self.base_dir != Path() and self.base_dir.is_dir():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_text(self) -> str:
        """ProFTPD's system log so far."""
        try:
            return (self.base_dir / "proftpd.log").read_text(errors="replace")
        except OSError:
            return ""


# ---------------------------------------------------------------------------------------------
# pytest fixtures


def _fail_unavailable(exc: ProftpdUnavailableError) -> NoReturn:
    pytest.fail(f"ProFTPD test server unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def proftpd_root() -> Iterator[Path]:
    """The FTP root shared by the ProFTPD fixtures of the session."""
    problem = None
    try:
        check_prerequisites()
    except ProftpdUnavailableError as exc:
        problem = exc
    if problem is not None:  # outside the except block: no chained traceback in the report
        _fail_unavailable(problem)
    base = Path(tempfile.mkdtemp(prefix="ferryman-proftpd-root-"))
    try:
        base.chmod(0o755)
        yield make_ftp_root(base / "root")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _serve(mode: Mode, root: Path) -> Iterator[Proftpd]:
    server = Proftpd(mode, root=root)
    problem = None
    try:
        server.start()
    except ProftpdUnavailableError as exc:
        problem = exc
    if problem is not None:
        _fail_unavailable(problem)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def proftpd_explicit(proftpd_root: Path) -> Iterator[Proftpd]:
    """ProFTPD with explicit FTPS required (and TLS session reuse on data connections)."""
    yield from _serve("explicit", proftpd_root)


@pytest.fixture(scope="session")
def proftpd_plain(proftpd_root: Path) -> Iterator[Proftpd]:
    """ProFTPD without TLS."""
    yield from _serve("none", proftpd_root)


@pytest.fixture
def proftpd_workdir(proftpd_root: Path, request: pytest.FixtureRequest) -> Workdir:
    """A fresh directory for this test in the shared ProFTPD root (``.local``, ``.path``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60] or "work"
    local = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=proftpd_root))
    local.chmod(0o755)
    _chown_to_test_user(local)
    return Workdir(local=local, path=f"/{local.name}")
