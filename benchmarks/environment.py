"""Where a benchmark run happens: the work directory, the test data and the servers.

Layout of the work directory (a fresh temporary directory, or ``--workdir`` to keep the
generated data between runs)::

    ftproot/          the FTP root of both vsftpd instances (owned by the test user)
      data/big.bin    the big file (random bytes)
      data/small/     N small files of 4 KiB (random bytes)
      data/many/      the big directory (empty files)
      up/             one fresh directory per upload run, removed after its check
    local/            one fresh download destination per run
    home/             HOME of every tool run: empty, so no ~/.netrc, ~/.lftprc, ~/.curlrc...
    secrets/          mode 0700: netrc, lftp scripts, the connections file
    logs/             stdout and stderr of every run
    pycache/          PYTHONPYCACHEPREFIX of the Python tools (byte code, as an install has)

The SFTP server (OpenSSH ``sshd``, no chroot) serves the same files by absolute path.
The ``ftps-noreuse`` server (the fs-* workloads) is a third vsftpd on the same FTP root, explicit
FTPS without ``require_ssl_reuse``: fsspec's ``FTPFileSystem`` cannot resume TLS sessions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.servers.vsftpd import (
    INSTALL_HINT,
    PAM_SERVICE,
    SECURE_CHROOT_DIR,
    TEST_USER,
    VSFTPD_BINARY,
    Vsftpd,
    Workdir,
    make_ftp_root,
)

__all__ = [
    "FTP_FAMILY",
    "FULL",
    "QUICK",
    "BenchDirs",
    "Endpoint",
    "Protocol",
    "Sizes",
    "count_tree",
    "make_base",
    "preflight",
    "prepare_data",
    "sftp_pending_reason",
    "start_servers",
]

#: ``ftps-noreuse``: explicit FTPS from a vsftpd that does not require data connections to
#: resume the control connection's TLS session, for clients that cannot (fsspec's ftp)
Protocol = Literal["ftp", "ftps", "ftps-noreuse", "sftp"]
FTP_FAMILY: frozenset[str] = frozenset({"ftp", "ftps", "ftps-noreuse"})
MIB = 1024 * 1024
SMALL_FILE_BYTES = 4096


@dataclass(frozen=True)
class Sizes:
    big_bytes: int
    small_count: int
    listing_count: int
    small_bytes: int = SMALL_FILE_BYTES


FULL = Sizes(big_bytes=1024 * MIB, small_count=2000, listing_count=100_000)
QUICK = Sizes(big_bytes=64 * MIB, small_count=200, listing_count=10_000)


@dataclass(frozen=True)
class Endpoint:
    """One server as the tools see it. ``data_prefix`` is how the server names ``ftproot``:
    ``""`` for vsftpd (chrooted there), its absolute path for sshd."""

    protocol: Protocol
    host: str
    port: int
    user: str
    data_prefix: str
    ca_file: Path | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    server_pid: int | None = None  #: the server's listener, whose CPU is measured per run

    def path(self, relpath: str) -> str:
        """The server's absolute path of ``relpath`` (relative to ``ftproot``)."""
        return f"{self.data_prefix}/{relpath}"

    @property
    def ferryman_scheme(self) -> str:
        return {"ftp": "ftp", "ftps": "ftpes", "ftps-noreuse": "ftpes", "sftp": "sftp"}[
            self.protocol
        ]


