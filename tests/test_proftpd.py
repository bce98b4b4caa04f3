"""A real ProFTPD whose defaults refuse to overwrite and to restart (issue 12, item 1b).

``AllowOverwrite off`` and ``AllowStoreRestart off`` (ProFTPD's defaults): after an interrupted
upload, ``REST n`` is accepted and the ``STOR`` of the temporary file is answered ``550
Overwrite permission denied`` (``APPE``: ``451 Append/Restart not permitted``). ferryman then
deletes the temporary file, writes it again from byte 0, remembers that this server cannot
resume uploads, and succeeds in the same run.

Also here, beside vsftpd: ``rmdir`` of a non-empty directory is one error on every server
(issue 12, item 3).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.local import LocalBackend
from ferryman.cli import cli
from ferryman.connection import FtpConnection
from ferryman.errors import FerrymanError, ResumeRefusedError
from ferryman.retry import RetryPolicy
from ferryman.transfer import FileOutcome, Job, Status, TransferOptions
from ferryman.transfer.copy import PARTIAL_SUFFIX, identity_tag, partial_name
from ferryman.transfer.operations import transfer
from tests.servers.ftp_connection import connection
from tests.servers.proftpd import Proftpd
from tests.servers.vsftpd import Vsftpd, Workdir

pytestmark = pytest.mark.timeout(120)


def partials(workdir: Workdir) -> list[str]:
    return [p.name for p in workdir.local.iterdir() if p.name.endswith(PARTIAL_SUFFIX)]


@pytest.mark.parametrize("rest_stream", [True, False], ids=["REST+STOR", "APPE"])
def test_resuming_a_write_is_refused_and_remembered(
    proftpd_explicit: Proftpd, proftpd_workdir: Workdir, rest_stream: bool
) -> None:
    path = proftpd_workdir.ftp_path("part.bin")
    with FtpBackend(connection(proftpd_explicit)) as ftp:
        with ftp.open_write(path) as stream:
            stream.write(b"0123")
        if not rest_stream:  # as a server without REST STREAM: APPE onto the partial file
            session = ftp.session_or_raise()
            session.features = {k: v for k, v in session.features.items() if k != "REST"}
        with pytest.raises(ResumeRefusedError) as info:
            ftp.open_write(path, 4)
        assert info.value.reply_code == (550 if rest_stream else 451)
        assert ftp.quirks.resume_write_refused
        assert not ftp.capabilities.resume_write
        sibling = ftp.sibling()
        assert sibling.quirks is ftp.quirks
        with pytest.raises(ResumeRefusedError):  # known now: not even tried
            sibling.open_write(path, 4)
        sibling.close()
        assert ftp.size(path) == 4  # nothing was written to it


def test_put_onto_the_partial_of_an_interrupted_run_starts_over(
    proftpd_explicit: Proftpd, proftpd_workdir: Workdir, tmp_path: Path
) -> None:
    payload = os.urandom(300_000)
    source = tmp_path / "data.bin"
    source.write_bytes(payload)
    os.utime(source, (1_700_000_000, 1_700_000_000))  # unchanged since long before the partial
    tag = identity_tag("local", str(source), len(payload))
    proftpd_workdir.write(partial_name("data.bin", tag), payload[:100_000])
    assert proftpd_explicit.pki is not None
    url = f"ftpes://{proftpd_explicit.user}@127.0.0.1:{proftpd_explicit.port}"
    result = CliRunner().invoke(
        cli,
        [
            "put",
            str(source),
            f"{url}{proftpd_workdir.path}/",
            "--if-exists",
            "resume",
            "--ca-file",
            str(proftpd_explicit.pki.ca_cert),
            "--password-env",
            "PROFTPD_PW",
            "--retries",
            "0",
            "--timeout",
            "10",
        ],
        env={"PROFTPD_PW": proftpd_explicit.password},
    )
    assert result.exit_code == 0, result.output
    assert (proftpd_workdir.local / "data.bin").read_bytes() == payload
    assert partials(proftpd_workdir) == []


class _KillTheSession:
    """Events that SIGKILL the ProFTPD process serving the upload (by pid, a child of our own
    ProFTPD) once ``after`` bytes went out: the server dies in the middle of the transfer."""

    def __init__(self, server: Proftpd, after: int) -> None:
        self.server, self.after, self.sent, self.killed = server, after, 0, False

    def started(self, job: Job, offset: int) -> None:
        del job, offset

    def advanced(self, job: Job, nbytes: int) -> None:
        del job
        self.sent += nbytes
        if self.killed or self.sent < self.after:
            return
        self.killed = True
        master = self.server.pid
        assert master is not None
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        assert children, "no ProFTPD session process to kill"
        for pid in children:
            os.kill(int(pid), signal.SIGKILL)

    def finished(self, outcome: FileOutcome) -> None:
        del outcome


def test_a_server_dying_mid_upload_then_refusing_to_resume_succeeds_in_the_same_run(
    tmp_path: Path,
) -> None:
    payload = os.urandom(48 * 1024 * 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    options = TransferOptions(parallel=1, retry=RetryPolicy(retries=2, delay=0.01))
    with Proftpd("explicit") as server:  # its own server: every session of it is this test's
        workdir = Workdir(local=server.root, path="")
        events = _KillTheSession(server, after=24 * 1024 * 1024)
        with FtpBackend(connection(server)) as ftp, LocalBackend() as disk:
            summary = transfer(disk, str(source), ftp, "/", options, events=events)
            assert events.killed
            (outcome,) = summary.files
            assert outcome.status is Status.COPIED, outcome.reason
            assert outcome.retries == 1 and outcome.resumed_from == 0
            assert ftp.quirks.resume_write_refused  # the retry tried REST + STOR: refused
        assert (server.root / "big.bin").read_bytes() == payload
        assert partials(workdir) == []


@pytest.mark.parametrize("name", ["proftpd_plain", "vsftpd_plain"])
def test_rmdir_of_a_non_empty_directory_is_one_error_on_every_server(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # vsftpd answers "550 Remove directory operation failed.", ProFTPD "550 ...: Directory not
    # empty", pyftpdlib "550 Directory not empty." (tests/test_cli.py): one error for all
    server = request.getfixturevalue(name)
    workdir: Workdir = request.getfixturevalue(name.split("_", maxsplit=1)[0] + "_workdir")
    workdir.write("full/a.csv", b"x")
    url = f"ftp://{server.user}@127.0.0.1:{server.port}{workdir.ftp_path('full')}"
    result = CliRunner().invoke(
        cli,
        ["rmdir", url, "--password-env", "FTP_PW", "--retries", "0", "--timeout", "10"],
        env={"FTP_PW": server.password},
    )
    assert result.exit_code == 7, result.output
    assert f"RMD {workdir.ftp_path('full')}: the directory is not empty" in result.output
    assert "check the path" not in result.output
    assert (workdir.local / "full/a.csv").exists()


def test_put_over_a_temporary_file_an_interrupted_run_left_writes_it_again(
    proftpd_plain: Proftpd, proftpd_workdir: Workdir, tmp_path: Path
) -> None:
    # without --if-exists resume the copy starts from byte 0, and ProFTPD will not let STOR
    # write over the temporary file that is in the way: it is deleted and written again
    payload = os.urandom(70_000)
    source = tmp_path / "again.bin"
    source.write_bytes(payload)
    tag = identity_tag("local", str(source), len(payload))
    proftpd_workdir.write(partial_name("again.bin", tag), b"stale bytes")
    url = f"ftp://{proftpd_plain.user}@127.0.0.1:{proftpd_plain.port}{proftpd_workdir.path}/"
    result = CliRunner().invoke(
        cli,
        ["put", str(source), url, "--password-env", "FTP_PW", "--retries", "0"],
        env={"FTP_PW": proftpd_plain.password},
    )
    assert result.exit_code == 0, result.output
    assert (proftpd_workdir.local / "again.bin").read_bytes() == payload
    assert partials(proftpd_workdir) == []


def test_the_fixture_runs_proftpd_as_a_child_and_stops_it_by_pid() -> None:
    server = Proftpd("none").start()
    try:
        pid = server.pid
        assert pid is not None and Path(f"/proc/{pid}").exists()
        assert f"Port {server.port}" in server.config()
        assert "AllowOverwrite" not in server.config()  # ProFTPD's default (off) is the point
        assert "AllowStoreRestart" not in server.config()
    finally:
        server.stop()
    assert server.pid is None and not Path(f"/proc/{pid}").exists()
    assert not server.base_dir.exists()


def test_rmdir_of_a_file_on_vsftpd_is_not_called_a_non_empty_directory(
    vsftpd_plain: Vsftpd, vsftpd_workdir: Workdir
) -> None:
    vsftpd_workdir.write("plain.txt", b"x")
    conn = FtpConnection.model_validate(
        {
            "host": vsftpd_plain.host,
            "port": vsftpd_plain.port,
            "user": vsftpd_plain.user,
            "password": SecretStr(vsftpd_plain.password),
            "timeout": 10,
            "retries": 0,
            "use_netrc": False,
            "use_keyring": False,
        }
    )
    with FtpBackend(conn) as ftp, pytest.raises(FerrymanError) as info:
        ftp.rmdir(vsftpd_workdir.ftp_path("plain.txt"))
    assert "not empty" not in str(info.value)


def test_ferryman_test_finds_no_refusals_on_proftpd(proftpd_explicit: Proftpd) -> None:
    assert proftpd_explicit.pki is not None
    url = f"ftpes://{proftpd_explicit.user}@127.0.0.1:{proftpd_explicit.port}"
    result = CliRunner().invoke(
        cli,
        ["test", url, "--ca-file", str(proftpd_explicit.pki.ca_cert), "--password-env", "PW"],
        env={"PW": proftpd_explicit.password},
    )
    assert result.exit_code == 0, result.output
    marks = {line.split()[1]: line.split()[0] for line in result.output.splitlines()[1:]}
    assert marks["refusals"] == "ok" and marks["data-epsv"] == "ok"
    assert "advertised but refused" not in result.output
