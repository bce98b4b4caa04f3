"""ferryman against a real vsftpd: forced TLS, require_ssl_reuse=YES, no MLSD."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from ferryman.backends.base import EntryType
from ferryman.backends.ftp import FtpBackend
from ferryman.backends.local import LocalBackend
from ferryman.cli import cli
from ferryman.errors import AuthenticationError, ExitCode, TLSError
from ferryman.transfer.copy import copy_file
from tests.servers.ftp_connection import connection
from tests.servers.vsftpd import Vsftpd, Workdir

pytestmark = pytest.mark.vsftpd


@pytest.fixture(params=["explicit", "explicit_tls12", "implicit", "plain"])
def vsftpd(request: pytest.FixtureRequest) -> Vsftpd:
    server: Vsftpd = request.getfixturevalue(f"vsftpd_{request.param}")
    return server


def test_every_operation_round_trips(
    vsftpd: Vsftpd, vsftpd_workdir: Workdir, tmp_path: Path
) -> None:
    payload = os.urandom(5 * 1024 * 1024 + 3)
    source = tmp_path / "up.bin"
    source.write_bytes(payload)
    base = vsftpd_workdir.path
    with FtpBackend(connection(vsftpd)) as ftp, LocalBackend() as disk:
        ftp.mkdir(f"{base}/sub dir")
        copy_file(disk, str(source), ftp, f"{base}/sub dir/up.bin")
        assert (vsftpd_workdir.local / "sub dir/up.bin").read_bytes() == payload
        entries = {e.name: e for e in ftp.list(f"{base}/sub dir")}
        assert entries["up.bin"].type is EntryType.FILE and entries["up.bin"].size == len(payload)
        assert ftp.stat(f"{base}/sub dir/up.bin").size == len(payload)
        assert ftp.stat(f"{base}/sub dir").type is EntryType.DIR
        copy_file(ftp, f"{base}/sub dir/up.bin", disk, str(tmp_path / "down.bin"))
        assert (tmp_path / "down.bin").read_bytes() == payload
        ftp.rename(f"{base}/sub dir/up.bin", f"{base}/sub dir/moved.bin")
        ftp.remove(f"{base}/sub dir/moved.bin")
        ftp.rmdir(f"{base}/sub dir")
        assert list(vsftpd_workdir.local.iterdir()) == []
        session = ftp.session
        assert session is not None
        if vsftpd.mode != "none":
            assert session.data_sessions_resumed and all(session.data_sessions_resumed)
            expected = "TLSv1.2" if vsftpd.tls_max_version == "1.2" else "TLSv1.3"
            assert session.sock.version() == expected


def test_vsftpd_logs_every_data_session_as_reused(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir
) -> None:
    vsftpd_workdir.write("a.txt", b"abc")
    with FtpBackend(connection(vsftpd_explicit)) as ftp:
        for _ in range(3):
            with ftp.open_read(vsftpd_workdir.ftp_path("a.txt")) as stream:
                assert stream.read() == b"abc"
    assert "No SSL session reuse" not in vsftpd_explicit.log_text()


def test_siblings_share_one_tls_context_and_still_resume_their_own_sessions(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir
) -> None:
    """The CA file is loaded once per backend, not per connection; each sibling's data
    connections resume that sibling's own control session (vsftpd refuses anything else)."""
    vsftpd_workdir.write("a.txt", b"abc")
    with FtpBackend(connection(vsftpd_explicit)).connect() as first:
        with first.sibling().connect() as second:
            assert first.tls_context is not None and second.tls_context is first.tls_context
            for backend in (second, first, second):
                with backend.open_read(vsftpd_workdir.ftp_path("a.txt")) as stream:
                    assert stream.read() == b"abc"
            assert second.session is not None and second.session.data_sessions_resumed == [
                True,
                True,
            ]
    assert "No SSL session reuse" not in vsftpd_explicit.log_text()


def test_plain_ftp_builds_no_tls_context(vsftpd_plain: Vsftpd) -> None:
    with FtpBackend(connection(vsftpd_plain)).connect() as ftp:
        assert ftp.tls_context is None and ftp.sibling().tls_context is None
        assert ftp.session is not None and ftp.session.context.cert_store_stats()["x509_ca"] == 0


def test_wrong_password(vsftpd_explicit: Vsftpd) -> None:
    with pytest.raises(AuthenticationError) as info:
        FtpBackend(connection(vsftpd_explicit, password=SecretStr("nope-nope"))).connect()
    assert info.value.reply_code == 530


def test_plain_login_to_a_tls_only_server_says_to_use_tls(vsftpd_explicit: Vsftpd) -> None:
    conn = connection(vsftpd_explicit, tls="none", ca_file=None)
    with pytest.raises(TLSError, match="use ftpes://"):
        FtpBackend(conn).connect()


def test_untrusted_certificate_shows_the_fingerprint(vsftpd_implicit: Vsftpd) -> None:
    assert vsftpd_implicit.pki is not None
    with pytest.raises(TLSError) as info:
        FtpBackend(connection(vsftpd_implicit, ca_file=None)).connect()
    assert vsftpd_implicit.pki.server_fingerprint in str(info.value)


def test_cli_against_vsftpd(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir, tmp_path: Path
) -> None:
    assert vsftpd_explicit.pki is not None
    vsftpd_workdir.write("orders_1.csv", b"id\n1\n")
    vsftpd_workdir.write("orders_2.csv", b"id\n2\n")
    vsftpd_workdir.write("other.txt", b"x")
    url = f"ftpes://{vsftpd_explicit.user}@127.0.0.1:{vsftpd_explicit.port}{vsftpd_workdir.path}"
    env = {"VSFTPD_PW": vsftpd_explicit.password}
    common = ["--ca-file", str(vsftpd_explicit.pki.ca_cert), "--password-env", "VSFTPD_PW"]
    runner = CliRunner()
    result = runner.invoke(cli, ["ls", f"{url}/*.csv", *common], env=env)
    assert result.exit_code == 0, result.output
    assert "orders_1.csv" in result.output and "other.txt" not in result.output
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    result = runner.invoke(cli, ["get", f"{url}/orders_*.csv", str(inbox), *common], env=env)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in inbox.iterdir()) == ["orders_1.csv", "orders_2.csv"]
    result = runner.invoke(cli, ["test", url, *common], env=env)
    assert result.exit_code == 0, result.output
    assert "vsFTPd" in result.output and "session resumed" in result.output
    assert vsftpd_explicit.password not in result.output
    result = runner.invoke(
        cli,
        ["ls", f"{url}/", "--ca-file", str(vsftpd_explicit.pki.ca_cert)],
        env={"FERRYMAN_CONNECTIONS": str(tmp_path / "none.yaml")},
    )
    assert result.exit_code == ExitCode.AUTHENTICATION
