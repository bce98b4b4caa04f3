"""FtpBackend against scripted FTP dialogues: protocol quirks that no real server here shows.

Every test runs plain FTP (``tls="none"``) against :class:`ScriptedFtpServer` on 127.0.0.1 and
checks both what the backend returns or raises and what it sent (``server.commands``).
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from ferryman.backends.base import Entry, EntryType
from ferryman.backends.ftp import FtpBackend
from ferryman.connection import FtpConnection
from ferryman.errors import (
    AuthenticationError,
    ConnectError,
    ExitCode,
    FerrymanError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RemoteError,
    TLSError,
    TransferError,
)
from tests.servers.scripted import (
    CLOSE,
    Reply,
    Rule,
    ScriptedFtpServer,
    epsv,
    multiline,
    pasv,
    transfer_in,
    transfer_out,
)

pytestmark = pytest.mark.timeout(30)

USER = "bob"
PASSWORD = "pw-for-quirks"
LOGIN = ["USER bob", f"PASS {PASSWORD}", "FEAT", "TYPE I", "OPTS UTF8 ON"]
LOOPBACK = "127.0.0.1"
FOREIGN = "10.1.2.3"

Rules = dict[str, Rule | list[Rule]]

UNIX_LIST = (
    b"total 16\r\n"
    b"drwxr-xr-x    2 ftp      ftp          4096 Nov 23 05:06 archive\r\n"
    b"-rw-r--r--    1 ftp      ftp          1234 Nov 23  2025 orders 1.csv\r\n"
    b"-rw-r-----    1 ftp      ftp             7 Jan  2  2024 two  spaces .txt\r\n"
    b"lrwxrwxrwx    1 ftp      ftp            12 Nov 23 05:06 latest -> orders 1.csv\r\n"
)


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def wire_warnings(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """caplog at WARNING for ``ferryman.wire``; ``configure_logging`` (called by other tests)
    turns off propagation of the ``ferryman`` logger, which would hide the records."""
    monkeypatch.setattr(logging.getLogger("ferryman"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="ferryman.wire")
    return caplog


#: FEAT of a server with MLSD: RFC 3659 section 7.8 (the MLST feature stands for MLST and
#: MLSD); without it ferryman lists with LIST and never tries MLSD (issue 19)
FEAT_MLSD = multiline("211", ["Features:", " EPSV", " PASV", " UTF8", " MLST type*;size*;"], "End")


def scripted(rules: Rules | None = None, **options: object) -> ScriptedFtpServer:
    """A scripted server; one with an MLSD rule advertises it (``FEAT_MLSD``) unless the
    rules give their own FEAT."""
    if rules is not None and "MLSD" in rules and "FEAT" not in rules:
        rules = {**rules, "FEAT": FEAT_MLSD}
    return ScriptedFtpServer(rules, timeout=5, **options)  # type: ignore[arg-type]


def backend_for(server: ScriptedFtpServer, **overrides: object) -> FtpBackend:
    fields: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": USER,
        "password": SecretStr(PASSWORD),
        "tls": "none",
        "timeout": 5,
        "retries": 0,
        "use_netrc": False,
        "use_keyring": False,
        **overrides,
    }
    return FtpBackend(FtpConnection.model_validate(fields))


def verbs(server: ScriptedFtpServer) -> list[str]:
    return [command.split(" ", 1)[0] for command in server.commands]


def read_all(backend: FtpBackend, path: str) -> bytes:
    with backend.open_read(path) as stream:
        data = bytearray()
        while chunk := stream.read(1 << 16):
            data += chunk
    return bytes(data)


def by_name(entries: list[Entry]) -> dict[str, Entry]:
    return {entry.name: entry for entry in entries}


# ---------------------------------------------------------------------------------------------
# 1. TLS session-reuse refusals where the 150 would come


REUSE_REFUSALS = [
    "522 SSL connection failed: session reuse required",
    "425 Unable to build data connection: TLS session of data connection not resumed.",
]


@pytest.mark.parametrize("reply", REUSE_REFUSALS, ids=["522", "425"])
def test_session_reuse_refusal_of_retr_is_a_tls_error(reply: str) -> None:
    with scripted({"RETR": reply}) as server, backend_for(server) as ftp:
        with pytest.raises(TLSError) as info:
            ftp.open_read("/in/a.csv")
        assert not ftp.busy
    error = info.value
    assert type(error) is TLSError
    assert not error.retriable
    assert error.exit_code == ExitCode.TLS
    assert error.reply_code == int(reply[:3])
    assert error.reply_text == reply
    assert reply in error.message and "RETR /in/a.csv" in error.message
    assert "session reuse" in (error.hint or "")
    assert server.commands == [*LOGIN, "EPSV", "RETR /in/a.csv", "QUIT"]


@pytest.mark.parametrize("reply", REUSE_REFUSALS, ids=["522", "425"])
def test_session_reuse_refusal_of_list_is_a_tls_error(reply: str) -> None:
    with scripted({"LIST": reply}) as server, backend_for(server, use_mlsd=False) as ftp:
        with pytest.raises(TLSError) as info:
            ftp.list("/in")
    assert not info.value.retriable
    assert (info.value.reply_code, info.value.reply_text) == (int(reply[:3]), reply)
    assert reply in str(info.value)
    assert server.commands == [*LOGIN, "EPSV", "LIST /in", "QUIT"]


def test_session_reuse_refusal_of_mlsd_is_not_taken_for_a_missing_mlsd() -> None:
    # a TLS refusal must not be mistaken for "MLSD unsupported" (no LIST fallback, nothing
    # remembered)
    reply = REUSE_REFUSALS[0]
    with scripted({"MLSD": reply}) as server, backend_for(server) as ftp:
        with pytest.raises(TLSError):
            ftp.list("/")
    assert server.commands == [*LOGIN, "EPSV", "MLSD /", "QUIT"]
    assert not ftp.quirks.findings()


# ---------------------------------------------------------------------------------------------
# 2. EPSV refused: PASV fallback, remembered


@pytest.mark.parametrize(
    "refusal", ["500 'EPSV': command not understood.", "502 Command not implemented."]
)
def test_epsv_refused_falls_back_to_pasv_and_remembers(refusal: str) -> None:
    rules: Rules = {
        "EPSV": refusal,
        "MLSD": transfer_out(b"type=file;size=3;modify=20240102030405; a.csv\r\n"),
    }
    with scripted(rules, connections=2) as server:
        with backend_for(server) as ftp:
            for _ in range(2):
                (entry,) = ftp.list("/")
                assert (entry.name, entry.type, entry.size) == ("a.csv", EntryType.FILE, 3)
                assert entry.mtime == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
            assert ftp.quirks.refused("EPSV")
        # a sibling connection to the same server remembers it too (one at a time here)
        with ftp.sibling() as again:
            assert [e.name for e in again.list("/")] == ["a.csv"]
    session = [*LOGIN, "EPSV", "PASV", "MLSD /", "PASV", "MLSD /", "QUIT"]
    assert server.commands == [*session, *LOGIN, "PASV", "MLSD /", "QUIT"]
    assert verbs(server).count("EPSV") == 1


def test_epsv_refused_with_a_temporary_error_is_not_remembered() -> None:
    # 4xx is "try again later", not "unsupported": no fallback, nothing remembered
    with scripted({"EPSV": "421 Service not available."}) as server:
        with backend_for(server) as ftp, pytest.raises(ConnectError) as info:
            ftp.list("/")
    assert info.value.retriable and info.value.reply_code == 421
    assert "PASV" not in verbs(server)
    assert not ftp.quirks.refused("EPSV")


# ---------------------------------------------------------------------------------------------
# 3. MLSD refused: LIST fallback, remembered


def test_mlsd_refused_falls_back_to_list_and_remembers() -> None:
    rules: Rules = {"MLSD": "500 Unknown command.", "LIST": transfer_out(UNIX_LIST)}
    with scripted(rules) as server, backend_for(server) as ftp:
        first = by_name(ftp.list("/in"))
        second = by_name(ftp.list("/in"))
    assert first == second
    assert sorted(first) == ["archive", "latest", "orders 1.csv", "two  spaces .txt"]
    archive, orders = first["archive"], first["orders 1.csv"]
    assert (archive.type, archive.size, archive.permissions) == (
        EntryType.DIR,
        4096,
        "rwxr-xr-x",
    )
    assert (orders.type, orders.size, orders.link_target) == (EntryType.FILE, 1234, None)
    assert orders.mtime == datetime(2025, 11, 23, tzinfo=UTC)
    spaced = first["two  spaces .txt"]
    assert (spaced.type, spaced.size, spaced.permissions) == (EntryType.FILE, 7, "rw-r-----")
    latest = first["latest"]
    assert (latest.type, latest.link_target) == (EntryType.LINK, "orders 1.csv")
    assert latest.facts is not None and latest.facts.get("unix.owner") == "ftp"
    assert ftp.quirks.refused("MLSD")
    assert server.commands == [
        *LOGIN,
        "EPSV",
        "MLSD /in",
        "EPSV",
        "LIST /in",
        "EPSV",
        "LIST /in",
        "QUIT",
    ]


def test_mlsd_refused_and_an_empty_listing_checks_the_directory() -> None:
    rules: Rules = {
        "MLSD": "502 Command not implemented.",
        "LIST": transfer_out(b""),
        "CWD": ["550 No such directory.", "250 ok"],
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        with pytest.raises(NotFoundError):
            ftp.list("/nope")
    assert server.commands == [
        *LOGIN,
        "EPSV",
        "MLSD /nope",
        "EPSV",
        "LIST /nope",
        "PWD",  # the login directory: to come back to, and for the hint (asked once)
        "CWD /nope",
        "CWD /",  # sent with the CWD before it on a server that pipelines (issue 19)
        "QUIT",
    ]


# ---------------------------------------------------------------------------------------------
# 4. FEAT


FEAT_FEATURES = {
    "MDTM": "",
    "MLST": "Type*;Size*;Modify*;",
    "UTF8": "",
    "REST": "STREAM",
    "SIZE": "",
    "MFMT": "",
}


@pytest.mark.parametrize(
    "lines",
    [
        [" MDTM", " MLST Type*;Size*;Modify*;", " UTF8", " REST STREAM", " SIZE", " MFMT"],
        ["MDTM", "MLST Type*;Size*;Modify*;", "UTF8", "REST STREAM", "SIZE", "MFMT"],
        [" mdtm", "  Mlst Type*;Size*;Modify*;", "utf8", " rest STREAM", "Size", " mFMT "],
    ],
    ids=["rfc-spaces", "no-spaces", "mixed-case"],
)
def test_multiline_feat_is_parsed_and_utf8_turned_on(lines: list[str]) -> None:
    feat = multiline(211, ["Extensions supported:", *lines], "End.")
    with scripted({"FEAT": feat}) as server, backend_for(server) as ftp:
        ftp.connect()
        assert ftp.session is not None
        assert ftp.session.features == FEAT_FEATURES
        assert ftp.capabilities.set_mtime and ftp.capabilities.mtime_precision == 1
    assert server.commands == [*LOGIN, "QUIT"]  # OPTS UTF8 ON right after FEAT


def test_feat_without_utf8_sends_no_opts() -> None:
    feat = multiline(211, ["Features:", " SIZE", " PASV"], "End")
    with scripted({"FEAT": feat}) as server, backend_for(server) as ftp:
        ftp.connect()
        assert ftp.session is not None and ftp.session.features == {"SIZE": "", "PASV": ""}
        assert ftp.capabilities.mtime_precision == 60 and not ftp.capabilities.set_mtime
    assert server.commands == ["USER bob", f"PASS {PASSWORD}", "FEAT", "TYPE I", "QUIT"]


@pytest.mark.parametrize("refusal", ["500 FEAT not understood.", "502 Command not implemented."])
def test_feat_refused_still_works(refusal: str) -> None:
    rules: Rules = {"FEAT": refusal, "MLSD": transfer_out(b"type=dir; sub\r\n")}
    with scripted(rules) as server, backend_for(server) as ftp:
        entries = ftp.list("/")
        assert ftp.session is not None and ftp.session.features == {}
    assert [(e.name, e.type) for e in entries] == [("sub", EntryType.DIR)]
    assert server.commands == [
        "USER bob",
        f"PASS {PASSWORD}",
        "FEAT",
        "TYPE I",
        "EPSV",
        "MLSD /",
        "QUIT",
    ]


def test_opts_utf8_refused_still_works() -> None:
    rules: Rules = {"OPTS": "501 Option not understood.", "MKD": '257 "/d" created'}
    with scripted(rules) as server, backend_for(server) as ftp:
        ftp.mkdir("/d")
    assert server.commands == [*LOGIN, "MKD /d", "QUIT"]


# ---------------------------------------------------------------------------------------------
# 5. DOS/IIS listings


def test_dos_iis_listing_via_list() -> None:
    listing = (
        b"11-23-26  05:06AM       <DIR>          archive\r\n"
        b"11-23-2026  01:15PM   1234 orders 1.csv\r\n"
        b"01-02-99  12:00AM                    5 midnight.txt\r\n"
        b"01-02-99  12:30PM                    0 noon.txt\r\n"
    )
    rules: Rules = {
        "MLSD": "500 'MLSD': command not understood",
        # IIS says 125 where others say 150
        "LIST": transfer_out(listing, start="125 Data connection already open; Transfer starting."),
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        entries = by_name(ftp.list("/"))
    assert sorted(entries) == ["archive", "midnight.txt", "noon.txt", "orders 1.csv"]
    archive = entries["archive"]
    assert (archive.type, archive.size) == (EntryType.DIR, None)
    assert archive.mtime == datetime(2026, 11, 23, 5, 6, tzinfo=UTC)
    orders = entries["orders 1.csv"]
    assert (orders.type, orders.size) == (EntryType.FILE, 1234)
    assert orders.mtime == datetime(2026, 11, 23, 13, 15, tzinfo=UTC)
    assert entries["midnight.txt"].mtime == datetime(1999, 1, 2, 0, 0, tzinfo=UTC)
    assert entries["noon.txt"].mtime == datetime(1999, 1, 2, 12, 30, tzinfo=UTC)
    assert (entries["noon.txt"].size, entries["noon.txt"].mtime_precision) == (0, 60)
    assert server.commands == [*LOGIN, "EPSV", "MLSD /", "EPSV", "LIST /", "QUIT"]


# ---------------------------------------------------------------------------------------------
# 6. PASV with a foreign address


@pytest.mark.parametrize("how", ["use_epsv=False", "EPSV refused"])
def test_pasv_foreign_address_is_ignored_and_logged(
    how: str, wire_warnings: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialed: list[tuple[str, int]] = []
    real_create_connection = socket.create_connection

    def spy(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        dialed.append(address)
        if address[0] != LOOPBACK:
            raise AssertionError(f"the client dialed {address}")
        return real_create_connection(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", spy)
    rules: Rules = {
        "PASV": pasv(advertise=FOREIGN),
        "EPSV": "502 Command not implemented.",
        "MLSD": transfer_out(b"type=file;size=2; x.csv\r\n"),
    }
    overrides = {"use_epsv": False} if how == "use_epsv=False" else {}
    with scripted(rules) as server, backend_for(server, **overrides) as ftp:
        assert [(e.name, e.size) for e in ftp.list("/")] == [("x.csv", 2)]
    assert [host for host, _port in dialed] == [LOOPBACK, LOOPBACK]  # control, then data
    expected_data = ["PASV", "MLSD /"] if overrides else ["EPSV", "PASV", "MLSD /"]
    assert server.commands == [*LOGIN, *expected_data, "QUIT"]
    warnings = [
        r.getMessage()
        for r in wire_warnings.records
        if r.name == "ferryman.wire" and r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1, warnings
    assert f"PASV address {FOREIGN} ignored" in warnings[0]
    assert LOOPBACK in warnings[0]


def test_pasv_with_the_control_address_logs_no_warning(
    wire_warnings: pytest.LogCaptureFixture,
) -> None:
    rules: Rules = {"MLSD": transfer_out(b"type=file;size=2; x.csv\r\n")}
    with scripted(rules) as server, backend_for(server, use_epsv=False) as ftp:
        assert [e.name for e in ftp.list("/")] == ["x.csv"]
    assert server.commands == [*LOGIN, "PASV", "MLSD /", "QUIT"]
    assert not [r for r in wire_warnings.records if r.name == "ferryman.wire"]


# ---------------------------------------------------------------------------------------------
# 7. hostile replies


def _endless_multiline(code: int, lines: int = 5000) -> Callable[[ScriptedFtpServer, str], Reply]:
    """A multi-line reply of ``lines`` continuation lines and no closing line."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        try:
            server.reply(f"{code}-Here it comes\r\n".encode() + b" more\r\n" * lines)
        except OSError:
            pass  # the client gave up reading and closed the connection
        return None  # never the closing "NNN " line

    return rule


