"""Protocol quirks no real server here reproduces, as scripted dialogues (plain FTP)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from ferryman.backends.base import EntryType
from ferryman.backends.ftp import FtpBackend
from ferryman.backends.ftp import backend as ftp_backend
from ferryman.backends.ftp import session as ftp_session
from ferryman.connection import FtpConnection
from ferryman.errors import (
    AuthenticationError,
    ConnectError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RemoteError,
    TLSError,
    TransferError,
)
from tests.servers.scripted import CLOSE, Rule, ScriptedFtpServer, multiline, pasv, transfer_out

UNIX_LIST = (
    b"total 8\r\n"
    b"drwxr-xr-x    2 ftp      ftp          4096 Nov 23 05:06 archive\r\n"
    b"-rw-r--r--    1 ftp      ftp          1234 Nov 23  2025 orders 1.csv\r\n"
    b"lrwxrwxrwx    1 ftp      ftp            11 Nov 23 05:06 latest -> orders 1.csv\r\n"
)


@pytest.fixture(autouse=True)
def _forget_server_quirks() -> Iterator[None]:
    """EPSV/MLSD refusals are remembered per (host, port); ports get reused between tests."""
    ftp_session._EPSV_REFUSED.clear()
    ftp_backend._MLSD_REFUSED.clear()
    yield
    ftp_session._EPSV_REFUSED.clear()
    ftp_backend._MLSD_REFUSED.clear()


def backend_for(server: ScriptedFtpServer, **overrides: object) -> FtpBackend:
    fields: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": "bob",
        "password": SecretStr("pw-pw-pw"),
        "timeout": 5,
        "use_netrc": False,
        "use_keyring": False,
        **overrides,
    }
    return FtpBackend(FtpConnection.model_validate(fields))


def scripted(rules: dict[str, Rule | list[Rule]]) -> ScriptedFtpServer:
    return ScriptedFtpServer(rules, timeout=5)


@pytest.mark.parametrize(
    "reply",
    [
        "522 SSL connection failed: session reuse required",
        "425 Unable to build data connection: TLS session of data connection not resumed.",
    ],
)
def test_session_reuse_refusals_are_tls_errors_not_retried(reply: str) -> None:
    with scripted({"RETR": reply}) as server, backend_for(server) as ftp:
        with pytest.raises(TLSError) as info:
            ftp.open_read("/a.csv")
    assert info.value.reply_text == reply and not info.value.retriable
    assert info.value.reply_code == int(reply[:3])


def test_epsv_refused_falls_back_to_pasv_and_remembers() -> None:
    rules: dict[str, Rule | list[Rule]] = {
        "EPSV": "500 EPSV not understood",
        "MLSD": transfer_out(b"type=file;size=3; a.csv\r\n"),
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        assert [e.name for e in ftp.list("/")] == ["a.csv"]
        assert [e.name for e in ftp.list("/")] == ["a.csv"]
    verbs = [c.split()[0] for c in server.commands]
    assert verbs.count("EPSV") == 1 and verbs.count("PASV") == 2


def test_mlsd_refused_falls_back_to_list_and_remembers() -> None:
    rules: dict[str, Rule | list[Rule]] = {
        "MLSD": "500 Unknown command.",
        "LIST": transfer_out(UNIX_LIST),
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        first = {e.name: e for e in ftp.list("/")}
        ftp.list("/")
    assert first["archive"].type is EntryType.DIR
    assert first["orders 1.csv"].size == 1234
    assert first["latest"].type is EntryType.LINK and first["latest"].link_target == "orders 1.csv"
    assert [c.split()[0] for c in server.commands].count("MLSD") == 1


@pytest.mark.parametrize(
    "feat",
    [
        multiline(211, ["Features:", " MDTM", " mlst type*;size*;", " UTF8", " REST STREAM"]),
        multiline(211, ["Extensions supported:", "MDTM", "MLST type*;size*;", "UTF8"]),
    ],
)
def test_multiline_feat_is_parsed_tolerantly_and_utf8_turned_on(feat: str) -> None:
    with scripted({"FEAT": feat}) as server, backend_for(server) as ftp:
        ftp.connect()
        assert ftp.session is not None
        assert {"MDTM", "MLST", "UTF8"} <= set(ftp.session.features)
        assert ftp.session.features["MLST"] == "type*;size*;"
    assert "OPTS UTF8 ON" in server.commands
    assert ftp.capabilities.mtime_precision == 1


def test_feat_refused_still_connects() -> None:
    with scripted({"FEAT": "500 FEAT not understood"}) as server, backend_for(server) as ftp:
        ftp.connect()
        assert ftp.session is not None and ftp.session.features == {}
    assert "OPTS UTF8 ON" not in server.commands


def test_dos_listing() -> None:
    listing = (
        b"11-23-26  05:06AM       <DIR>          archive\r\n"
        b"11-23-2026  01:15PM                 1234 orders 1.csv\r\n"
    )
    rules: dict[str, Rule | list[Rule]] = {
        "MLSD": "502 Command not implemented.",
        "LIST": transfer_out(listing),
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        entries = {e.name: e for e in ftp.list("/")}
    assert entries["archive"].type is EntryType.DIR
    assert entries["orders 1.csv"].size == 1234
    assert entries["orders 1.csv"].mtime is not None
    assert entries["orders 1.csv"].mtime.hour == 13


def test_pasv_foreign_address_is_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    rules: dict[str, Rule | list[Rule]] = {
        "PASV": pasv(advertise="10.1.2.3"),
        "MLSD": transfer_out(b"type=file;size=1; x\r\n"),
    }
    wire = logging.getLogger("ferryman.wire")
    wire.addHandler(caplog.handler)
    try:
        with scripted(rules) as server, backend_for(server, use_epsv=False) as ftp:
            assert [e.name for e in ftp.list("/")] == ["x"]
    finally:
        wire.removeHandler(caplog.handler)
    assert "PASV address 10.1.2.3 ignored" in caplog.text
    assert "EPSV" not in [c.split()[0] for c in server.commands]


def test_malformed_pasv_reply_is_a_protocol_error() -> None:
    rules: dict[str, Rule | list[Rule]] = {"PASV": "227 Entering Passive Mode (garbage)."}
    with scripted(rules) as server, backend_for(server, use_epsv=False) as ftp:
        with pytest.raises(ProtocolError, match="malformed PASV reply"):
            ftp.list("/")


def test_overlong_reply_line_and_endless_multiline_reply_are_refused() -> None:
    with scripted({"SYST": "215 " + "x" * 9000, "FEAT": multiline(211, ["a"] * 3000)}) as server:
        with backend_for(server) as ftp, pytest.raises(ProtocolError, match="multi-line reply"):
            ftp.connect()
    with scripted({"MKD": "257 " + "y" * 9000}) as server, backend_for(server) as ftp:
        with pytest.raises(ProtocolError, match="longer than"):
            ftp.mkdir("/d")


def test_server_closing_the_control_connection_is_retriable() -> None:
    with scripted({"MKD": CLOSE}) as server, backend_for(server) as ftp:
        with pytest.raises(ConnectError) as info:
            ftp.mkdir("/d")
    assert info.value.retriable


@pytest.mark.parametrize(
    ("verb", "reply", "error", "retriable"),
    [
        ("USER", "421 Too many connections (8) from this IP", ConnectError, True),
        ("PASS", "530 Login incorrect.", AuthenticationError, False),
        ("DELE", "550 Permission denied.", PermissionDeniedError, False),
        ("DELE", "550 No such file or directory.", NotFoundError, False),
        ("DELE", "450 File busy.", RemoteError, True),
        ("RETR", "426 Connection closed; transfer aborted.", TransferError, True),
        ("STOR", "552 Exceeded storage allocation.", TransferError, False),
    ],
)
def test_replies_are_classified(
    verb: str, reply: str, error: type[Exception], retriable: bool
) -> None:
    with scripted({verb: reply}) as server, backend_for(server) as ftp:
        with pytest.raises(error) as info:
            if verb == "RETR":
                ftp.open_read("/a")
            elif verb == "STOR":
                ftp.open_write("/a")
            else:
                ftp.remove("/a")
    assert info.value.retriable is retriable
    assert info.value.reply_code == int(reply[:3])
    assert "pw-pw-pw" not in str(info.value)


def test_short_download_fails_the_byte_count_check() -> None:
    rules: dict[str, Rule | list[Rule]] = {
        "RETR": transfer_out(b"x" * 60, start="150 Opening BINARY mode (100 bytes).")
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        stream = ftp.open_read("/a")
        while stream.read(1 << 16):
            pass
        with pytest.raises(TransferError, match="received 60 bytes, but the server announced 100"):
            stream.close()


def test_undecodable_names_survive_as_surrogate_escapes() -> None:
    rules: dict[str, Rule | list[Rule]] = {
        "MLSD": transfer_out(b"type=file;size=1; caf\xe9.csv\r\n")
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        (entry,) = ftp.list("/")
    assert entry.name.encode("utf-8", "surrogateescape") == b"caf\xe9.csv"


def test_auth_tls_refused_sends_no_credentials() -> None:
    rules: dict[str, Rule | list[Rule]] = {"AUTH": "500 AUTH not understood"}
    with scripted(rules) as server:
        ftp = backend_for(server, tls="explicit", insecure=True)
        with pytest.raises(TLSError, match="refused AUTH TLS"):
            ftp.connect()
    assert [c.split()[0] for c in server.commands] == ["AUTH"]
