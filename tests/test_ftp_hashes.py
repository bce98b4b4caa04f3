"""Server-side hashes of the FTP backend: HASH (draft-bryan-ftpext-hash-02) and XSHA256/XSHA1/
XMD5/XCRC, against scripted dialogues (no server here implements them) and, for their absence,
against pyftpdlib and vsftpd."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from pydantic import SecretStr

from ferryman.backends.base import NotSupportedError
from ferryman.backends.ftp import FtpBackend
from ferryman.connection import FtpConnection
from ferryman.errors import NotFoundError, ProtocolError, RemoteError
from tests.servers.scripted import Reply, Rule, ScriptedFtpServer, multiline
from tests.servers.vsftpd import Vsftpd, Workdir
from tests.test_vsftpd import connection as vsftpd_connection

from .conftest import ServerFactory

pytestmark = pytest.mark.timeout(30)

DATA = b"id;amount\n1;9.99\n"
SHA256 = hashlib.sha256(DATA).hexdigest()
SHA1 = hashlib.sha1(DATA, usedforsecurity=False).hexdigest()
MD5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()
CRC32 = f"{zlib.crc32(DATA):08x}"
DIGESTS = {"sha256": SHA256, "sha1": SHA1, "md5": MD5, "crc32": CRC32}
NAMES = {"sha256": "SHA-256", "sha1": "SHA-1", "md5": "MD5", "crc32": "CRC32"}
LOGIN = ["USER bob", "PASS pw-for-hash-tests", "FEAT", "TYPE I"]
FEAT_HASH = "HASH SHA-256*;SHA-1;MD5;CRC32"


def feat(*lines: str) -> str:
    return multiline("211", ["Features:", *(f" {line}" for line in lines), " EPSV"], "End")


class HashServer:
    """A HASH rule that answers like FileZilla Server: ``213 <name> 0-<size> <hex> <path>``,
    for whichever algorithm OPTS HASH last selected (SHA-256 at first)."""

    def __init__(self, upper: bool = False) -> None:
        self.selected = "SHA-256"
        self.upper = upper

    def opts(self, _server: ScriptedFtpServer, arg: str) -> Reply:
        option, _, value = arg.partition(" ")
        if option.upper() != "HASH":
            return "200 Ok."
        algorithm = {v: k for k, v in NAMES.items()}.get(value.upper())
        if algorithm is None:
            return "501 Unknown algorithm."
        self.selected = value.upper()
        return f"200 {self.selected}"

    def hash(self, _server: ScriptedFtpServer, arg: str) -> Reply:
        algorithm = {v: k for k, v in NAMES.items()}[self.selected]
        digest = DIGESTS[algorithm].upper() if self.upper else DIGESTS[algorithm]
        return f"213 {self.selected} 0-{len(DATA)} {digest} {arg}"


def backend_for(server: ScriptedFtpServer) -> FtpBackend:
    conn = FtpConnection.model_validate(
        {
            "host": server.host,
            "port": server.port,
            "user": "bob",
            "password": SecretStr("pw-for-hash-tests"),
            "tls": "none",
            "timeout": 5,
            "retries": 0,
            "use_netrc": False,
            "use_keyring": False,
        }
    )
    return FtpBackend(conn)


def hash_rules(feature: str = FEAT_HASH, upper: bool = False) -> dict[str, Rule]:
    hasher = HashServer(upper)
    return {"FEAT": feat(feature), "OPTS": hasher.opts, "HASH": hasher.hash}


# ---------------------------------------------------------------------------------------------
# HASH


def test_hash_feature_declares_the_algorithms_strongest_first() -> None:
    with ScriptedFtpServer(hash_rules("HASH MD5;CRC32;SHA-1;SHA-256*")) as server:
        with backend_for(server).connect() as ftp:
            assert ftp.capabilities.hashes == ("sha256", "sha1", "md5", "crc32")


def test_hash_uses_the_selected_algorithm_without_opts() -> None:
    with ScriptedFtpServer(hash_rules()) as server, backend_for(server) as ftp:
        assert ftp.hash("/in/orders.csv", "sha256") == SHA256
    assert server.commands == [*LOGIN, "HASH /in/orders.csv", "QUIT"]


def test_hash_selects_another_algorithm_once_per_session() -> None:
    with ScriptedFtpServer(hash_rules(upper=True)) as server, backend_for(server) as ftp:
        assert ftp.hash("/a.csv", "md5") == MD5  # upper-case reply, lower-case result
        assert ftp.hash("/b.csv", "MD5") == MD5
        assert ftp.hash("/c.csv", "crc32") == CRC32
        assert ftp.hash("/d.csv", "SHA-256") == SHA256
    assert server.commands[len(LOGIN) : -1] == [
        "OPTS HASH MD5",
        "HASH /a.csv",
        "HASH /b.csv",
        "OPTS HASH CRC32",
        "HASH /c.csv",
        "OPTS HASH SHA-256",
        "HASH /d.csv",
    ]


def test_hash_of_a_path_with_spaces() -> None:
    path = "/in box/orders  2026 .csv"
    with ScriptedFtpServer(hash_rules()) as server, backend_for(server) as ftp:
        assert ftp.hash(path, "sha256") == SHA256
    assert f"HASH {path}" in server.commands


def test_hash_without_a_selected_algorithm_in_feat_selects_one() -> None:
    with (
        ScriptedFtpServer(hash_rules("hash sha-1 ; sha-256")) as server,
        backend_for(server) as ftp,
    ):
        assert ftp.capabilities.hashes == ()  # not connected yet
        assert ftp.hash("/a.csv", "sha256") == SHA256
        assert ftp.capabilities.hashes == ("sha256", "sha1")
    assert server.commands[len(LOGIN) : -1] == ["OPTS HASH SHA-256", "HASH /a.csv"]


def test_unknown_names_in_the_hash_feature_are_ignored() -> None:
    with ScriptedFtpServer(hash_rules("HASH SHA-3-256;BLAKE2;MD5*")) as server:
        with backend_for(server).connect() as ftp:
            assert ftp.capabilities.hashes == ("md5",)
            with pytest.raises(NotSupportedError, match="offers: md5"):
                ftp.hash("/a.csv", "sha256")
    assert "HASH /a.csv" not in server.commands


def test_hash_is_preferred_to_the_older_commands() -> None:
    rules = hash_rules()
    rules["FEAT"] = feat(FEAT_HASH, "XMD5", "XSHA256")
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        assert ftp.hash("/a.csv", "sha256") == SHA256
    assert "HASH /a.csv" in server.commands and not any(c.startswith("X") for c in server.commands)


MALFORMED_HASH = [
    pytest.param(f"213 SHA-256 0-17 {SHA256[:-1]} /a.csv", id="short"),
    pytest.param(f"213 SHA-256 0-17 {SHA256}0 /a.csv", id="long"),
    pytest.param(f"213 SHA-256 0-17 {SHA256[:-1]}g /a.csv", id="not-hex"),
    pytest.param(f"213 MD5 0-17 {MD5} /a.csv", id="other-algorithm"),
    pytest.param(f"213 SHA-256 5-17 {SHA256} /a.csv", id="partial-range"),
    pytest.param("213 SHA-256 0-17 /a.csv", id="no-digest"),
    pytest.param("213 SHA-256", id="truncated"),
    pytest.param(f"200 SHA-256 0-17 {SHA256} /a.csv", id="wrong-code"),
    pytest.param(f"213 {SHA256}", id="x-style"),
    pytest.param(f"213-SHA-256 0-17 {SHA256} /a.csv\r\n213 End", id="multiline"),
]


@pytest.mark.parametrize("reply", MALFORMED_HASH)
def test_malformed_hash_reply_is_a_protocol_error_and_the_session_goes_on(reply: str) -> None:
    rules = hash_rules()
    rules["HASH"] = [reply, f"213 SHA-256 0-17 {SHA256} /b.csv"]
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with pytest.raises(ProtocolError) as info:
            ftp.hash("/a.csv", "sha256")
        assert not info.value.retriable
        assert ftp.hash("/b.csv", "sha256") == SHA256


@pytest.mark.parametrize(
    ("reply", "error", "retriable"),
    [
        ("550 /a.csv: No such file or directory.", NotFoundError, False),
        ("450 File is busy, try again.", RemoteError, True),
        ("452 Hashing would take too long.", RemoteError, True),
        ("504 Not a regular file.", ProtocolError, False),
    ],
)
def test_hash_refusals_are_classified(
    reply: str, error: type[RemoteError], retriable: bool
) -> None:
    rules = hash_rules()
    rules["HASH"] = reply
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with pytest.raises(error) as info:
            ftp.hash("/a.csv", "sha256")
        assert info.value.retriable is retriable
        assert info.value.reply_code == int(reply[:3])


def test_opts_hash_refused_is_not_retriable_and_selects_nothing() -> None:
    rules = hash_rules()
    rules["OPTS"] = "501 Unknown algorithm."
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        for _ in range(2):
            with pytest.raises(ProtocolError) as info:
                ftp.hash("/a.csv", "md5")
            assert not info.value.retriable
    assert server.commands.count("OPTS HASH MD5") == 2
    assert "HASH /a.csv" not in server.commands


# ---------------------------------------------------------------------------------------------
# XSHA256, XSHA1, XMD5, XCRC


X_COMMANDS = {"sha256": "XSHA256", "sha1": "XSHA1", "md5": "XMD5", "crc32": "XCRC"}


@pytest.mark.parametrize("code", ["250", "213"])
@pytest.mark.parametrize("algorithm", list(X_COMMANDS))
def test_older_commands(algorithm: str, code: str) -> None:
    command = X_COMMANDS[algorithm]
    rules: dict[str, Rule] = {
        "FEAT": feat(*X_COMMANDS.values()),
        command: f"{code} {DIGESTS[algorithm].upper()}",
    }
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        assert ftp.hash("/in box/a b.csv", algorithm) == DIGESTS[algorithm]
        assert ftp.capabilities.hashes == ("sha256", "sha1", "md5", "crc32")
    assert server.commands[len(LOGIN) : -1] == [f"{command} /in box/a b.csv"]


def test_only_announced_older_commands_are_used() -> None:
    rules: dict[str, Rule] = {"FEAT": feat("XCRC", "XMD5"), "XMD5": f"250 {MD5}"}
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        assert ftp.hash("/a.csv", "md5") == MD5
        assert ftp.capabilities.hashes == ("md5", "crc32")
        with pytest.raises(NotSupportedError):
            ftp.hash("/a.csv", "sha1")
    assert "XSHA1 /a.csv" not in server.commands


MALFORMED_X = [
    pytest.param("250 /a.csv", id="path-only"),
    pytest.param(f"250 {CRC32[1:]}", id="crc-without-leading-digit"),
    pytest.param(f"250 {CRC32}0", id="too-long"),
    pytest.param("250 xyzxyzxy", id="not-hex"),
    pytest.param("250", id="empty"),
    pytest.param(f"226 {CRC32}", id="wrong-code"),
]


@pytest.mark.parametrize("reply", MALFORMED_X)
def test_malformed_older_reply_is_a_protocol_error(reply: str) -> None:
    rules: dict[str, Rule] = {"FEAT": feat("XCRC"), "XCRC": [reply, f"250 {CRC32}"]}
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with pytest.raises(ProtocolError):
            ftp.hash("/a.csv", "crc32")
        assert ftp.hash("/a.csv", "crc32") == CRC32


def test_older_command_refusal_is_classified() -> None:
    rules: dict[str, Rule] = {"FEAT": feat("XMD5"), "XMD5": "550 Not found."}
    with ScriptedFtpServer(rules) as server, backend_for(server) as ftp:
        with pytest.raises(NotFoundError) as info:
            ftp.hash("/missing.csv", "md5")
        assert not info.value.retriable


def test_no_hash_features_means_no_hashes_and_no_command() -> None:
    with ScriptedFtpServer({"FEAT": feat("UTF8", "MDTM")}) as server:
        with backend_for(server).connect() as ftp:
            assert ftp.capabilities.hashes == ()
            with pytest.raises(NotSupportedError):
                ftp.hash("/a.csv", "sha256")
    assert server.commands[len(LOGIN) + 1 :] == ["QUIT"]  # + OPTS UTF8 ON


def test_unknown_algorithm_is_not_supported() -> None:
    with ScriptedFtpServer(hash_rules()) as server, backend_for(server) as ftp:
        with pytest.raises(NotSupportedError):
            ftp.hash("/a.csv", "whirlpool")


# ---------------------------------------------------------------------------------------------
# real servers: none of them offers hashes


def test_pyftpdlib_offers_no_hashes(ftp_server: ServerFactory) -> None:
    served = ftp_server("explicit")
    (served.root / "a.csv").write_bytes(DATA)
    with FtpBackend(served.connection()).connect() as ftp:
        assert ftp.capabilities.hashes == ()
        with pytest.raises(NotSupportedError):
            ftp.hash("/a.csv", "sha256")


@pytest.mark.vsftpd
def test_vsftpd_offers_no_hashes(vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir) -> None:
    vsftpd_workdir.write("a.csv", DATA)
    with FtpBackend(vsftpd_connection(vsftpd_explicit)).connect() as ftp:
        assert ftp.capabilities.hashes == ()
        with pytest.raises(NotSupportedError):
            ftp.hash(vsftpd_workdir.ftp_path("a.csv"), "md5")