# A plain-string QUIT: after a hostile reply the client may hang up before reading the 221,
# which the default QUIT rule (a callable) would report as a failure of the script.
HOSTILE_QUIT: Rules = {"QUIT": "221 Goodbye."}
HOSTILE_REPLIES: dict[str, tuple[Rule, str]] = {
    "over-long line": ("257 " + "y" * 9000, "reply line longer than 8192 characters"),
    "endless multi-line": (_endless_multiline(257), "multi-line reply longer than 2000 lines"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_REPLIES))
def test_hostile_reply_is_a_protocol_error(kind: str) -> None:
    rule, message = HOSTILE_REPLIES[kind]
    with scripted({**HOSTILE_QUIT, "MKD": rule}) as server, backend_for(server) as ftp:
        with pytest.raises(ProtocolError, match=message) as info:
            ftp.mkdir("/d")
        assert isinstance(info.value, FerrymanError) and not info.value.retriable
    assert server.commands[: len(LOGIN) + 1] == [*LOGIN, "MKD /d"]


@pytest.mark.parametrize("kind", sorted(HOSTILE_REPLIES))
def test_hostile_reply_does_not_desynchronise_the_session(kind: str) -> None:
    rules: Rules = {
        **HOSTILE_QUIT,
        "MKD": HOSTILE_REPLIES[kind][0],
        "DELE": "550 No such file or directory.",
    }
    with scripted(rules, connections=2) as server, backend_for(server) as ftp:
        with pytest.raises(ProtocolError):
            ftp.mkdir("/d")
        with pytest.raises(NotFoundError) as info:  # the reply to DELE, not the leftover
            ftp.remove("/x.csv")
    assert info.value.reply_text == "550 No such file or directory."


