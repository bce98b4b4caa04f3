"""A real vsftpd (3.0.x) on a free loopback port, started from a temporary config, and fixtures.

Needs what ``scripts/install-test-servers.sh`` sets up (as root): ``/usr/sbin/vsftpd``, the
local test user :data:`TEST_USER` with the TEST-ONLY password :data:`TEST_PASSWORD`, the PAM
service :data:`PAM_SERVICE` (pam_unix only) and vsftpd's ``secure_chroot_dir``. vsftpd runs as
a non-daemon child of the test process, in its own process group, and is stopped by pid.

Modes (``.mode``, the values of ``ferryman.connection.TLSMode``):

* ``"explicit"``: AUTH TLS required for login and data (``force_local_*_ssl``), with
  ``require_ssl_reuse=YES``: a data connection must resume the control connection's TLS
  session, or vsftpd answers ``522 SSL connection failed: session reuse required`` and ends the
  session. ``tls_max_version="1.2"`` caps the server at TLS 1.2 (vsftpd 3.0.3 has no option for
  that, ``ssl_tlsv1`` only concerns TLS 1.0; it is done through an ``OPENSSL_CONF`` file with
  ``MaxProtocol = TLSv1.2`` in the server's environment).
* ``"implicit"``: TLS from the first byte (``implicit_ssl=YES``), otherwise as explicit.
* ``"none"`` (alias ``"plain"``): no TLS at all (``ssl_enable=NO``).

Fixtures (session-scoped, one server each, all sharing one FTP root): ``vsftpd_explicit``,
``vsftpd_explicit_tls12``, ``vsftpd_implicit``, ``vsftpd_plain``; ``vsftpd_pki`` (the test PKI
the TLS servers present), ``vsftpd_root`` (the shared root on disk) and the function-scoped
``vsftpd_workdir``, a fresh directory per test inside that root. A missing vsftpd or setup
FAILS the test (it is not skipped) with a message that says to run the install script.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, NoReturn, Self

import pytest

from tests.servers.processes import first_line, free_port, stop_group, wait_until_ready

if TYPE_CHECKING:
    from ferryman.certs import PkiFiles

__all__ = [
    "INSTALL_HINT",
    "PAM_SERVICE",
    "TEST_PASSWORD",
    "TEST_USER",
    "Vsftpd",
    "VsftpdUnavailableError",
    "Workdir",
    "check_prerequisites",
    "make_ftp_root",
    "vsftpd_explicit",
    "vsftpd_explicit_tls12",
    "vsftpd_implicit",
    "vsftpd_pki",
    "vsftpd_plain",
    "vsftpd_root",
    "vsftpd_workdir",
]

VSFTPD_BINARY: Final = Path("/usr/sbin/vsftpd")
TEST_USER: Final = "ferrytest"
# TEST-ONLY password of the local test user made by scripts/install-test-servers.sh; that user
# can only log in to the vsftpd instances started here, on 127.0.0.1, through PAM_SERVICE.
TEST_PASSWORD: Final = "ferrytest-only-not-secret"
PAM_SERVICE: Final = "ferryman-vsftpd-test"
SECURE_CHROOT_DIR: Final = Path("/var/run/vsftpd/empty")
INSTALL_HINT: Final = "run `bash scripts/install-test-servers.sh` as root first"
HOST: Final = "127.0.0.1"

Mode = Literal["none", "explicit", "implicit"]
_MODE_ALIASES: Final[Mapping[str, Mode]] = {
    "none": "none",
    "plain": "none",
    "explicit": "explicit",
    "implicit": "implicit",
}


class VsftpdUnavailableError(RuntimeError):
    """vsftpd or its test setup is missing, or vsftpd did not start."""


def check_prerequisites() -> None:
    """Raise :class:`VsftpdUnavailableError` (with the install hint) unless vsftpd can run."""
    problems = []
    if not os.access(VSFTPD_BINARY, os.X_OK):
        problems.append(f"{VSFTPD_BINARY} is not installed")
    if os.geteuid() != 0:
        problems.append("vsftpd must be started as root (it logs local users in through PAM)")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        problems.append(f"the test user {TEST_USER!r} does not exist")
    if not Path("/etc/pam.d", PAM_SERVICE).is_file():
        problems.append(f"the PAM service /etc/pam.d/{PAM_SERVICE} is missing")
    if not SECURE_CHROOT_DIR.is_dir():
        problems.append(f"vsftpd's secure_chroot_dir {SECURE_CHROOT_DIR} is missing")
    if problems:
        raise VsftpdUnavailableError("; ".join(problems) + f": {INSTALL_HINT}")


def _chown_to_test_user(path: Path) -> None:
    entry = pwd.getpwnam(TEST_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def make_ftp_root(directory: Path) -> Path:
    """Create ``directory`` (and parents) as an FTP root owned by the test user.

    vsftpd changes into the root as that user, so every parent directory must be searchable
    by it: a root below a mode-0700 directory (like pytest's ``tmp_path``) fails at login with
    ``500 OOPS: cannot change directory``. Use a base made by :func:`tempfile.mkdtemp` with
    mode 0755, as the fixtures do.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    _chown_to_test_user(directory)
    return directory


@dataclass(frozen=True)
class Workdir:
    """A directory inside the FTP root: ``local`` on disk, ``path`` as the FTP user sees it
    (absolute, the root being ``/`` in the chroot)."""

    local: Path
    path: str

    def write(self, relpath: str, data: bytes) -> Path:
        """Create a file (and its directories) owned by the test user, so that the FTP user
        may overwrite or delete it. Returns the local path."""
        target = self.local / relpath
        parent = target.parent
        missing = []
        while parent != self.local and not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            directory.mkdir()
            _chown_to_test_user(directory)
        target.write_bytes(data)
        _chown_to_test_user(target)
        return target

    def mkdir(self, relpath: str) -> Path:
        """Create a directory owned by the test user (parents too). Returns the local path."""
        target = self.local / relpath
        parent = target
        missing = []
        while parent != self.local and not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for directory in reversed(missing):
            directory.mkdir()
            _chown_to_test_user(directory)
        return target

    def ftp_path(self, relpath: str = "") -> str:
        """The FTP path of ``relpath`` inside this directory."""
        return f"{self.path}/{relpath}" if relpath else self.path


_OPENSSL_TLS12_ONLY: Final = """\
# ferryman tests: cap every TLS context of this process at TLS 1.2
openssl_conf = ferryman_openssl_init
[ferryman_openssl_init]
ssl_conf = ferryman_ssl
[ferryman_ssl]
system_default = ferryman_tls12
[ferryman_tls12]
MaxProtocol = TLSv1.2
"""


class Vsftpd:
    """One vsftpd instance. ``start()``/``stop()`` or use it as a context manager.

    Attributes: ``host``, ``port``, ``user``, ``password``, ``root`` (the FTP root on disk),
    ``pki`` (:class:`ferryman.certs.PkiFiles`, ``None`` in mode ``"none"``), ``mode``,
    ``tls_max_version`` (``"1.2"`` or ``None``), ``base_dir`` (config, logs), ``log_file``
    (vsftpd's protocol log, with ``debug_ssl`` lines: TLS version, "reused"/"not reused").
    """

    def __init__(
        self,
        mode: str = "explicit",
        *,
        root: Path | None = None,
        pki: PkiFiles | None = None,
        tls_max_version: Literal["1.2"] | None = None,
        extra_config: Mapping[str, str] | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        try:
            self.mode: Mode = _MODE_ALIASES[mode]
        except KeyError:
            raise ValueError(f"unknown vsftpd mode {mode!r}") from None
        if tls_max_version not in (None, "1.2"):
            raise ValueError("tls_max_version can only be '1.2' (or None)")
        if tls_max_version and self.mode == "none":
            raise ValueError("tls_max_version needs a TLS mode")
        self.host = HOST
        self.port = 0
        self.user = TEST_USER
        self.password = TEST_PASSWORD
        self.tls_max_version = tls_max_version
        self.extra_config = dict(extra_config or {})
        self.start_timeout = start_timeout
        self._given_root = root
        self._given_pki = pki
        self.root: Path = root if root is not None else Path()
        self.pki: PkiFiles | None = pki
        self.base_dir: Path = Path()
        self.log_file: Path = Path()
        self.stderr_file: Path = Path()
        self.config_file: Path = Path()
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Vsftpd {self.mode} {self.host}:{self.port} pid={self.pid}>"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def scheme(self) -> str:
        """The ferryman URL scheme: ``ftp``, ``ftpes`` or ``ftps``."""
        return {"none": "ftp", "explicit": "ftpes", "implicit": "ftps"}[self.mode]

    # -- configuration -------------------------------------------------------------------------

    def config(self) -> dict[str, str]:
        """The vsftpd.conf settings for the current port, root and PKI."""
        conf = {
            "listen": "YES",
            "listen_ipv6": "NO",
            "listen_address": self.host,
            "listen_port": str(self.port),
            "background": "NO",
            "anonymous_enable": "NO",
            "local_enable": "YES",
            "write_enable": "YES",
            "local_umask": "022",
            "chroot_local_user": "YES",
            "allow_writeable_chroot": "YES",
            "local_root": str(self.root),
            "secure_chroot_dir": str(SECURE_CHROOT_DIR),
            "pam_service_name": PAM_SERVICE,
            "userlist_enable": "NO",
            "tcp_wrappers": "NO",
            # the default seccomp filter kills the session on syscalls newer libcs use
            "seccomp_sandbox": "NO",
            "pasv_enable": "YES",
            "port_enable": "YES",
            "connect_from_port_20": "NO",
            "use_localtime": "NO",
            "dirmessage_enable": "NO",
            "delay_failed_login": "0",
            "idle_session_timeout": "120",
            "data_connection_timeout": "60",
            "xferlog_enable": "YES",
            "xferlog_std_format": "NO",
            "log_ftp_protocol": "YES",
            "vsftpd_log_file": str(self.log_file),
        }
        if self.mode == "none":
            conf["ssl_enable"] = "NO"
        else:
            assert self.pki is not None
            conf |= {
                "ssl_enable": "YES",
                "implicit_ssl": "YES" if self.mode == "implicit" else "NO",
                "require_ssl_reuse": "YES",
                "force_local_logins_ssl": "YES",
                "force_local_data_ssl": "YES",
                "ssl_ciphers": "HIGH",
                "ssl_sslv2": "NO",
                "ssl_sslv3": "NO",
                "ssl_tlsv1": "NO",  # TLS 1.0; 1.1 to 1.3 cannot be switched off here
                "debug_ssl": "YES",
                "rsa_cert_file": str(self.pki.server_cert),
                "rsa_private_key_file": str(self.pki.server_key),
            }
        conf |= self.extra_config
        return conf

    def _write_config(self) -> None:
        text = "".join(f"{key}={value}\n" for key, value in self.config().items())
        self.config_file.write_text(text)
        self.config_file.chmod(0o600)

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            raise RuntimeError("vsftpd is already running")
        check_prerequisites()
        self.base_dir = Path(tempfile.mkdtemp(prefix=f"ferryman-vsftpd-{self.mode}-"))
        self.base_dir.chmod(0o755)  # the FTP user must be able to pass through to the root
        try:
            self._prepare_files()
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_files(self) -> None:
        self.log_file = self.base_dir / "vsftpd.log"
        self.stderr_file = self.base_dir / "vsftpd.stderr"
        self.config_file = self.base_dir / "vsftpd.conf"
        if self._given_root is None:
            self.root = make_ftp_root(self.base_dir / "root")
        elif not self.root.is_dir():
            raise VsftpdUnavailableError(f"FTP root {self.root} does not exist")
        if self.mode != "none" and self.pki is None:
            from ferryman.certs import make_test_pki

            self.pki = make_test_pki(self.base_dir / "pki")

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "OPENSSL_CONF"}
        if self.tls_max_version == "1.2":
            openssl_conf = self.base_dir / "openssl-tls12.cnf"
            openssl_conf.write_text(_OPENSSL_TLS12_ONLY)
            env["OPENSSL_CONF"] = str(openssl_conf)
        return env

    def _launch(self) -> None:
        env = self._environment()
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            self._write_config()
            with self.stderr_file.open("wb") as err:
                self._proc = subprocess.Popen(
                    [str(VSFTPD_BINARY), str(self.config_file)],
                    # vsftpd writes its "500 OOPS: ..." start-up errors to fd 0 (the command
                    # channel in inetd mode), so stdin goes to the output file as well
                    stdin=err,
                    stdout=err,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # own process group, stopped as a whole
                )
            try:
                self._wait_ready()
                return
            except VsftpdUnavailableError as exc:
                last_error = str(exc)
                self._terminate()
                if "could not bind" not in last_error:
                    break
        raise VsftpdUnavailableError(last_error)

    def _diagnostics(self) -> str:
        parts = []
        for label, path in (("stderr", self.stderr_file), ("log", self.log_file)):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").strip()
                if text:
                    parts.append(f"vsftpd {label}:\n{text[-3000:]}")
        return "\n".join(parts) or "(vsftpd wrote nothing)"

    def _probe(self) -> bool:
        """One readiness probe: True once the 220 banner arrived (over TLS for implicit)."""
        try:
            raw = socket.create_connection((self.host, self.port), timeout=2)
        except OSError:
            return False
        sock: socket.socket = raw
        try:
            if self.mode == "implicit":
                assert self.pki is not None
                ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
                sock = ctx.wrap_socket(raw, server_hostname=self.host)
            return (first_line(sock) or b"").startswith(b"220")
        except (OSError, ssl.SSLError):
            return False
        finally:
            sock.close()
            if sock is not raw:
                raw.close()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        wait_until_ready(
            self._proc,
            self._probe,
            self.start_timeout,
            f"vsftpd on {self.host}:{self.port} ({self.config_file})",
            self._diagnostics,
            VsftpdUnavailableError,
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_group(proc)

    def stop(self) -> None:
        """Stop vsftpd and remove its config, logs and (when it made them) root and PKI."""
        self._terminate()
        if self.base_dir != Path() and self.base_dir.is_dir():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------------

    def log_text(self) -> str:
        """vsftpd's protocol log so far (commands, replies, ``debug_ssl`` lines)."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def workdir(self, name: str) -> Workdir:
        """A fresh directory ``name`` (made unique) in the FTP root, owned by the test user."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "work"
        local = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=self.root))
        local.chmod(0o755)
        _chown_to_test_user(local)
        return Workdir(local=local, path=f"/{local.name}")


