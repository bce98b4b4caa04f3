"""Command pipelining (issue 19) against scripted dialogues: a server that drops pipelined
input is detected at login and then served one command at a time, remembered for its
host:port; a SIZE answered during an upload is not trusted; a refused RNFR sent with its RNTO
leaves the session in step and nothing renamed. The counts per file on real servers are in
``test_ftp_round_trips.py``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.ftp.pipelining import PROBE_MIN_WAIT, host_facts
from ferryman.backends.local import LocalBackend
from ferryman.cli import cli
from ferryman.connection import FtpConnection
from ferryman.errors import NotFoundError
from ferryman.transfer.copy import copy_file
from tests.servers.scripted import Reply, Rule, ScriptedFtpServer, multiline
from tests.servers.scripted_files import file_rules

pytestmark = pytest.mark.timeout(30)

LOGIN = ["USER bob", "PASS pw-for-pipelining", "FEAT", "TYPE I", "OPTS UTF8 ON"]
FEAT = multiline("211", ["Features:", " EPSV", " SIZE", " MDTM", " UTF8"], "End")


def rules_for(files: dict[str, bytes], **more: Rule) -> dict[str, Rule]:
    """The in-memory file system's rules, FEAT with SIZE and MDTM, and ``more`` on top."""
    return {**file_rules(files), "FEAT": FEAT, **more}


def verbs(server: ScriptedFtpServer) -> list[str]:
    """The verbs sent after the login, QUIT left out."""
    return [c.split()[0] for c in server.commands[len(LOGIN) : -1]]


def backend_for(server: ScriptedFtpServer) -> FtpBackend:
    conn = FtpConnection.model_validate(
        {
            "host": server.host,
            "port": server.port,
            "user": "bob",
            "password": SecretStr("pw-for-pipelining"),
            "tls": "none",
            "timeout": 5,
            "retries": 0,
            "use_netrc": False,
            "use_keyring": False,
        }
    )
    return FtpBackend(conn)


def upload(ftp: FtpBackend, tmp_path: Path, name: str, data: bytes) -> str:
    local = tmp_path / name
    local.write_bytes(data)
    with LocalBackend() as disk:
        return copy_file(disk, str(local), ftp, f"/in/{name}").verified


def test_a_server_that_drops_pipelined_commands_is_served_one_at_a_time(tmp_path: Path) -> None:
    files = {"/in/a.csv": b"a,b\n1,2\n"}
    with ScriptedFtpServer(
        rules_for(files), drop_pipelined=True, connections=3, timeout=10
    ) as server:
        started = time.monotonic()
        ftp = backend_for(server).connect()
        # the probe: FEAT and TYPE I in one send; TYPE I dropped, never answered; that session
        # is closed and a second one sends a command at a time
        assert time.monotonic() - started >= PROBE_MIN_WAIT
        assert server.dropped == [b"TYPE I\r\n"]
        assert host_facts(server.host, server.port).pipelining is False
        assert [e.name for e in ftp.list("/in")] == ["a.csv"]
        with ftp.open_read("/in/a.csv") as stream:
            assert stream.read() == files["/in/a.csv"]
        assert upload(ftp, tmp_path, "b.csv", b"x" * 1000) == "size"
        ftp.rename("/in/b.csv", "/in/c.csv")
        ftp.close()
        # a later connection to the same host:port knows: no probe, nothing dropped
        again = backend_for(server)
        assert again.size("/in/c.csv") == 1000
        again.close()
    assert server.connections_accepted == 3
    assert server.dropped == [b"TYPE I\r\n"]  # the probe's only: all else one at a time
    assert files["/in/c.csv"] == b"x" * 1000
    assert not any(name.endswith(".ferryman-part") for name in files)
    # the first session's TYPE I was dropped unheard; the second one's came alone
    assert server.commands[:7] == [*LOGIN[:3], *LOGIN[:4]]


def test_a_server_that_pipelines_gets_the_login_and_transfers_batched(tmp_path: Path) -> None:
    files = {"/in/a.csv": b"a,b\n"}
    with ScriptedFtpServer(rules_for(files)) as server:
        with backend_for(server).connect() as ftp:
            assert host_facts(server.host, server.port).pipelining is True
            for _ in range(2):
                with ftp.open_read("/in/a.csv") as stream:
                    assert stream.read() == b"a,b\n"
            assert upload(ftp, tmp_path, "b.csv", b"12345") == "size"
    assert server.commands[: len(LOGIN)] == LOGIN
    # EPSV alone the first time (its port is then known to be reachable), then with RETR;
    # copy_file: is the target there (SIZE + MDTM, then CWD + CWD back: not a directory),
    # the upload with its SIZE behind the data, RNFR + RNTO together once it matched
    assert verbs(server) == [
        *["EPSV", "RETR", "EPSV", "RETR"],
        *["SIZE", "MDTM", "PWD", "CWD", "CWD"],
        *["EPSV", "STOR", "SIZE", "RNFR", "RNTO"],
    ]
    assert files["/in/b.csv"] == b"12345"