def test_overlong_banner_is_a_protocol_error() -> None:
    with scripted(banner="220 " + "z" * 10000) as server:
        ftp = backend_for(server)
        with pytest.raises(ProtocolError, match="longer than 8192"):
            ftp.connect()
        assert ftp.session is None
    assert server.commands == []  # nothing was sent, not even USER


def test_endless_multiline_feat_fails_the_connection_cleanly() -> None:
    with scripted({"FEAT": _endless_multiline(211)}) as server:
        ftp = backend_for(server)
        with pytest.raises(ProtocolError, match="multi-line reply longer than 2000 lines"):
            ftp.connect()
        assert ftp.session is None
    # TYPE I went with FEAT in one send (the login's pipelining probe, issue 19)
    assert server.commands == ["USER bob", f"PASS {PASSWORD}", "FEAT", "TYPE I"]


@pytest.mark.parametrize(
    "reply",
    [
        "227 Entering Passive Mode (garbage).",
        "227 Entering Passive Mode (127,0,0,1,300,7).",
        "227 Entering Passive Mode (127,0,0).",
        "200 Entering Passive Mode (127,0,0,1,4,1).",
    ],
    ids=["no-numbers", "byte-over-255", "too-few", "wrong-code"],
)
def test_malformed_pasv_reply_is_a_protocol_error(reply: str) -> None:
    rules: Rules = {"PASV": reply, "MLSD": transfer_out(b"type=file; a\r\n")}
    with scripted(rules) as server, backend_for(server, use_epsv=False) as ftp:
        with pytest.raises(ProtocolError, match="malformed PASV reply") as info:
            ftp.list("/")
        assert info.value.reply_text == reply
    assert server.commands == [*LOGIN, "PASV", "QUIT"]  # no MLSD without a data connection


