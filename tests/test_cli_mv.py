"""``ferryman mv`` onto an existing name: refused unless ``--overwrite``, on every server.

Servers differ: vsftpd, pyftpdlib and OpenSSH's sftp-server (posix-rename) replace the target,
ProFTPD refuses (550). ``mv`` checks the target first, so the answer is the same everywhere;
with ``--overwrite`` a server that refuses to replace gets the target removed first. The
ProFTPD behaviour is reproduced by pyftpdlib with its RNTO refusing existing targets.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ferryman.cli import cli
from ferryman.embedded import EmbeddedServer
from ferryman.errors import ExitCode
from tests.servers.sshd import RemoteDir, Sshd
from tests.servers.vsftpd import Vsftpd, Workdir

from .conftest import PASSWORD, Served, ServerFactory

FAST = ["--retries", "0", "--timeout", "10"]


def invoke(*args: str | Path, env: dict[str, str | None]) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


class _RefusingServer(EmbeddedServer):
    """pyftpdlib whose RNTO refuses an existing target, as ProFTPD does (550)."""

    def _make_handler(self) -> type[Any]:
        base = super()._make_handler()

        def ftp_RNTO(handler: Any, path: str) -> Any:
            if handler._rnfr and os.path.exists(path):
                handler._rnfr = None
                handler.respond("550 Rename/move failure: File exists.")
                return None
            return base.ftp_RNTO(handler, path)

        return type(f"{base.__name__}_refusing", (base,), {"ftp_RNTO": ftp_RNTO})


def _ftp_mv(served: Served, *args: str) -> Result:
    assert served.server.pki is not None
    extra = ["--password-env", "FM_PW", "--ca-file", str(served.server.pki.ca_cert), *FAST]
    return invoke("mv", *args, *extra, env={"FM_PW": PASSWORD})


def _files(root: Path) -> None:
    (root / "out").mkdir()
    (root / "out/a.csv").write_text("new")
    (root / "out/b.csv").write_text("old")
    (root / "out/d").mkdir()


def _check_refused_then_replaced(served: Served) -> None:
    root = served.root
    refused = _ftp_mv(served, served.url("/out/a.csv"), "b.csv")
    assert refused.exit_code == ExitCode.TRANSFER, refused.output
    assert "/out/b.csv exists" in refused.stderr and "--overwrite" in refused.stderr
    assert (root / "out/a.csv").read_text() == "new"
    assert (root / "out/b.csv").read_text() == "old"
    done = _ftp_mv(served, served.url("/out/a.csv"), "b.csv", "--overwrite")
    assert done.exit_code == 0, done.output
    assert not (root / "out/a.csv").exists()
    assert (root / "out/b.csv").read_text() == "new"


def test_mv_onto_a_file_is_refused_then_replaced_with_overwrite(
    ftp_server: ServerFactory,
) -> None:
    served = ftp_server("explicit")
    _files(served.root)
    _check_refused_then_replaced(served)


def test_mv_overwrite_works_where_the_server_refuses_to_replace(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _files(root)
    with _RefusingServer(root, tls="explicit", password=PASSWORD) as server:
        served = Served(server, root)
        # the server itself refuses: what plain RNFR/RNTO would do without the check
        _check_refused_then_replaced(served)


def test_mv_never_replaces_a_directory(ftp_server: ServerFactory) -> None:
    served = ftp_server("explicit")
    _files(served.root)
    result = _ftp_mv(served, served.url("/out/a.csv"), "d", "--overwrite")
    assert result.exit_code == ExitCode.TRANSFER, result.output
    assert "is an existing directory" in result.stderr
    assert (served.root / "out/a.csv").exists() and (served.root / "out/d").is_dir()


def test_mv_onto_a_file_over_vsftpd(vsftpd_plain: Vsftpd, vsftpd_workdir: Workdir) -> None:
    local = vsftpd_workdir.local
    vsftpd_workdir.write("a.csv", b"new")
    vsftpd_workdir.write("b.csv", b"old")
    base = f"ftp://{vsftpd_plain.user}@127.0.0.1:{vsftpd_plain.port}{vsftpd_workdir.path}"
    env: dict[str, str | None] = {"FM_PW": vsftpd_plain.password}
    opts = ["--password-env", "FM_PW", *FAST]
    refused = invoke("mv", f"{base}/a.csv", "b.csv", *opts, env=env)
    assert refused.exit_code == ExitCode.TRANSFER, refused.output
    assert (local / "b.csv").read_text() == "old"
    done = invoke("mv", f"{base}/a.csv", "b.csv", "--overwrite", *opts, env=env)
    assert done.exit_code == 0, done.output
    assert (local / "b.csv").read_text() == "new" and not (local / "a.csv").exists()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_mv_onto_a_file_over_sftp(sshd: Sshd, sshd_workdir: RemoteDir, home: Path) -> None:
    work = sshd_workdir
    work.write("a.csv", b"new")
    work.write("b.csv", b"old")
    env: dict[str, str | None] = {"FM_PW": sshd.password, "HOME": str(home), "SSH_AUTH_SOCK": None}
    base = f"sftp://{sshd.user}@{sshd.host}:{sshd.port}"
    pin = ["--fingerprint", sshd.fingerprints["ssh-ed25519"], "--password-env", "FM_PW", *FAST]
    refused = invoke("mv", base + work.remote("a.csv"), "b.csv", *pin, env=env)
    assert refused.exit_code == ExitCode.TRANSFER, refused.output
    assert (work.local / "b.csv").read_text() == "old"
    done = invoke("mv", base + work.remote("a.csv"), "b.csv", "--overwrite", *pin, env=env)
    assert done.exit_code == 0, done.output
    assert (work.local / "b.csv").read_text() == "new" and not (work.local / "a.csv").exists()