def test_a_size_answered_during_the_upload_is_asked_again(tmp_path: Path) -> None:
    files: dict[str, bytes] = {"/in/.dir": b""}
    rules = rules_for(files)
    store, size = rules["STOR"], rules["SIZE"]
    assert callable(store) and callable(size)

    def early_size(server: ScriptedFtpServer, arg: str) -> Reply:
        """As pyftpdlib may: the SIZE that came behind the data answered before the 226,
        with what was there at the time (here: 1 byte)."""
        end = store(server, arg)
        if not server.state.get("answered early"):  # the first upload only
            server.state["answered early"] = server.state["silent"] = True
            server.reply("213 1")
        return end

    def size_rule(server: ScriptedFtpServer, arg: str) -> Reply:
        if server.state.pop("silent", False):
            return None  # answered already, before the 226
        return size(server, arg)

    rules_over: dict[str, Rule] = {**rules, "STOR": early_size, "SIZE": size_rule}
    with ScriptedFtpServer(rules_over) as server:
        with backend_for(server).connect() as ftp:
            assert upload(ftp, tmp_path, "a.bin", b"y" * 300) == "size"
            assert host_facts(server.host, server.port).size_after_226 is False
            assert upload(ftp, tmp_path, "b.bin", b"z" * 200) == "size"
    assert files["/in/a.bin"] == b"y" * 300 and files["/in/b.bin"] == b"z" * 200
    # file 1: SIZE behind the data (answered early: ignored), SIZE again; file 2: after the 226
    assert [v for v in verbs(server) if v in ("EPSV", "STOR", "SIZE", "RNFR", "RNTO")] == [
        *["SIZE", "EPSV", "STOR", "SIZE", "SIZE", "RNFR", "RNTO"],
        *["SIZE", "EPSV", "STOR", "SIZE", "RNFR", "RNTO"],
    ]


def test_a_refused_rnfr_sent_with_its_rnto_renames_nothing() -> None:
    files = {"/in/a.csv": b"1"}
    rules = rules_for(files)
    rnto = rules["RNTO"]
    assert callable(rnto)

    def strict_rnto(server: ScriptedFtpServer, arg: str) -> Reply:
        if "rnfr" not in server.state:
            return "503 RNFR required first."
        return rnto(server, arg)

    with ScriptedFtpServer({**rules, "RNTO": strict_rnto}) as server:
        with backend_for(server).connect() as ftp:
            with pytest.raises(NotFoundError, match=r"RNFR /in/missing\.csv"):
                ftp.rename("/in/missing.csv", "/in/b.csv")
            ftp.rename("/in/a.csv", "/in/b.csv")  # the session is still in step
    assert files == {"/in/b.csv": b"1"}
    assert [c for c in server.commands[len(LOGIN) : -1] if c != "PWD"] == [
        "RNFR /in/missing.csv",
        "RNTO /in/b.csv",  # sent with it, refused (503), read: the session stays in step
        "RNFR /in/a.csv",
        "RNTO /in/b.csv",
    ]


def test_pipelining_switched_off_sends_one_command_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRYMAN_FTP_PIPELINING", "off")
    files = {"/in/a.csv": b"a"}
    with ScriptedFtpServer(rules_for(files), drop_pipelined=True) as server:
        started = time.monotonic()
        with backend_for(server).connect() as ftp:
            with ftp.open_read("/in/a.csv") as stream:
                assert stream.read() == b"a"
            assert upload(ftp, tmp_path, "b.csv", b"bb") == "size"
        assert time.monotonic() - started < PROBE_MIN_WAIT  # no probe waited for
    assert server.dropped == []
    assert server.connections_accepted == 1
    assert files["/in/b.csv"] == b"bb"


def test_ferryman_test_notes_a_server_that_drops_pipelined_commands() -> None:
    files = {"/in/a.csv": b"a"}
    # connections: the TCP check, the session whose probe lost a command, the one after it
    with ScriptedFtpServer(
        rules_for(files), drop_pipelined=True, connections=3, timeout=10
    ) as server:
        url = f"ftp://bob@{server.host}:{server.port}"
        args = ["test", url, "--password-env", "FM_PW", "--timeout", "5", "--json"]
        result = CliRunner().invoke(cli, args, env={"FM_PW": "pw-for-pipelining"})
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["pipelining"]["ok"] and checks["pipelining"]["note"]
    assert checks["login"]["ok"] and checks["data-epsv"]["ok"]
    assert server.dropped == [b"TYPE I\r\n"]


def test_a_session_probes_even_where_the_host_was_seen_to_pipeline() -> None:
    """Behind one address (a load balancer) a server that drops pipelined input may follow one
    that did not: each session's login batch is its own probe, with the short wait."""
    files = {"/in/a.csv": b"a"}
    with ScriptedFtpServer(
        rules_for(files), drop_pipelined=True, connections=2, timeout=10
    ) as server:
        host_facts(server.host, server.port).pipelining = True  # as another server showed
        started = time.monotonic()
        with backend_for(server).connect() as ftp:
            assert time.monotonic() - started < 5  # the probe's wait, not the time-out
            with ftp.open_read("/in/a.csv") as stream:
                assert stream.read() == b"a"
        assert host_facts(server.host, server.port).pipelining is False
    assert server.dropped == [b"TYPE I\r\n"]


def test_a_size_after_the_226_that_does_not_match_is_asked_again(tmp_path: Path) -> None:
    """A server whose control and data connections run apart might answer the SIZE after the
    226 yet measure before the last bytes landed: a mismatch is asked again, never trusted
    (nor failed) on that answer alone."""
    files: dict[str, bytes] = {"/in/.dir": b""}
    rules = rules_for(files)
    size = rules["SIZE"]
    assert callable(size)

    def stale_once(server: ScriptedFtpServer, arg: str) -> Reply:
        if arg.endswith(".ferryman-part") and not server.state.get("stale"):
            server.state["stale"] = True
            return "213 7"
        return size(server, arg)

    with ScriptedFtpServer({**rules, "SIZE": stale_once}) as server:
        with backend_for(server).connect() as ftp:
            assert upload(ftp, tmp_path, "a.bin", b"q" * 500) == "size"
            assert host_facts(server.host, server.port).size_after_226 is False
    assert files["/in/a.bin"] == b"q" * 500
    assert [v for v in verbs(server) if v in ("STOR", "SIZE", "RNFR")][-4:] == [
        *["STOR", "SIZE", "SIZE", "RNFR"],
    ]