# ---------------------------------------------------------------------------------------------
# pytest fixtures


def _fail_unavailable(exc: VsftpdUnavailableError) -> NoReturn:
    pytest.fail(f"vsftpd test server unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def vsftpd_root() -> Iterator[Path]:
    """The FTP root shared by every vsftpd fixture of the session (a 0755 temp directory)."""
    problem = None
    try:
        check_prerequisites()
    except VsftpdUnavailableError as exc:
        problem = exc
    if problem is not None:
        _fail_unavailable(problem)
    base = Path(tempfile.mkdtemp(prefix="ferryman-vsftpd-root-"))
    try:
        base.chmod(0o755)
        yield make_ftp_root(base / "root")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def vsftpd_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """The test PKI presented by the TLS vsftpd fixtures (verify with ``.ca_cert``)."""
    from ferryman.certs import make_test_pki

    return make_test_pki(tmp_path_factory.mktemp("vsftpd-pki"))


def _serve(
    mode: str, root: Path, pki: PkiFiles | None, tls_max_version: Literal["1.2"] | None = None
) -> Iterator[Vsftpd]:
    server = Vsftpd(mode, root=root, pki=pki, tls_max_version=tls_max_version)
    problem = None
    try:
        server.start()
    except VsftpdUnavailableError as exc:
        problem = exc
    if problem is not None:  # outside the except block: no chained traceback in the report
        _fail_unavailable(problem)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vsftpd_explicit(vsftpd_root: Path, vsftpd_pki: PkiFiles) -> Iterator[Vsftpd]:
    """vsftpd with explicit FTPS (AUTH TLS), TLS required, session reuse required."""
    yield from _serve("explicit", vsftpd_root, vsftpd_pki)


@pytest.fixture(scope="session")
def vsftpd_explicit_tls12(vsftpd_root: Path, vsftpd_pki: PkiFiles) -> Iterator[Vsftpd]:
    """As ``vsftpd_explicit``, but the server offers at most TLS 1.2."""
    yield from _serve("explicit", vsftpd_root, vsftpd_pki, tls_max_version="1.2")


@pytest.fixture(scope="session")
def vsftpd_implicit(vsftpd_root: Path, vsftpd_pki: PkiFiles) -> Iterator[Vsftpd]:
    """vsftpd with implicit FTPS (TLS from the first byte), session reuse required."""
    yield from _serve("implicit", vsftpd_root, vsftpd_pki)


@pytest.fixture(scope="session")
def vsftpd_plain(vsftpd_root: Path) -> Iterator[Vsftpd]:
    """vsftpd without TLS (``ssl_enable=NO``)."""
    yield from _serve("none", vsftpd_root, None)


@pytest.fixture
def vsftpd_workdir(vsftpd_root: Path, request: pytest.FixtureRequest) -> Workdir:
    """A fresh directory for this test in the shared FTP root (``.local``, ``.path``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:60] or "work"
    local = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=vsftpd_root))
    local.chmod(0o755)
    _chown_to_test_user(local)
    return Workdir(local=local, path=f"/{local.name}")
