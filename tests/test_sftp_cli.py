"""The ``ferryman`` command line over SFTP, against the real sshd, in-process (CliRunner).

The host key is pinned with ``--fingerprint`` (as a user would after ``ferryman test``), the
password comes from ``--password-env FM_PW``, and HOME is an empty temporary directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ferryman.cli import cli
from ferryman.errors import ExitCode
from ferryman.wirelog import configure_logging
from tests.servers.sshd import RemoteDir, Sshd

FAST = ["--retries", "0", "--timeout", "10"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    configure_logging(0, None)


def url(sshd: Sshd, path: str = "/") -> str:
    return f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{path}"


def invoke(sshd: Sshd, home: Path, *args: str | Path, password: str | None = None) -> Result:
    env = {"FM_PW": password or sshd.password, "HOME": str(home), "SSH_AUTH_SOCK": None}
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert sshd.password not in result.output
    return result


def run(sshd: Sshd, home: Path, *args: str | Path) -> Result:
    """A command with the password from $FM_PW and the host key pinned."""
    pin = ["--fingerprint", sshd.fingerprints["ssh-ed25519"]]
    return invoke(sshd, home, *args, "--password-env", "FM_PW", *pin, *FAST)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


@pytest.fixture
def out(sshd_workdir: RemoteDir) -> RemoteDir:
    sshd_workdir.write("out/a.csv", b"id\n1\n")
    sshd_workdir.write("out/b.csv", b"id\n2\n22\n")
    sshd_workdir.write("out/c.txt", b"x")
    return sshd_workdir


def test_ls_text_and_json(sshd: Sshd, home: Path, out: RemoteDir) -> None:
    result = ok(run(sshd, home, "ls", url(sshd, out.remote("out/"))))
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["a.csv", "b.csv", "c.txt"]
    doc = json.loads(ok(run(sshd, home, "ls", url(sshd, out.remote("out/*.csv")), "--json")).stdout)
    assert {e["name"]: e["size"] for e in doc["entries"]} == {"a.csv": 5, "b.csv": 8}
    assert all(e["type"] == "file" and e["permissions"] == "rw-r--r--" for e in doc["entries"])


def test_ls_of_a_file_lists_that_file(sshd: Sshd, home: Path, out: RemoteDir) -> None:
    result = ok(run(sshd, home, "ls", url(sshd, out.remote("out/b.csv"))))
    [line] = result.stdout.splitlines()
    assert line.split()[:2] == ["-", "8"] and line.endswith("b.csv")


def test_get_and_put_round_trip(sshd: Sshd, home: Path, out: RemoteDir, tmp_path: Path) -> None:
    local = tmp_path / "local"
    ok(run(sshd, home, "get", url(sshd, out.remote("out/*.csv")), local, "--parallel", "2"))
    assert (local / "b.csv").read_bytes() == b"id\n2\n22\n"
    assert sorted(p.name for p in local.iterdir()) == ["a.csv", "b.csv"]
    (local / "new.csv").write_text("n\n1\n")
    ok(run(sshd, home, "put", local / "new.csv", url(sshd, out.remote("out/"))))
    assert (out.local / "out/new.csv").read_text() == "n\n1\n"
    assert not [p for p in (out.local / "out").iterdir() if "part" in p.name]


def test_put_refuses_an_existing_file_then_overwrites(
    sshd: Sshd, home: Path, out: RemoteDir, tmp_path: Path
) -> None:
    source = tmp_path / "a.csv"
    source.write_text("new")
    refused = run(sshd, home, "put", source, url(sshd, out.remote("out/")))
    assert refused.exit_code == ExitCode.TRANSFER and "already exists" in refused.stderr
    ok(run(sshd, home, "put", source, url(sshd, out.remote("out/")), "--overwrite"))
    assert (out.local / "out/a.csv").read_text() == "new"


def test_mkdir_mv_rm_rmdir(sshd: Sshd, home: Path, out: RemoteDir) -> None:
    ok(run(sshd, home, "mkdir", url(sshd, out.remote("new"))))
    assert (out.local / "new").is_dir()
    ok(run(sshd, home, "mv", url(sshd, out.remote("out/a.csv")), "z.csv"))
    assert (out.local / "out/z.csv").read_text() == "id\n1\n"
    ok(run(sshd, home, "rm", url(sshd, out.remote("out/z.csv"))))
    assert not (out.local / "out/z.csv").exists()
    ok(run(sshd, home, "rmdir", url(sshd, out.remote("new"))))
    assert not (out.local / "new").exists()
    missing = run(sshd, home, "rm", url(sshd, out.remote("out/z.csv")))
    assert missing.exit_code == ExitCode.NOT_FOUND, missing.output
    full = run(sshd, home, "rmdir", url(sshd, out.remote("out")))
    assert full.exit_code == ExitCode.TRANSFER, full.output
    assert "not empty" in full.stderr


def test_test_command_reports_every_step(sshd: Sshd, home: Path) -> None:
    result = ok(run(sshd, home, "test", url(sshd)))
    lines = result.stdout.splitlines()
    assert lines[0] == f"Testing sftp://{sshd.user}@{sshd.host}:{sshd.port}"
    assert [line.split()[:2] for line in lines[1:]] == [
        ["ok", name] for name in ("tcp", "ssh", "auth", "sftp", "list")
    ]
    assert "SSH-2.0-OpenSSH" in result.stdout and "cipher aes128-gcm@openssh.com" in result.stdout
    assert sshd.fingerprints["ssh-ed25519"] in result.stdout
    assert "matches the pinned fingerprint" in result.stdout
    assert "by password; the server offers publickey,password" in result.stdout
    assert "SFTP v3; extensions posix-rename@openssh.com" in result.stdout


def test_test_command_json(sshd: Sshd, home: Path) -> None:
    doc = json.loads(ok(run(sshd, home, "test", url(sshd), "--json")).stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert doc["ok"] is True and list(checks) == ["tcp", "ssh", "auth", "sftp", "list"]
    ssh = checks["ssh"]["data"]
    assert ssh["host_key_type"] == "ssh-ed25519"
    assert ssh["host_key_fingerprint"] == sshd.fingerprints["ssh-ed25519"]
    assert ssh["kex"] and ssh["cipher"] and ssh["server_version"].startswith("SSH-2.0-OpenSSH")
    assert checks["auth"]["data"]["method"] == "password"
    assert checks["sftp"]["data"]["version"] == 3


def test_unknown_host_key_exits_5_with_the_pin_to_use(sshd: Sshd, home: Path) -> None:
    fingerprint = sshd.fingerprints["ssh-ed25519"]
    result = invoke(sshd, home, "ls", url(sshd), "--password-env", "FM_PW", *FAST)
    assert result.exit_code == ExitCode.TLS == 5, result.output
    assert f"--fingerprint {fingerprint}" in result.stderr
    tested = invoke(sshd, home, "test", url(sshd), "--password-env", "FM_PW", *FAST)
    assert tested.exit_code == ExitCode.TLS
    assert "FAIL ssh" in tested.stdout and f"--fingerprint {fingerprint}" in tested.stdout


def test_wrong_password_exits_4(sshd: Sshd, home: Path) -> None:
    pin = ["--fingerprint", sshd.fingerprints["ssh-ed25519"]]
    args = ["ls", url(sshd), "--password-env", "FM_PW", *pin, *FAST]
    result = invoke(sshd, home, *args, password="not-the-password")
    assert result.exit_code == ExitCode.AUTHENTICATION == 4, result.output
    assert "the server offers publickey,password" in result.stderr
    assert "not-the-password" not in result.output
    args[0] = "test"
    tested = invoke(sshd, home, *args, password="not-the-password")
    assert tested.exit_code == ExitCode.AUTHENTICATION and "FAIL auth" in tested.stdout


def test_verbose_transcript(sshd: Sshd, home: Path, out: RemoteDir, tmp_path: Path) -> None:
    result = ok(run(sshd, home, "get", url(sshd, out.remote("out/a.csv")), tmp_path, "-v"))
    log = result.stderr
    assert "< SSH-2.0-OpenSSH" in log and "kex " in log and "host key ssh-ed25519" in log
    assert f"authenticated as {sshd.user} by password" in log
    assert f"> OPEN {out.remote('out/a.csv')} (read)" in log
    assert f"read {out.remote('out/a.csv')}: 5 bytes in" in log and "MB/s" in log
    assert sshd.password not in log
