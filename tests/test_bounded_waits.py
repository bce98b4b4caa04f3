"""Every wait ends (issue 13, "Bounded waits"): a time-out bounds a whole reply, not each byte.

Hostile servers on loopback trickle a reply one piece at a time without ever completing it:
a greeting, a command's reply, a multi-line reply, the final reply after a transfer (scripted
FTP dialogues), an SSH banner (a tiny socket server) and an SFTP reply (the in-process asyncssh
server, its request handler held up). Each must end in a :class:`ferryman.errors.TimeoutError`
(exit code 3) that says what was awaited and for how long, well within a generous bound. The
pool case: a server at its user limit must not keep ``get`` waiting for idle workers' connect
time-outs after the last file.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.sftp import SftpBackend
from ferryman.cli import cli
from ferryman.connection import FtpConnection, SftpConnection
from ferryman.errors import ExitCode
from ferryman.errors import TimeoutError as FerrymanTimeout
from tests.servers import sftp_inprocess
from tests.servers.scripted import ScriptedFtpServer, multiline, transfer_out, trickle
from tests.servers.sftp_inprocess import INPROCESS_PASSWORD, INPROCESS_USER, InProcessSftpServer

pytestmark = pytest.mark.timeout(60)

USER = "bob"
PASSWORD = "pw-for-bounded-waits"
TIMEOUT = 1.5  #: the client's time-out in these tests; the servers trickle for 10 s
BOUND = 8.0  #: "it ended": far below the servers' 10 s of trickling, far above the time-out

sftp_server = sftp_inprocess.sftp_server


def scripted(rules: dict[str, object] | None = None, **options: object) -> ScriptedFtpServer:
    return ScriptedFtpServer(rules, timeout=10, **options)  # type: ignore[arg-type]


def backend_for(server: ScriptedFtpServer) -> FtpBackend:
    conn = FtpConnection.model_validate(
        {
            "host": server.host,
            "port": server.port,
            "user": USER,
            "password": SecretStr(PASSWORD),
            "tls": "none",
            "timeout": TIMEOUT,
            "retries": 0,
            "use_netrc": False,
            "use_keyring": False,
        }
    )
    return FtpBackend(conn)


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], env={"FM_PW": PASSWORD})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def timed_out(err: FerrymanTimeout, *words: str) -> None:
    """The error is a time-out (exit 3) whose message names what was awaited and how long."""
    assert err.exit_code == ExitCode.CONNECTION == 3
    assert f"within {TIMEOUT:g} s" in err.message, err.message
    for word in words:
        assert word in err.message, err.message


# ---------------------------------------------------------------------------------------------
# FTP: the greeting, a command's reply, a multi-line reply, the final reply of a transfer


def test_a_greeting_trickled_byte_by_byte_times_out() -> None:
    banner = lambda server: server.trickle(b"220 ", b"x")  # noqa: E731
    with scripted(banner=banner) as server:
        started = time.monotonic()
        with pytest.raises(FerrymanTimeout) as info, backend_for(server) as ftp:
            ftp.connect()
        assert time.monotonic() - started < BOUND
        assert server.state.get("trickled", 0) >= 3  # it did trickle past the socket time-out
    timed_out(info.value, "waiting for the greeting: ftp://bob@127.0.0.1")


def test_the_cli_ends_with_exit_3_on_a_trickled_greeting() -> None:
    banner = lambda server: server.trickle(b"220 ", b"x")  # noqa: E731
    with scripted(banner=banner) as server:
        started = time.monotonic()
        result = invoke(
            "ls",
            f"ftp://{USER}@{server.host}:{server.port}/",
            "--password-env",
            "FM_PW",
            "--timeout",
            f"{TIMEOUT:g}",
            "--retries",
            "0",
        )
        assert time.monotonic() - started < BOUND
    assert result.exit_code == 3, result.output + result.stderr
    assert "greeting" in result.stderr and f"within {TIMEOUT:g} s" in result.stderr


def test_a_command_reply_trickled_times_out() -> None:
    with scripted({"MKD": trickle(b'257 "/in', b"x")}) as server, backend_for(server) as ftp:
        ftp.connect()
        started = time.monotonic()
        with pytest.raises(FerrymanTimeout) as info:
            ftp.mkdir("/in")
        assert time.monotonic() - started < BOUND
        assert server.state.get("trickled", 0) >= 3
    timed_out(info.value, "waiting for the reply to MKD /in")


def test_a_multiline_reply_that_never_ends_times_out() -> None:
    """Complete lines keep arriving, but the reply never does: lines do not reset the clock."""
    with scripted({"FEAT": trickle(b"211-Features:\r\n", b" UTF8\r\n")}) as server:
        started = time.monotonic()
        with pytest.raises(FerrymanTimeout) as info, backend_for(server) as ftp:
            ftp.connect()
        assert time.monotonic() - started < BOUND
        assert server.state.get("trickled", 0) >= 3 * len(b" UTF8\r\n")
    timed_out(info.value, "waiting for the reply to FEAT")


def test_the_final_reply_of_a_download_trickled_times_out() -> None:
    rules = {"RETR": trickle(b"226 ", b"x", transfer=b"0123456789")}
    with scripted(rules) as server, backend_for(server) as ftp:
        ftp.connect()
        stream = ftp.open_read("/in/a.csv")
        assert stream.read(100) == b"0123456789"
        assert stream.read(100) == b""
        started = time.monotonic()
        with pytest.raises(FerrymanTimeout) as info:
            stream.close()
        assert time.monotonic() - started < BOUND
    timed_out(info.value, "waiting for the final reply to RETR /in/a.csv")


def test_the_final_reply_of_an_upload_trickled_times_out() -> None:
    def stor(server: ScriptedFtpServer, arg: str) -> None:
        server.reply("150 Ok to send data.")
        server.uploads.append((arg, server.receive_data()))
        server.trickle(b"226 ", b"x")

    with scripted({"STOR": stor}) as server, backend_for(server) as ftp:
        ftp.connect()
        stream = ftp.open_write("/in/up.csv")
        stream.write(b"0123456789")
        started = time.monotonic()
        with pytest.raises(FerrymanTimeout) as info:
            stream.close()
        assert time.monotonic() - started < BOUND
        assert server.uploads == [("/in/up.csv", b"0123456789")]
    timed_out(info.value, "waiting for the final reply to STOR /in/up.csv")


def test_a_silent_data_connection_times_out_saying_for_how_long() -> None:
    """Data has an idle time-out (each wait for more bytes), which the message states."""

    def retr(server: ScriptedFtpServer, _arg: str) -> None:
        server.reply("150 Opening data connection.")
        with server.accept_data() as data:
            data.settimeout(10)
            with contextlib.suppress(OSError):
                data.recv(1)  # nothing comes: returns when the client drops the connection

    with scripted({"RETR": retr}) as server, backend_for(server) as ftp:
        ftp.connect()
        stream = ftp.open_read("/in/a.csv")
        started = time.monotonic()
        with pytest.raises(FerrymanTimeout) as info:
            stream.read(100)
        assert time.monotonic() - started < BOUND
        stream.close()
    assert f"the data connection was idle for {TIMEOUT:g} s" in info.value.message
    assert info.value.message.startswith("RETR /in/a.csv: ftp://bob@127.0.0.1")


def test_a_reply_that_arrives_in_pieces_within_the_time_out_is_read() -> None:
    """The deadline is for the whole reply: pieces that complete it in time are fine."""
    features = multiline("211", ["Features:", " EPSV", " UTF8"]).encode() + b"\r\n"
    rules = {
        "FEAT": lambda server, _arg: _in_pieces(server, features),
        "MKD": lambda server, _arg: _in_pieces(server, b'257 "/in" created.\r\n'),
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        ftp.mkdir("/in")
        assert "MKD /in" in server.commands


def _in_pieces(server: ScriptedFtpServer, reply: bytes) -> None:
    for i in range(0, len(reply), 8):
        server.reply(reply[i : i + 8])
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# SSH: a banner that never ends; SFTP: a reply that never comes


@contextlib.contextmanager
def ssh_banner_trickler() -> Iterator[tuple[int, list[int]]]:
    """A TCP server on loopback that sends ``SSH-2.0-`` and then one byte every 0.1 s, without
    the line end, for 10 s at most; yields its port and a list with the bytes trickled."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    trickled = [0]
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError), listener.accept()[0] as conn:
            conn.sendall(b"SSH-2.0-")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not stop.wait(0.1):
                conn.sendall(b"x")
                trickled[0] += 1

    thread = threading.Thread(target=serve, name="ssh-banner-trickler", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], trickled
    finally:
        stop.set()
        listener.close()
        thread.join(15)


