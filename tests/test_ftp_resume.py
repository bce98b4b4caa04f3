"""Reads and writes at an offset (resume) against scripted dialogues: REST + RETR, REST + STOR
where the server announces ``REST STREAM``, APPE onto a checked partial file where it does not,
and the byte count after REST. (The conformance suite runs the same operations against
pyftpdlib and vsftpd, which both announce ``REST STREAM``.)"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ferryman.backends.ftp import FtpBackend
from ferryman.connection import FtpConnection
from ferryman.errors import NotFoundError, TransferError
from tests.servers.scripted import Reply, Rule, ScriptedFtpServer, multiline, transfer_in

pytestmark = pytest.mark.timeout(30)

DATA = bytes(range(256)) * 4
LOGIN = ["USER bob", "PASS pw-for-resume-tests", "FEAT", "TYPE I"]


def feat(*lines: str) -> str:
    return multiline("211", ["Features:", *(f" {line}" for line in lines), " EPSV"], "End")


def backend_for(server: ScriptedFtpServer) -> FtpBackend:
    conn = FtpConnection.model_validate(
        {
            "host": server.host,
            "port": server.port,
            "user": "bob",
            "password": SecretStr("pw-for-resume-tests"),
            "tls": "none",
            "timeout": 5,
            "retries": 0,
            "use_netrc": False,
            "use_keyring": False,
        }
    )
    return FtpBackend(conn)


def retr_from_rest(announce: str, sent: int | None = None) -> Rule:
    """RETR honouring the last REST; the 150 announces ``whole`` file or ``remaining`` bytes;
    ``sent`` cuts the data short."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        offset = int(str(server.state.pop("rest", 0)))
        size = len(DATA) if announce == "whole" else len(DATA) - offset
        server.reply(f"150 Opening BINARY mode data connection for f ({size} bytes).")
        server.send_data(DATA[offset:][:sent])
        return "226 Transfer complete."

    return rule


def rest(server: ScriptedFtpServer, arg: str) -> Reply:
    server.state["rest"] = arg
    return f"350 Restart position accepted ({arg})."


def read_all(backend: FtpBackend, path: str, offset: int) -> bytes:
    with backend.open_read(path, offset) as stream:
        data = bytearray()
        while chunk := stream.read(1 << 16):
            data += chunk
    return bytes(data)


@pytest.mark.parametrize("announce", ["whole", "remaining"])
def test_read_at_an_offset_checks_the_byte_count_either_way(announce: str) -> None:
    rules: dict[str, Rule] = {"REST": rest, "RETR": retr_from_rest(announce)}
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        assert read_all(ftp, "/f.bin", 100) == DATA[100:]
    # the default FEAT offers UTF8: OPTS UTF8 ON follows the login
    assert server.commands[len(LOGIN) + 1 :][:3] == ["EPSV", "REST 100", "RETR /f.bin"]


@pytest.mark.parametrize("announce", ["whole", "remaining"])
def test_read_at_an_offset_cut_short_fails(announce: str) -> None:
    rules: dict[str, Rule] = {"REST": rest, "RETR": retr_from_rest(announce, sent=500)}
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with pytest.raises(TransferError, match="from offset 100"):
            read_all(ftp, "/f.bin", 100)


def test_write_at_an_offset_uses_rest_and_stor_when_rest_stream_is_announced() -> None:
    rules: dict[str, Rule] = {
        "FEAT": feat("REST STREAM", "SIZE"),
        "REST": rest,
        "STOR": transfer_in(),
    }
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with ftp.open_write("/part.bin", 100) as stream:
            stream.write(DATA[100:])
    assert server.commands[len(LOGIN) :][:3] == ["EPSV", "REST 100", "STOR /part.bin"]
    assert server.uploads == [("/part.bin", DATA[100:])]


def test_write_at_an_offset_appends_after_checking_the_partial_size() -> None:
    rules: dict[str, Rule] = {
        "FEAT": feat("SIZE"),
        # the partial before APPE, then each upload's landed size (asked behind its end)
        "SIZE": ["213 100", f"213 {len(DATA)}"],
        "APPE": transfer_in(),
        "STOR": transfer_in(),
    }
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with ftp.open_write("/part.bin", 100) as stream:
            stream.write(DATA[100:])
        with ftp.open_write("/whole.bin") as stream:  # offset 0: a plain STOR
            stream.write(DATA)
    # each upload's landed size is asked behind its end, answered with the 226 (issue 19)
    assert server.commands[len(LOGIN) : -1] == [
        "SIZE /part.bin",
        "EPSV",
        "APPE /part.bin",
        "SIZE /part.bin",
        "EPSV",
        "STOR /whole.bin",
        "SIZE /whole.bin",
    ]


@pytest.mark.parametrize(
    ("size_reply", "error"),
    [("213 99", TransferError), ("213 101", TransferError), ("550 No such file.", NotFoundError)],
)
def test_append_onto_a_partial_file_of_another_size_is_refused(
    size_reply: str, error: type[Exception]
) -> None:
    rules: dict[str, Rule] = {"FEAT": feat("SIZE"), "SIZE": size_reply, "APPE": transfer_in()}
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with pytest.raises(error) as info:
            ftp.open_write("/part.bin", 100)
        assert not getattr(info.value, "retriable", True)
    assert "APPE /part.bin" not in server.commands


def test_append_without_size_support_is_sent_unchecked() -> None:
    rules: dict[str, Rule] = {"FEAT": feat("MDTM"), "APPE": transfer_in()}
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with ftp.open_write("/part.bin", 100) as stream:
            stream.write(DATA[100:])
    assert server.uploads == [("/part.bin", DATA[100:])]
    assert not any(c.startswith(("SIZE", "REST")) for c in server.commands)