MLSD_DIR = b"type=dir; d\r\n"


@pytest.mark.parametrize(
    ("rules", "first_try"),
    [
        ({"MKD": [CLOSE, '257 "/d" created']}, ["MKD /d"]),
        ({"EPSV": [CLOSE, epsv()], "MLSD": transfer_out(MLSD_DIR)}, ["EPSV"]),
        ({"MLSD": [CLOSE, transfer_out(MLSD_DIR)]}, ["EPSV", "MLSD /"]),
    ],
    ids=["MKD", "EPSV", "MLSD"],
)
def test_server_closing_the_control_connection_is_retriable_and_reconnects(
    rules: Rules, first_try: list[str]
) -> None:
    with scripted(rules, connections=2) as server, backend_for(server) as ftp:
        is_mkd = first_try == ["MKD /d"]
        action = (lambda: ftp.mkdir("/d")) if is_mkd else (lambda: ftp.list("/"))
        with pytest.raises(ConnectError) as info:
            action()
        assert info.value.retriable and info.value.exit_code == ExitCode.CONNECTION
        assert "closed the connection" in str(info.value)
        assert ftp.session is None  # dropped, not reused
        action()  # the next operation logs in afresh and succeeds
    assert server.connections_accepted == 2
    second_try = ["MKD /d"] if is_mkd else ["EPSV", "MLSD /"]
    assert server.commands == [*LOGIN, *first_try, *LOGIN, *second_try, "QUIT"]