@dataclass(frozen=True)
class BenchDirs:
    base: Path
    ftproot: Path
    local: Path
    home: Path
    secrets: Path
    logs: Path
    pycache: Path

    @classmethod
    def create(cls, base: Path) -> BenchDirs:
        if any(c.isspace() or c in "\"'\\*?[" for c in str(base)):
            raise SystemExit(
                f"benchmark: {base}: the work directory's path must not contain blanks, "
                "quotes or glob characters (tool scripts name files in it)"
            )
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)  # the server's user must pass through to ftproot
        dirs = cls(
            base=base,
            ftproot=base / "ftproot",
            local=base / "local",
            home=base / "home",
            secrets=base / "secrets",
            logs=base / "logs",
            pycache=base / "pycache",
        )
        make_ftp_root(dirs.ftproot)
        for path in (dirs.local, dirs.home, dirs.logs, dirs.pycache):
            path.mkdir(exist_ok=True)
        dirs.secrets.mkdir(mode=0o700, exist_ok=True)
        dirs.secrets.chmod(0o700)
        _check_reachable(dirs.ftproot)
        return dirs

    @property
    def server_data(self) -> Workdir:
        return Workdir(local=self.ftproot, path="")

    def fresh_local(self, name: str) -> Path:
        """An empty download destination."""
        path = self.local / name
        self.remove(path)
        path.mkdir(parents=True)
        return path

    def fresh_upload(self, name: str) -> str:
        """An empty upload directory on the servers (owned by the test user); its relpath."""
        relpath = f"up/{name}"
        self.remove(self.ftproot / relpath)
        self.server_data.mkdir(relpath)
        return relpath

    @property
    def trash(self) -> Path:
        return self.base / "trash"

    def remove(self, path: Path) -> None:
        """Remove a run's destination. A tree of many files is only moved aside (a rename)
        and deleted by :meth:`empty_trash` after the last run: on ext4 without a journal (this
        VM's root file system) creating a file skips every inode freed in the last minute or
        more, re-reading inode tables for each, so deleting 2000 files just before the next
        run's 2000 creates made each create cost ~0.5 ms, for every tool, in the measured time.
        """
        if not path.exists():
            return
        if path.is_dir() and _more_files_than(path, _DELETE_AT_ONCE):
            self.trash.mkdir(exist_ok=True)
            path.rename(self.trash / f"{len(list(self.trash.iterdir()))}-{path.name}")
        else:
            shutil.rmtree(path, ignore_errors=True)

    def empty_trash(self) -> None:
        if self.trash.exists():
            shutil.rmtree(self.trash, ignore_errors=True)
            note_deletion()


#: when the last run deleted its files (see wait_after_deletions)
_DELETED_AT = Path(tempfile.gettempdir()) / "ferryman-bench-deleted-at"
#: ext4 skips inodes freed less than 60 s ago, or 6 minutes while their inode-table block is
#: dirty -- which creating new files in the same block makes it again, so 6 minutes it is
_RECENTLY_DELETED = 370.0


def note_deletion() -> None:
    """Record that many files were just deleted (and write the inode tables back)."""
    os.sync()
    with contextlib.suppress(OSError):
        _DELETED_AT.write_text(f"{time.time():.3f}")


def wait_after_deletions(say: Callable[[str], None]) -> None:
    """Wait until the files an earlier run deleted no longer slow down creating files (see
    BenchDirs.remove): otherwise the first workloads of a run started right after another
    pay ~0.5 ms per created file."""
    try:
        deleted = float(_DELETED_AT.read_text())
    except (OSError, ValueError):
        return
    remaining = _RECENTLY_DELETED - (time.time() - deleted)
    if remaining > 0:
        say(f"waiting {remaining:.0f} s: an earlier run deleted many files just now")
        time.sleep(remaining)


#: a destination with more files than this is deleted after the last run, not between runs
_DELETE_AT_ONCE = 100


def _more_files_than(path: Path, limit: int) -> bool:
    count = 0
    for _root, _dirs, files in os.walk(path):
        count += len(files)
        if count > limit:
            return True
    return False


def _check_reachable(directory: Path) -> None:
    """vsftpd and sshd log in as the test user, who must be able to reach ``directory``."""
    for parent in directory.resolve().parents:
        if not os.stat(parent).st_mode & 0o001:
            raise SystemExit(
                f"benchmark: {parent} is not searchable by other users; the test user "
                f"{TEST_USER!r} cannot reach {directory}. Use another --workdir."
            )


def _write_random(path: Path, size: int, chunk: int = 4 * MIB) -> None:
    with path.open("wb") as out:
        left = size
        while left > 0:
            out.write(os.urandom(min(chunk, left)))
            left -= chunk


def prepare_data(dirs: BenchDirs, sizes: Sizes, needed: set[str]) -> None:
    """Create the data sets in ``needed`` (``big``, ``small``, ``many``) unless a previous
    run in the same work directory made them with these sizes."""
    data = dirs.server_data
    marker = dirs.ftproot / "data" / ".sizes.json"
    made: dict[str, int] = json.loads(marker.read_text()) if marker.is_file() else {}
    wanted = {
        "big": sizes.big_bytes,
        "small": sizes.small_count,
        "many": sizes.listing_count,
    }
    data.mkdir("data")
    for name in sorted(needed):
        if made.get(name) == wanted[name]:
            continue
        if name == "big":
            big = dirs.ftproot / "data" / "big.bin"
            _write_random(big, sizes.big_bytes)
            os.chown(big, *_test_user_ids())
        else:
            if (dirs.ftproot / "data" / name).exists():
                shutil.rmtree(dirs.ftproot / "data" / name, ignore_errors=True)
                note_deletion()
            data.mkdir(f"data/{name}")
            count = wanted[name]
            for index in range(count):
                if name == "small":
                    data.write(f"data/small/f{index:06d}.bin", os.urandom(sizes.small_bytes))
                else:
                    data.write(f"data/many/entry-{index:07d}", b"")
        made[name] = wanted[name]
        marker.write_text(json.dumps(made))
    os.sync()  # the data is on disk before anything is timed