def test_an_ssh_banner_trickled_byte_by_byte_times_out() -> None:
    with ssh_banner_trickler() as (port, trickled):
        conn = SftpConnection.model_validate(
            {
                "host": "127.0.0.1",
                "port": port,
                "user": USER,
                "password": SecretStr(PASSWORD),
                "fingerprint": "SHA256:" + "A" * 43,  # never reached: no key exchange
                "timeout": TIMEOUT,
                "retries": 0,
                "use_netrc": False,
                "use_keyring": False,
                "use_agent": False,
            }
        )
        started = time.monotonic()
        with pytest.raises(FerrymanTimeout) as info:
            SftpBackend(conn).connect()
        assert time.monotonic() - started < BOUND
        assert trickled[0] >= 3
    err = info.value
    assert err.exit_code == 3
    assert f"waited {TIMEOUT:g} s for the server's SSH banner" in err.message, err.message


class _NeverAnswersStat(asyncssh.SFTPServer):
    """Answers every request but STAT/LSTAT, which it holds until the client gives up."""

    async def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        await asyncio.sleep(10)
        raise asyncssh.SFTPFailure("held too long")

    lstat = stat


@pytest.fixture
def stalling_sftp(tmp_path: Path) -> Iterator[InProcessSftpServer]:
    root = tmp_path / "sftp-root"
    root.mkdir()
    server = InProcessSftpServer(root, handler=_NeverAnswersStat).start()
    try:
        yield server
    finally:
        server.stop()


