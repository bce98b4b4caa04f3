"""The next transfer's EPSV asked for before it is due (issue 19, prepared.py), against scripted
dialogues: behind a download only on a server that reads commands after a transfer (learned by
a NOOP sent with the first EPSV + RETR), never on one that answers them during a transfer
(pyftpdlib's order), an EPSV answered during the transfer (ProFTPD's 450) read in step, and a
prepared port left unused (another command first, too old, the last hint wrong) handled.
Only a command carried out during a transfer (a 2xx before its 226) marks a server as one that
reads commands during transfers; one refused during it (a 450) did no harm. The
per-file counts on vsftpd, pyftpdlib and ProFTPD are in ``test_ftp_round_trips.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferryman.backends.ftp import FtpBackend, prepared
from ferryman.backends.ftp.pipelining import host_facts
from ferryman.backends.local import LocalBackend
from ferryman.transfer.copy import copy_file
from tests.servers.scripted import Reply, ScriptedFtpServer
from tests.servers.scripted import epsv as scripted_epsv

from .test_ftp_pipelining import LOGIN, backend_for, rules_for, verbs

pytestmark = pytest.mark.timeout(30)

FILES = {f"/in/{n}.csv": n.encode() * 100 for n in "abcd"}


def read_all(ftp: FtpBackend, names: str, *, follows: bool = True) -> None:
    """Download ``names`` (letters) as the engine would: each with the hint that another one
    follows, but the last."""
    for i, name in enumerate(names):
        ftp.transfers_follow(follows and i < len(names) - 1)
        with ftp.open_read(f"/in/{name}.csv") as stream:
            assert stream.read() == FILES[f"/in/{name}.csv"]
            assert stream.read() == b""


def test_a_server_that_reads_commands_after_a_transfer_gets_the_next_epsv_behind_it() -> None:
    with ScriptedFtpServer(rules_for(dict(FILES))) as server:
        with backend_for(server).connect() as ftp:
            assert ftp.capabilities.prepares_transfers
            read_all(ftp, "abcd")
            facts = host_facts(server.host, server.port)
            assert facts.commands_after_transfer is True
    assert server.commands[: len(LOGIN)] == LOGIN
    assert verbs(server) == [
        *["EPSV", "RETR"],  # EPSV alone: is its port reachable?
        *["EPSV", "RETR", "NOOP"],  # the probe: answered after the 226
        *["EPSV", "RETR", "EPSV"],  # the next port asked for behind the data
        "RETR",  # sent with the connect, no wait for a 229; the last: nothing behind it
    ]


def test_a_server_that_answers_commands_during_a_transfer_gets_nothing_behind_one() -> None:
    rules = rules_for(dict(FILES))
    retr = rules["RETR"]
    assert callable(retr)

    def early_noop(server: ScriptedFtpServer, arg: str) -> Reply:
        """As pyftpdlib: the NOOP read with EPSV + RETR is answered before the 150."""
        server.reply("200 NOOP ok.")
        return retr(server, arg)

    def noop(_server: ScriptedFtpServer, _arg: str) -> Reply:
        return None  # answered already, before the 150

    with ScriptedFtpServer({**rules, "NOOP": noop}) as server:
        with backend_for(server).connect() as ftp:
            server.set_rule("RETR", retr, early_noop, retr)  # the second one is the probe's
            read_all(ftp, "abcd")
            assert host_facts(server.host, server.port).commands_after_transfer is False
    assert verbs(server) == [
        *["EPSV", "RETR"],
        *["EPSV", "RETR", "NOOP"],  # answered before the 150: reads commands in a transfer
        *["EPSV", "RETR"],  # so EPSV + RETR as before, nothing behind a transfer
        *["EPSV", "RETR"],
    ]


def test_an_epsv_behind_answered_during_the_transfer_is_read_in_step() -> None:
    rules = rules_for(dict(FILES))
    retr, epsv = rules["RETR"], scripted_epsv()
    assert callable(retr)

    def busy(server: ScriptedFtpServer, arg: str) -> Reply:
        """As ProFTPD at times: the EPSV sent behind the data refused during the transfer."""
        end = retr(server, arg)
        server.reply("450 EPSV: data transfer in progress")
        server.state["epsv answered"] = True
        return end

    def epsv_rule(server: ScriptedFtpServer, arg: str) -> Reply:
        if server.state.pop("epsv answered", False):
            return None
        return epsv(server, arg)

    with ScriptedFtpServer({**rules, "EPSV": epsv_rule}) as server:
        facts = host_facts(server.host, server.port)
        facts.commands_after_transfer = True  # as if a probe had said so
        with backend_for(server).connect() as ftp:
            server.set_rule("RETR", retr, retr, busy, retr)
            read_all(ftp, "abcd")
            # refused during the transfer, not carried out: no harm done, nothing unlearned
            assert facts.commands_after_transfer is True
    assert verbs(server) == [
        *["EPSV", "RETR", "EPSV"],  # a, and the next port behind it
        *["RETR", "EPSV"],  # b on the prepared port, and the next one behind it
        *["RETR", "EPSV"],  # c: its EPSV answered with a 450 before the 226: none prepared
        *["EPSV", "RETR"],  # d asks anew
    ]


def test_an_upload_sends_the_next_epsv_with_rnfr_and_rnto(tmp_path: Path) -> None:
    files: dict[str, bytes] = {"/in/.dir": b""}
    with ScriptedFtpServer(rules_for(files)) as server, LocalBackend() as disk:
        with backend_for(server).connect() as ftp:
            for i, name in enumerate("xyz"):
                (tmp_path / name).write_bytes(name.encode() * 10)
                ftp.transfers_follow(i < 2)
                copy_file(disk, str(tmp_path / name), ftp, f"/in/{name}", target_checked=True)
    assert {k: v for k, v in files.items() if k != "/in/.dir"} == {
        f"/in/{n}": n.encode() * 10 for n in "xyz"
    }
    after_login = verbs(server)
    assert after_login[:5] == ["EPSV", "STOR", "SIZE", "RNFR", "RNTO"]  # the first: learning
    assert after_login[5:] == [
        *["EPSV", "STOR", "SIZE", "RNFR", "RNTO", "EPSV"],
        *["STOR", "SIZE", "RNFR", "RNTO"],  # STOR with the connect; the last: nothing behind
    ]


def test_a_prepared_port_left_unused_is_never_misread(monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedFtpServer(rules_for(dict(FILES)), connections=2, timeout=10) as server:
        with backend_for(server).connect() as ftp:
            read_all(ftp, "abc")  # learns: EPSV reachable, commands read after a transfer

            def get(name: str, follows: bool) -> None:
                ftp.transfers_follow(follows)
                with ftp.open_read(f"/in/{name}.csv") as stream:
                    assert stream.read() == FILES[f"/in/{name}.csv"]
                    assert stream.read() == b""

            get("a", True)  # the hint was wrong: a port is prepared for nothing
            assert ftp.size("/in/b.csv") == 100  # another command first: the port is dropped
            get("c", True)  # so EPSV is asked anew; another one is prepared behind c
            session = ftp.session
            monkeypatch.setattr(prepared, "PREPARED_MAX_AGE", 0.0)
            assert session is not None and session.prepared_stale()
            get("d", False)  # too old to trust: the session is replaced, not misread
            assert ftp.session is not session
    assert server.connections_accepted == 2
    assert [c.split()[0] for c in server.commands] == [
        *[c.split()[0] for c in LOGIN],
        *["EPSV", "RETR", "EPSV", "RETR", "NOOP", "EPSV", "RETR"],  # a, b (the probe), c
        *["EPSV", "RETR", "EPSV"],  # a, and a port prepared behind it
        "SIZE",
        *["EPSV", "RETR", "EPSV"],  # c asked anew, and one prepared behind it
        *[c.split()[0] for c in LOGIN],  # the stale one's session closed without a word
        *["EPSV", "RETR", "QUIT"],
    ]
