"""A named FTP user with no password from any source: ferryman says so before connecting,
and where a password can come from, as SFTP does -- no empty PASS, no 530 (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from ferryman.cli import cli
from ferryman.connection import FtpConnection, SftpConnection
from ferryman.errors import AuthenticationError, ExitCode
from ferryman.secrets import login_credentials

from .conftest import PASSWORD, Served, ServerFactory

FAST = ["--retries", "0", "--timeout", "5"]


def _ls(served: Served, home: Path, *extra: str, env: dict[str, str | None]) -> Result:
    assert served.server.pki is not None
    args = ["ls", served.url("/"), *FAST, "--ca-file", str(served.server.pki.ca_cert), "-v"]
    return CliRunner().invoke(cli, [*args, *extra], env={"HOME": str(home), **env})


def test_no_password_anywhere_fails_before_connecting(
    ftp_server: ServerFactory, tmp_path: Path
) -> None:
    served = ftp_server("explicit")
    # the same command with a password logs in, and -v shows the dialogue
    good = _ls(served, tmp_path, "--password-env", "FM_PW", env={"FM_PW": PASSWORD})
    assert good.exit_code == 0, good.output
    assert "> USER demo" in good.stderr and "> PASS ****" in good.stderr

    result = _ls(served, tmp_path, env={})
    assert result.exit_code == ExitCode.AUTHENTICATION, result.output
    assert "> USER" not in result.stderr and "> PASS" not in result.stderr
    assert "< 220" not in result.stderr  # not even connected
    assert "530" not in result.output
    error = result.stderr
    assert "login as demo on ftpes://demo@" in error and "not tried: no password" in error
    for source in ("--password-env", "--password-file", "password_env:", "~/.netrc", "keyring"):
        assert source in error, f"{source!r} not in:\n{error}"
    assert "anonymously" in error


def test_netrc_password_is_still_found(ftp_server: ServerFactory, tmp_path: Path) -> None:
    served = ftp_server("explicit")
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine {served.server.host} login demo password {PASSWORD}\n")
    netrc.chmod(0o600)
    result = _ls(served, tmp_path, env={})
    assert result.exit_code == 0, result.output


def test_the_hint_names_only_the_sources_in_use() -> None:
    conn = FtpConnection(host="h.example", user="bob", use_netrc=False, use_keyring=False)
    with pytest.raises(AuthenticationError) as caught:
        login_credentials(conn)
    assert "netrc" not in str(caught.value) and "keyring" not in str(caught.value)
    assert caught.value.hint is not None and "password_file:" in caught.value.hint


def test_anonymous_and_sftp_are_unchanged(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("")
    anonymous = login_credentials(FtpConnection(host="h.example", netrc_file=netrc))
    assert (anonymous.user, anonymous.password, anonymous.source) == (
        "anonymous",
        "ferryman@",
        "anonymous",
    )
    assert login_credentials(FtpConnection(host="h.example", user="ftp")).anonymous
    given = FtpConnection(host="h.example", user="bob", password=SecretStr("pw"))
    assert login_credentials(given).password == "pw"
    # SFTP may log in with keys or the agent: no password is not an error there
    sftp = SftpConnection(host="h.example", user="bob", netrc_file=netrc, use_keyring=False)
    assert login_credentials(sftp).source == "none"


def test_ferryman_test_says_so_too_without_an_empty_pass(
    ftp_server: ServerFactory, tmp_path: Path
) -> None:
    """`ferryman test` still checks the greeting and TLS, then fails the login step with the
    same message, without sending an empty PASS."""
    served = ftp_server("explicit")
    assert served.server.pki is not None
    args = ["test", served.url("/"), *FAST, "--ca-file", str(served.server.pki.ca_cert), "-v"]
    result = CliRunner().invoke(cli, args, env={"HOME": str(tmp_path)})
    assert result.exit_code == ExitCode.AUTHENTICATION, result.output
    assert "< 220" in result.stderr and "> PASS" not in result.stderr
    assert "not tried: no password" in result.output + result.stderr