def preflight(protocols: Iterable[str]) -> str | None:
    """One line saying what is missing and which command to run first, or ``None`` when the
    machine has what the servers for ``protocols`` need (checked before any data is made)."""
    wanted = set(protocols)
    if not wanted:
        return None
    problems = []
    if os.geteuid() != 0:
        problems.append("the servers must be started as root")
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        problems.append(f"the test user {TEST_USER!r} does not exist")
    if wanted & FTP_FAMILY:
        if not os.access(VSFTPD_BINARY, os.X_OK):
            problems.append(f"{VSFTPD_BINARY} is not installed")
        if not Path("/etc/pam.d", PAM_SERVICE).is_file():
            problems.append(f"the PAM service /etc/pam.d/{PAM_SERVICE} is missing")
        if not SECURE_CHROOT_DIR.is_dir():
            problems.append(f"vsftpd's secure_chroot_dir {SECURE_CHROOT_DIR} is missing")
    if not problems:
        return None
    return f"benchmark: {'; '.join(problems)}: {INSTALL_HINT}"


def _test_user_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(TEST_USER)
    return entry.pw_uid, entry.pw_gid


def count_tree(path: Path) -> tuple[int, int]:
    """Number of files and their total size below ``path``."""
    files = total = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            total += os.lstat(os.path.join(root, name)).st_size
    return files, total


def sftp_pending_reason() -> str | None:
    """Why the SFTP workloads cannot run yet (``None`` when they can)."""
    for module in ("tests.servers.sshd", "ferryman.backends.sftp"):
        if importlib.util.find_spec(module) is None:
            return f"pending: no {module} (the sshd launcher and the SFTP backend are needed)"
    return None


@contextmanager
def start_servers(
    dirs: BenchDirs, protocols: set[Protocol], problems: dict[str, str]
) -> Iterator[dict[str, Endpoint]]:
    """Start what ``protocols`` need; yields their endpoints by protocol. vsftpd not starting
    raises :class:`VsftpdUnavailableError`; sshd not starting is noted in ``problems`` (the
    SFTP workloads are then skipped with that reason)."""
    endpoints: dict[str, Endpoint] = {}
    with ExitStack() as stack:
        if "ftp" in protocols:
            plain = stack.enter_context(Vsftpd("none", root=dirs.ftproot))
            endpoints["ftp"] = Endpoint(
                "ftp", plain.host, plain.port, plain.user, "", server_pid=plain.pid
            )
        if "ftps" in protocols:
            tls = stack.enter_context(Vsftpd("explicit", root=dirs.ftproot))
            assert tls.pki is not None
            endpoints["ftps"] = Endpoint(
                "ftps",
                tls.host,
                tls.port,
                tls.user,
                "",
                ca_file=tls.pki.ca_cert,
                server_pid=tls.pid,
            )
        if "ftps-noreuse" in protocols:
            lax = stack.enter_context(
                Vsftpd("explicit", root=dirs.ftproot, extra_config={"require_ssl_reuse": "NO"})
            )
            assert lax.pki is not None
            endpoints["ftps-noreuse"] = Endpoint(
                "ftps-noreuse",
                lax.host,
                lax.port,
                lax.user,
                "",
                ca_file=lax.pki.ca_cert,
                server_pid=lax.pid,
            )
        if "sftp" in protocols:
            from tests.servers.sshd import Sshd  # noqa: PLC0415 (only when it exists)

            try:
                sshd = stack.enter_context(Sshd())
            except RuntimeError as exc:  # SshdUnavailableError: not installed, did not start
                problems["sftp"] = f"sshd unavailable: {exc}"
                yield endpoints
                return
            endpoints["sftp"] = Endpoint(
                "sftp",
                sshd.host,
                sshd.port,
                sshd.user,
                str(dirs.ftproot),
                key_file=sshd.keys["plain"],
                known_hosts=sshd.known_hosts,
                server_pid=sshd.pid,
            )
        yield endpoints


def make_base(workdir: Path | None) -> tuple[Path, bool]:
    """The work directory and whether it is temporary (removed at the end)."""
    if workdir is not None:
        return workdir.resolve(), False
    return Path(tempfile.mkdtemp(prefix="ferryman-bench-")), True