def test_an_sftp_reply_that_never_comes_times_out(stalling_sftp: InProcessSftpServer) -> None:
    (stalling_sftp.root / "a.csv").write_bytes(b"x")
    with SftpBackend(stalling_sftp.connection(timeout=TIMEOUT)).connect() as sftp:
        started = time.monotonic()
        with pytest.raises(FerrymanTimeout) as info:
            sftp.stat("/a.csv")
        assert time.monotonic() - started < BOUND
    timed_out(info.value, "waiting for the reply to", "did not answer in time")


# ---------------------------------------------------------------------------------------------
# the pool: a server at its user limit holds extra connections; the run ends after the last file

CONTENT = b"hello\n"
MLSD = b"".join(
    b"type=file;size=%d;modify=20240102030405; f%d.txt\r\n" % (len(CONTENT), i) for i in range(3)
)
FEATURES = multiline("211", ["Features:", " EPSV", " MLST type*;size*;modify*;", " UTF8"])


def test_get_ends_after_the_last_file_while_extra_connections_wait(tmp_path: Path) -> None:
    """A server that serves one session at a time (user limit 1): the pool's other connections
    wait in its listen queue without a greeting. ``get`` must end once the first connection has
    copied every file, not a connect time-out later; the late connections, when the server
    finally greets them, log in and just close (QUIT)."""
    rules = {
        "FEAT": FEATURES,
        "MLSD": transfer_out(MLSD),
        "RETR": transfer_out(CONTENT),
        "SIZE": f"213 {len(CONTENT)}",
    }
    dest = tmp_path / "dest"
    dest.mkdir()
    with scripted(rules, connections=3) as server:
        started = time.monotonic()
        result = invoke(
            "get",
            f"ftp://{USER}@{server.host}:{server.port}/out/*.txt",
            dest,
            "--password-env",
            "FM_PW",
            "--timeout",
            "15",
            "--retries",
            "0",
            "--parallel",
            "3",
        )
        elapsed = time.monotonic() - started
        assert result.exit_code == 0, result.output + result.stderr
        assert elapsed < BOUND, f"get took {elapsed:.1f} s"
        assert sorted(p.name for p in dest.iterdir()) == ["f0.txt", "f1.txt", "f2.txt"]
        until = time.monotonic() + 10
        while server.commands.count("QUIT") < 3 and time.monotonic() < until:
            time.sleep(0.05)
        assert server.connections_accepted == 3
        assert server.commands.count("QUIT") == 3  # each late connection closed at once
        assert server.commands.count("RETR /out/f0.txt") == 1


@contextlib.contextmanager
def first_connection_only(upstream: tuple[str, int]) -> Iterator[int]:
    """A TCP proxy on loopback: its first connection is forwarded to ``upstream``; every later
    one gets a never-ending SSH banner (a server that admits one more SSH connection only after
    a long while). Yields the proxy's port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    sockets: list[socket.socket] = []

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def hold(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(b"SSH-2.0-")
            while not stop.wait(0.1):
                conn.sendall(b"x")

    def serve() -> None:
        accepted = 0
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sockets.append(conn)
            accepted += 1
            if accepted == 1:
                server = socket.create_connection(upstream, timeout=10)
                sockets.append(server)
                for a, b in ((conn, server), (server, conn)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()
            else:
                threading.Thread(target=hold, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, name="first-connection-proxy", daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()


def test_sftp_get_ends_after_the_last_file_while_a_second_connection_hangs(
    sftp_server: InProcessSftpServer, tmp_path: Path
) -> None:
    """10 parallel workers need two SSH connections (8 channels each at most): the second one
    hangs in its banner; ``get`` ends when the 10 files are copied, not after its time-out."""
    for i in range(10):
        (sftp_server.root / f"f{i}.txt").write_bytes(b"x" * i)
    dest = tmp_path / "dest"
    dest.mkdir()
    with first_connection_only((sftp_server.host, sftp_server.port)) as port:
        started = time.monotonic()
        result = CliRunner().invoke(
            cli,
            [
                "get",
                f"sftp://{INPROCESS_USER}@127.0.0.1:{port}/*.txt",
                str(dest),
                "--password-env",
                "FM_PW",
                "--fingerprint",
                sftp_server.fingerprint,
                "--timeout",
                "15",
                "--retries",
                "0",
                "--parallel",
                "10",
            ],
            env={"FM_PW": INPROCESS_PASSWORD, "HOME": str(tmp_path), "SSH_AUTH_SOCK": None},
        )
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output + result.stderr
    assert elapsed < BOUND, f"get took {elapsed:.1f} s"
    assert sorted(p.name for p in dest.iterdir()) == [f"f{i}.txt" for i in range(10)]
