"""Servers that refuse what their FEAT advertises (issue 12, item 1): scripted dialogues.

FTP proxies and gateways forward the FEAT of the server behind them, and administrators
disable commands per user; such a server lists MLST, SIZE, HASH... and answers ``500``/``502``.
Each refusal is a fact about the server, kept on its :class:`ServerQuirks` (shared with sibling
connections), noted once in the transcript, and the backend learns the same thing another way.
Only 500, 501 "not understood", 502 and 504 mean "not supported"; a 550 is about the path.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from ferryman.backends.base import EntryType, NotSupportedError
from ferryman.backends.ftp import FtpBackend
from ferryman.backends.ftp.quirks import means_unsupported
from ferryman.cli import cli
from ferryman.connection import FtpConnection
from ferryman.errors import NotFoundError, ProtocolError, ResumeRefusedError, TLSError
from tests.servers.scripted import Rule, ScriptedFtpServer, multiline
from tests.servers.scripted_files import file_rules

from .conftest import Served, ServerFactory

pytestmark = pytest.mark.timeout(30)

PASSWORD = "pw-for-refusals"
ENV = {"FM_PW": PASSWORD}
REFUSALS = [
    "500 Unknown command.",
    "501 Command not understood.",
    "502 Command not implemented.",
    "504 Command not implemented for that parameter.",
]
#: everything optional a server may advertise
FEAT_ALL = multiline(
    "211",
    [
        "Features:",
        " EPSV",
        " HASH SHA-256*;MD5",
        " MDTM",
        " MFMT",
        " MLST type*;size*;modify*;",
        " REST STREAM",
        " SIZE",
        " UTF8",
        " XSHA256",
    ],
    "End",
)
REFUSED_VERBS = ["EPSV", "HASH", "MDTM", "MFMT", "MLST", "MLSD", "OPTS", "REST", "SIZE", "XSHA256"]


def refusing_everything(
    files: dict[str, bytes], refusal: str = "502 Not here.", verbs: list[str] = REFUSED_VERBS
) -> ScriptedFtpServer:
    """A server advertising every optional command (FEAT_ALL) and refusing ``verbs``."""
    rules: dict[str, Rule | list[Rule]] = {**file_rules(files), "FEAT": FEAT_ALL}
    rules.update({verb: refusal for verb in verbs})
    return ScriptedFtpServer(rules, timeout=5, connections=8)


#: each optional command refused alone, then all of them at once
EACH = [[verb] for verb in REFUSED_VERBS] + [REFUSED_VERBS]
EACH_IDS = [*REFUSED_VERBS, "all"]


def backend_for(server: ScriptedFtpServer) -> FtpBackend:
    conn = FtpConnection.model_validate(
        {
            "host": server.host,
            "port": server.port,
            "user": "bob",
            "password": SecretStr(PASSWORD),
            "tls": "none",
            "timeout": 5,
            "retries": 0,
            "use_netrc": False,
            "use_keyring": False,
        }
    )
    return FtpBackend(conn)


def sent(server: ScriptedFtpServer, verb: str) -> int:
    return sum(1 for command in server.commands if command.split(" ", 1)[0] == verb)


@pytest.fixture
def transcript(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    monkeypatch.setattr(logging.getLogger("ferryman"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="ferryman.wire")
    return caplog


def notes(caplog: pytest.LogCaptureFixture, command: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if f"{command} advertised but refused" in r.getMessage()
    ]


# ---------------------------------------------------------------------------------------------
# what counts as "not supported"


@pytest.mark.parametrize(
    ("reply", "unsupported"),
    [
        *[(reply, True) for reply in REFUSALS],
        ("501 Syntax error in parameters or arguments.", False),
        ("550 No such file or directory.", False),
        ("421 Service not available.", False),
        ("450 Try again.", False),
    ],
)
def test_only_500_502_504_and_a_501_not_understood_mean_unsupported(
    reply: str, unsupported: bool
) -> None:
    assert means_unsupported(int(reply[:3]), reply) is unsupported


# ---------------------------------------------------------------------------------------------
# stat: MLST -> SIZE + MDTM -> a LIST of the parent


@pytest.mark.parametrize("refusal", REFUSALS)
def test_mlst_refused_falls_back_to_size_and_mdtm_and_is_remembered(
    refusal: str, transcript: pytest.LogCaptureFixture
) -> None:
    files = {"/in/a.csv": b"abc"}
    rules: dict[str, Rule | list[Rule]] = {
        **file_rules(files),
        "FEAT": FEAT_ALL,
        "MLST": refusal,
        "MDTM": "213 20240102030405",
    }
    with ScriptedFtpServer(rules, timeout=5, connections=2) as server:
        with backend_for(server) as ftp:
            for _ in range(2):
                entry = ftp.stat("/in/a.csv")
                assert (entry.name, entry.type, entry.size) == ("a.csv", EntryType.FILE, 3)
                assert entry.mtime is not None and entry.mtime.year == 2024
            assert ftp.quirks.refused("MLST")
            assert ftp.capabilities.mtime_precision == 1  # MDTM still gives seconds
        with ftp.sibling() as sibling:  # shares what was learned: no MLST at all
            assert sibling.quirks is ftp.quirks
            assert sibling.stat("/in/a.csv").size == 3
    assert sent(server, "MLST") == 1
    assert sent(server, "SIZE") == 3
    assert len(notes(transcript, "MLST")) == 1


def test_mlst_and_size_refused_fall_back_to_a_listing_of_the_parent() -> None:
    files = {"/in/a.csv": b"abcdef", "/in/sub/b.csv": b"x"}
    with refusing_everything(files) as server, backend_for(server) as ftp:
        entry = ftp.stat("/in/a.csv")
        assert (entry.name, entry.type, entry.size) == ("a.csv", EntryType.FILE, 6)
        assert ftp.stat("/in/sub").type is EntryType.DIR
        with pytest.raises(NotFoundError):
            ftp.stat("/in/nope.csv")
        assert ftp.size("/in/a.csv") == 6  # SIZE known refused: not asked again, a listing
    assert sent(server, "MLST") == 1 and sent(server, "SIZE") == 1
    assert sent(server, "MLSD") == 1 and sent(server, "EPSV") == 1
    assert set(ftp.quirks.findings()) >= {"MLST", "SIZE", "MLSD", "EPSV", "OPTS UTF8"}


def test_550_to_mlst_is_not_found_and_nothing_is_remembered() -> None:
    rules: dict[str, Rule | list[Rule]] = {"FEAT": FEAT_ALL, "MLST": "550 No such file."}
    with ScriptedFtpServer(rules, timeout=5) as server, backend_for(server) as ftp:
        with pytest.raises(NotFoundError):
            ftp.stat("/in/a.csv")
    assert not ftp.quirks.findings()
    assert sent(server, "SIZE") == 0


def test_501_bad_arguments_to_mlst_is_an_error_not_a_refusal() -> None:
    rules: dict[str, Rule | list[Rule]] = {
        "FEAT": FEAT_ALL,
        "MLST": "501 Syntax error in parameters or arguments.",
    }
    with ScriptedFtpServer(rules, timeout=5) as server, backend_for(server) as ftp:
        with pytest.raises(ProtocolError):
            ftp.stat("/in/a.csv")
    assert not ftp.quirks.refused("MLST")


# ---------------------------------------------------------------------------------------------
# hashes, MFMT, REST


def test_hash_refused_uses_the_x_command_then_nothing() -> None:
    digest = "a" * 64
    rules: dict[str, Rule | list[Rule]] = {
        "FEAT": FEAT_ALL,
        "HASH": "502 Not here.",
        "XSHA256": [f"250 {digest}", "500 Unknown command."],
    }
    with ScriptedFtpServer(rules, timeout=5) as server, backend_for(server) as ftp:
        assert "sha256" in ftp.connect().capabilities.hashes
        assert ftp.hash("/a.csv", "sha256") == digest  # HASH refused, XSHA256 answers
        with pytest.raises(NotSupportedError):
            ftp.hash("/a.csv", "sha256")  # XSHA256 refused too
        assert "sha256" not in ftp.capabilities.hashes
    assert sent(server, "HASH") == 1 and sent(server, "XSHA256") == 2


def test_mfmt_refused_is_not_supported_and_remembered() -> None:
    rules: dict[str, Rule | list[Rule]] = {"FEAT": FEAT_ALL, "MFMT": "500 Unknown command."}
    with ScriptedFtpServer(rules, timeout=5) as server, backend_for(server) as ftp:
        assert ftp.connect().capabilities.set_mtime
        with pytest.raises(NotSupportedError):
            ftp.set_mtime("/a.csv", datetime(2024, 1, 2, tzinfo=UTC))
        assert not ftp.capabilities.set_mtime
    assert sent(server, "MFMT") == 1


def test_rest_refused_on_a_read_is_a_resume_refusal() -> None:
    files = {"/a.csv": b"0123456789"}
    rules: dict[str, Rule | list[Rule]] = {**file_rules(files), "REST": "502 Not here."}
    with ScriptedFtpServer(rules, timeout=5) as server, backend_for(server) as ftp:
        with pytest.raises(ResumeRefusedError):
            ftp.open_read("/a.csv", 4)
        assert not ftp.capabilities.resume_read
        with ftp.open_read("/a.csv") as stream:
            assert stream.read() == files["/a.csv"]
    assert "RETR /a.csv" in server.commands


# ---------------------------------------------------------------------------------------------
# the command line: get, put, ls, sync and test on a server that refuses everything optional


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def url(server: ScriptedFtpServer, path: str = "/") -> str:
    return f"ftp://bob@{server.host}:{server.port}{path}"


COMMON = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "5"]


@pytest.mark.parametrize("verbs", EACH, ids=EACH_IDS)
def test_get_from_a_server_refusing(verbs: list[str], tmp_path: Path) -> None:
    files = {"/in/a.csv": b"a,b\n1,2\n"}
    with refusing_everything(files, verbs=verbs) as server:
        result = invoke("get", url(server, "/in/a.csv"), tmp_path, "-P", "1", *COMMON)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.csv").read_bytes() == files["/in/a.csv"]
    for verb in verbs:
        assert sent(server, verb) <= 1  # asked at most once, then remembered


@pytest.mark.parametrize("verbs", EACH, ids=EACH_IDS)
def test_put_to_a_server_refusing(verbs: list[str], tmp_path: Path) -> None:
    files = {"/in/old.csv": b"x"}
    (tmp_path / "b.csv").write_bytes(b"payload\n")
    with refusing_everything(files, verbs=verbs) as server:
        result = invoke(
            "put", tmp_path / "b.csv", url(server, "/in/"), "-P", "1", "--preserve-mtime", *COMMON
        )
    assert result.exit_code == 0, result.output
    assert files["/in/b.csv"] == b"payload\n"
    assert not [path for path in files if "ferryman-part" in path]


def test_ls_of_a_server_refusing_everything() -> None:
    files = {"/in/a.csv": b"abc", "/in/sub/b.csv": b"x"}
    with refusing_everything(files) as server:
        result = invoke("ls", url(server, "/in/"), *COMMON)
    assert result.exit_code == 0, result.output
    assert "a.csv" in result.output and "sub" in result.output


def test_sync_from_a_server_refusing_everything(tmp_path: Path) -> None:
    files = {"/in/a.csv": b"abc", "/in/b.csv": b"defg"}
    with refusing_everything(files) as server:
        result = invoke("sync", url(server, "/in/"), tmp_path, "-P", "1", *COMMON)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.csv").read_bytes() == b"abc"
    assert (tmp_path / "b.csv").read_bytes() == b"defg"


def test_ferryman_test_reports_advertised_but_refused() -> None:
    with refusing_everything({"/a.csv": b"abc"}) as server:
        result = invoke("test", url(server), *COMMON)
    assert result.exit_code == 0, result.output
    finding = next(line for line in result.output.splitlines() if "advertised but refused" in line)
    for command in ("MLST", "SIZE", "MDTM", "HASH", "XSHA256", "MFMT", "EPSV", "REST"):
        assert command in finding


def test_a_retry_after_a_drop_resumes_with_rest_although_mlst_is_refused(tmp_path: Path) -> None:
    # before the fallback, the refused MLST made the resume point unknown: every retry
    # started from byte 0; now SIZE tells the source is unchanged and REST continues
    payload = bytes(range(256)) * 400
    files = {"/in/big.bin": payload}
    half = len(payload) // 2

    def drop_half_way(server: ScriptedFtpServer, _arg: str) -> str:
        server.reply("150 Opening BINARY mode data connection.")
        server.send_data(payload[:half])
        return "426 Connection closed; transfer aborted."

    base = file_rules(files)
    rules: dict[str, Rule | list[Rule]] = {
        **base,
        "FEAT": FEAT_ALL,
        "MLST": "500 Unknown command.",
        "RETR": [drop_half_way, base["RETR"]],  # the first one drops half-way
    }
    with ScriptedFtpServer(rules, timeout=10, connections=4) as server:
        result = invoke(
            "get", url(server, "/in/big.bin"), tmp_path, "-P", "1", *COMMON[:2], "--retries", "1"
        )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "big.bin").read_bytes() == payload
    assert f"REST {half}" in server.commands
    assert sent(server, "RETR") == 2 and sent(server, "MLST") == 1


# ---------------------------------------------------------------------------------------------
# PBSZ (RFC 4217): the in-process pyftpdlib server with PBSZ disabled, as an administrator
# would; the scripted dialogues speak no TLS


def _refuse_pbsz(served: Served, *, then_allow_prot: bool) -> None:
    handler = served.server._server.handler  # this server's own handler class

    def ftp_pbsz(self: Any, _line: str) -> None:
        self.respond("502 Command not implemented.")
        self._pbsz = then_allow_prot  # whether PROT P is accepted without PBSZ

    handler.ftp_PBSZ = ftp_pbsz


def test_pbsz_refused_then_prot_p_accepted_keeps_data_protected(
    ftp_server: ServerFactory,
) -> None:
    served = ftp_server("explicit")
    (served.root / "a.csv").write_bytes(b"abc")
    _refuse_pbsz(served, then_allow_prot=True)
    with FtpBackend(served.connection()) as ftp:
        assert [entry.name for entry in ftp.list("/")] == ["a.csv"]
        assert ftp.quirks.refused("PBSZ")
        session = ftp.session_or_raise()
        assert session.data_sessions_resumed == [True]  # the listing came over TLS


def test_pbsz_refused_and_prot_p_refused_ends_the_session(ftp_server: ServerFactory) -> None:
    served = ftp_server("explicit")
    _refuse_pbsz(served, then_allow_prot=False)
    with FtpBackend(served.connection()) as ftp, pytest.raises(TLSError) as info:
        ftp.connect()
    assert "protect data connections" in info.value.message
