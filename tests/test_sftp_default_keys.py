"""What ferryman says it offered when no key is given: only the ~/.ssh keys that exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ferryman.backends.sftp.auth import auth_plan
from ferryman.cli import cli
from ferryman.connection import SftpConnection
from ferryman.errors import ExitCode
from tests.servers.sftp_inprocess import InProcessSftpServer, sftp_server  # noqa: F401


def plan_text(home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    conn = SftpConnection(host="h", user="u", use_netrc=False, use_keyring=False)
    return auth_plan(conn).describe()


def test_without_a_dot_ssh_directory_no_key_is_claimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert plan_text(tmp_path, monkeypatch) == "no key file (there is no ~/.ssh)"
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh/known_hosts").write_text("")
    (tmp_path / ".ssh/id_ed25519.pub").write_text("ssh-ed25519 AAAA")
    assert plan_text(tmp_path, monkeypatch) == "no key file (~/.ssh has no id_* key)"
    (tmp_path / ".ssh/id_ed25519").write_text("key")
    (tmp_path / ".ssh/id_rsa").write_text("key")
    assert plan_text(tmp_path, monkeypatch) == "~/.ssh keys (id_ed25519, id_rsa)"


def test_a_refused_login_says_what_was_offered(
    sftp_server: InProcessSftpServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = f"sftp://nobody@{sftp_server.host}:{sftp_server.port}/"
    env = {"HOME": str(tmp_path), "SSH_AUTH_SOCK": None, "FM_PW": "wrong"}
    args = ["ls", url, "--fingerprint", sftp_server.fingerprint, "--password-env", "FM_PW"]
    result = CliRunner().invoke(cli, [*args, "--retries", "0"], env=env)
    assert result.exit_code == ExitCode.AUTHENTICATION, result.output
    assert "ferryman offered no key file (there is no ~/.ssh), password" in result.stderr
    assert "id_*" not in result.stderr