# ---------------------------------------------------------------------------------------------
# 8. reply classification


def test_421_to_user_is_a_retriable_connect_error() -> None:
    reply = "421 Too many connections (8) from this IP"
    with scripted({"USER": reply}) as server:
        ftp = backend_for(server)
        with pytest.raises(ConnectError) as info:
            ftp.connect()
        assert ftp.session is None
    assert type(info.value) is ConnectError
    assert info.value.retriable and info.value.reply_code == 421
    assert reply in str(info.value)
    assert server.commands == ["USER bob"]


def test_421_banner_is_a_retriable_connect_error() -> None:
    with scripted(banner="421 Too many users, try again later.") as server:
        with pytest.raises(ConnectError) as info:
            backend_for(server).connect()
    assert info.value.retriable and info.value.reply_code == 421
    assert server.commands == []


def test_530_is_an_authentication_error_without_retry() -> None:
    with scripted({"PASS": "530 Login incorrect."}) as server:
        with pytest.raises(AuthenticationError) as info:
            backend_for(server).connect()
    error = info.value
    assert error.reply_code == 530 and error.reply_text == "530 Login incorrect."
    assert error.retriable is False and error.exit_code == ExitCode.AUTHENTICATION
    assert PASSWORD not in str(error) and PASSWORD not in repr(error.to_dict())
    assert server.commands == ["USER bob", f"PASS {PASSWORD}"]


def test_552_to_stor_is_a_transfer_error_without_retry() -> None:
    reply = "552 Exceeded storage allocation (for current directory or dataset)."
    with scripted({"STOR": reply}) as server, backend_for(server) as ftp:
        with pytest.raises(TransferError) as info:
            ftp.open_write("/out/big.bin")
    assert info.value.retriable is False and info.value.reply_code == 552
    assert server.commands == [*LOGIN, "EPSV", "STOR /out/big.bin", "QUIT"]


def test_552_after_the_upload_is_a_transfer_error_without_retry() -> None:
    rules: Rules = {"STOR": transfer_in(end="552 Quota exceeded.")}
    with scripted(rules) as server, backend_for(server) as ftp:
        stream = ftp.open_write("/out/big.bin")
        stream.write(b"x" * 1000)
        with pytest.raises(TransferError) as info:
            stream.close()
    assert info.value.retriable is False and info.value.reply_code == 552
    assert server.uploads == [("/out/big.bin", b"x" * 1000)]


@pytest.mark.parametrize(
    ("verb", "reply", "error", "retriable"),
    [
        ("DELE", "550 Permission denied.", PermissionDeniedError, False),
        ("RETR", "550 /a.csv: Permission denied", PermissionDeniedError, False),
        ("DELE", "550 No such file or directory.", NotFoundError, False),
        ("DELE", "450 Requested file action not taken: file busy.", RemoteError, True),
        ("RETR", "450 File unavailable, try again.", RemoteError, True),
        ("RETR", "426 Connection closed; transfer aborted.", TransferError, True),
        ("MKD", "421 Timeout (300 seconds): closing control connection.", ConnectError, True),
    ],
)
def test_refusals_are_classified(
    verb: str, reply: str, error: type[FerrymanError], retriable: bool
) -> None:
    with scripted({verb: reply}) as server, backend_for(server) as ftp:
        with pytest.raises(FerrymanError) as info:
            if verb == "RETR":
                ftp.open_read("/a.csv")
            elif verb == "MKD":
                ftp.mkdir("/d")
            else:
                ftp.remove("/a.csv")
    assert type(info.value) is error
    assert info.value.retriable is retriable
    assert (info.value.reply_code, info.value.reply_text) == (int(reply[:3]), reply)
    sent = {"RETR": ["EPSV", "RETR /a.csv"], "MKD": ["MKD /d"], "DELE": ["DELE /a.csv"]}[verb]
    if error is NotFoundError:
        sent.append("PWD")  # the login directory, for the hint (asked once)
    # a 421 drops the session: no QUIT on a closed session
    assert server.commands == [*LOGIN, *sent, *([] if error is ConnectError else ["QUIT"])]


# ---------------------------------------------------------------------------------------------
# 9. byte count of downloads


@pytest.mark.parametrize("sent", [60, 140])
def test_download_shorter_or_longer_than_announced_fails_on_close(sent: int) -> None:
    rules: Rules = {
        "RETR": transfer_out(
            b"x" * sent, start="150 Opening BINARY mode data connection for a.bin (100 bytes)."
        )
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        stream = ftp.open_read("/a.bin")
        received = bytearray()
        while chunk := stream.read(1 << 16):
            received += chunk
        assert len(received) == sent
        with pytest.raises(TransferError) as info:
            stream.close()
        assert not ftp.busy
    assert f"received {sent} bytes, but the server announced 100" in str(info.value)
    assert info.value.retriable
    assert server.commands == [*LOGIN, "EPSV", "RETR /a.bin", "QUIT"]


def test_download_of_the_announced_size_succeeds() -> None:
    payload = bytes(range(100))
    rules: Rules = {"RETR": transfer_out(payload, start="150 Opening (100 bytes).")}
    with scripted(rules) as server, backend_for(server) as ftp:
        assert read_all(ftp, "/a.bin") == payload
        assert read_all(ftp, "/a.bin") == payload  # the session stays in step
    assert server.commands == [*LOGIN, "EPSV", "RETR /a.bin", "EPSV", "RETR /a.bin", "QUIT"]


# ---------------------------------------------------------------------------------------------
# 10. names that are not UTF-8


def test_undecodable_listed_name_round_trips_as_surrogate_escape() -> None:
    listing = b"-rw-r--r--    1 ftp      ftp             4 Nov 23  2025 caf\xe9.csv\r\n"
    rules: Rules = {
        "MLSD": "500 Unknown command.",
        "LIST": transfer_out(listing),
        "RETR": transfer_out(b"data", start="150 Opening (4 bytes)."),
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        (entry,) = ftp.list("/")
        assert entry.name == "caf\udce9.csv"
        assert entry.name.encode("utf-8", "surrogateescape") == b"caf\xe9.csv"
        assert (entry.type, entry.size) == (EntryType.FILE, 4)
        assert read_all(ftp, "/" + entry.name) == b"data"
    assert server.raw_commands[-2] == b"RETR /caf\xe9.csv"  # the very bytes it listed


def test_undecodable_mlsd_name_and_reply_text_do_not_crash() -> None:
    rules: Rules = {
        "MLSD": transfer_out(b"type=file;size=1; \xff\xfe r\xe9sum\xe9.txt\r\n"),
        "DELE": b"550 \xff\xfe r\xe9sum\xe9.txt: No such file or directory.\r\n",
    }
    with scripted(rules) as server, backend_for(server) as ftp:
        (entry,) = ftp.list("/")
        assert entry.name.encode("utf-8", "surrogateescape") == b"\xff\xfe r\xe9sum\xe9.txt"
        with pytest.raises(NotFoundError) as info:
            ftp.remove("/" + entry.name)
    assert info.value.reply_code == 550
    assert server.raw_commands[-3:] == [b"DELE /\xff\xfe r\xe9sum\xe9.txt", b"PWD", b"QUIT"]


# ---------------------------------------------------------------------------------------------
# 11. active mode


_PORT_ARG = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")


def _port_rule(server: ScriptedFtpServer, arg: str) -> Reply:
    match = _PORT_ARG.fullmatch(arg)
    if match is None:
        return "501 Syntax error in PORT."
    nums = [int(n) for n in match.groups()]
    server.state["port_address"] = (".".join(map(str, nums[:4])), nums[4] * 256 + nums[5])
    return "200 PORT command successful."


def _dial_port_address(server: ScriptedFtpServer, source: str = LOOPBACK) -> socket.socket:
    host, port = server.state.pop("port_address")  # type: ignore[misc]
    if host != LOOPBACK:  # the test server never connects anywhere else
        raise AssertionError(f"PORT named {host}, not {LOOPBACK}")
    return socket.create_connection(
        (host, port), timeout=server.timeout, source_address=(source, 0)
    )


def active_out(
    data: bytes, source: str = LOOPBACK, end: str = "226 Transfer complete."
) -> Callable[[ScriptedFtpServer, str], Reply]:
    """RETR/LIST/MLSD in active mode: 150, connect to the PORT address, send, close, 226."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        server.reply("150 Opening BINARY mode data connection.")
        with _dial_port_address(server, source) as conn:
            try:
                conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # a client that refuses the connection resets it
        return end

    return rule


def active_in() -> Callable[[ScriptedFtpServer, str], Reply]:
    """STOR in active mode: 150, connect to the PORT address, read to the end, 226."""

    def rule(server: ScriptedFtpServer, arg: str) -> Reply:
        server.reply("150 Ok to send data.")
        chunks: list[bytes] = []
        with _dial_port_address(server) as conn:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        server.uploads.append((arg, b"".join(chunks)))
        return "226 Transfer complete."

    return rule


def _port_of(command: str) -> str:
    return ",".join(command.split(" ", 1)[1].split(",")[:4])


def test_active_mode_sends_port_on_loopback_and_accepts_the_data_connection() -> None:
    payload = bytes(range(256)) * 40
    rules: Rules = {
        "PORT": _port_rule,
        "MLSD": active_out(b"type=file;size=10240; data.bin\r\ntype=dir; sub\r\n"),
        "RETR": active_out(payload),
        "STOR": active_in(),
    }
    with scripted(rules) as server, backend_for(server, passive=False) as ftp:
        assert [(e.name, e.type) for e in ftp.list("/")] == [
            ("data.bin", EntryType.FILE),
            ("sub", EntryType.DIR),
        ]
        assert read_all(ftp, "/data.bin") == payload
        with ftp.open_write("/up.bin") as out:
            out.write(b"uploaded in active mode")
    assert server.uploads == [("/up.bin", b"uploaded in active mode")]
    assert verbs(server) == [
        *(c.split()[0] for c in LOGIN),
        *["PORT", "MLSD", "PORT", "RETR", "PORT", "STOR", "QUIT"],
    ]
    ports = [c for c in server.commands if c.startswith("PORT ")]
    assert len(ports) == 3 and all(_port_of(c) == "127,0,0,1" for c in ports)
    assert not {"EPSV", "PASV", "EPRT"} & set(verbs(server))


def _can_bind(address: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


@pytest.mark.skipif(not _can_bind("127.0.0.2"), reason="127.0.0.2 is not a local address here")
def test_active_mode_refuses_a_data_connection_from_another_address() -> None:
    rules: Rules = {"PORT": _port_rule, "RETR": active_out(b"evil", source="127.0.0.2")}
    with scripted(rules, connections=2) as server, backend_for(server, passive=False) as ftp:
        with pytest.raises(ProtocolError, match=r"came from 127\.0\.0\.2.*refused"):
            ftp.open_read("/a.bin")
        assert not ftp.busy
    assert verbs(server)[len(LOGIN) : len(LOGIN) + 2] == ["PORT", "RETR"]


@pytest.mark.skipif(not _can_bind("127.0.0.2"), reason="127.0.0.2 is not a local address here")
def test_active_mode_refusal_does_not_desynchronise_the_session() -> None:
    rules: Rules = {
        "PORT": _port_rule,
        "RETR": active_out(b"evil", source="127.0.0.2", end="226 Transfer complete."),
        "DELE": "550 Permission denied.",
    }
    with scripted(rules, connections=2) as server, backend_for(server, passive=False) as ftp:
        with pytest.raises(ProtocolError):
            ftp.open_read("/a.bin")
        with pytest.raises(PermissionDeniedError):  # not the stale "226" taken as success
            ftp.remove("/a.bin")


def test_auth_tls_refused_sends_no_credentials() -> None:
    with scripted({"AUTH": "500 AUTH not understood"}) as server:
        ftp = backend_for(server, tls="explicit", insecure=True)
        with pytest.raises(TLSError, match="refused AUTH TLS"):
            ftp.connect()
    assert server.commands == ["AUTH TLS"]
