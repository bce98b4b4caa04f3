"""The FTP/FTPS backend against the in-process pyftpdlib server, in every TLS mode."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from ferryman.backends.base import EntryType
from ferryman.backends.ftp import FtpBackend
from ferryman.errors import (
    AuthenticationError,
    CertificateError,
    ConfigError,
    ConnectError,
    ExitCode,
    NotFoundError,
    TLSError,
)
from ferryman.wirelog import configure_logging

from .conftest import PASSWORD, Served, ServerFactory


def _read_all(backend: FtpBackend, path: str, offset: int = 0) -> bytes:
    with backend.open_read(path, offset) as stream:
        data = bytearray()
        while chunk := stream.read(1 << 16):
            data += chunk
    return bytes(data)


def test_round_trip_in_every_tls_mode(served: Served) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    with FtpBackend(served.connection()) as ftp:
        ftp.mkdir("/in")
        with ftp.open_write("/in/data.bin") as out:
            out.write(payload)
        assert (served.root / "in/data.bin").read_bytes() == payload
        assert _read_all(ftp, "/in/data.bin") == payload
        assert _read_all(ftp, "/in/data.bin", offset=1000) == payload[1000:]
        entry = ftp.stat("/in/data.bin")
        assert (entry.type, entry.size, entry.mtime_precision) == (EntryType.FILE, len(payload), 1)
        assert [e.name for e in ftp.list("/in")] == ["data.bin"]
        ftp.rename("/in/data.bin", "/in/renamed.bin")
        ftp.remove("/in/renamed.bin")
        ftp.rmdir("/in")
        assert not (served.root / "in").exists()
        if served.server.tls != "none":
            session = ftp.session
            assert session is not None and session.data_sessions_resumed
            assert all(session.data_sessions_resumed), "every data connection resumes TLS"


@pytest.mark.parametrize("tls_max", ["1.2", "1.3"])
def test_tls_session_reuse_with_each_tls_version(ftp_server: ServerFactory, tls_max: str) -> None:
    served = ftp_server("explicit", tls_max_version=tls_max)
    (served.root / "a.txt").write_bytes(b"abc")
    with FtpBackend(served.connection()) as ftp:
        for _ in range(3):
            assert _read_all(ftp, "/a.txt") == b"abc"
        session = ftp.session
        assert session is not None
        assert session.sock.version() == f"TLSv{tls_max}"
        assert session.data_sessions_resumed == [True, True, True]


def test_missing_paths_are_not_found(served: Served) -> None:
    with FtpBackend(served.connection()) as ftp:
        for action in (
            lambda: ftp.stat("/nope.csv"),
            lambda: ftp.list("/nope"),
            lambda: ftp.open_read("/nope.csv"),
            lambda: ftp.remove("/nope.csv"),
        ):
            with pytest.raises(NotFoundError) as info:
                action()
            assert info.value.exit_code == ExitCode.NOT_FOUND and not info.value.retriable
        # the session survives refusals
        assert ftp.list("/") == []


def test_wrong_password_is_an_authentication_error(ftp_server: ServerFactory) -> None:
    served = ftp_server("explicit")
    with pytest.raises(AuthenticationError) as info:
        FtpBackend(served.connection(password="wrong-password")).connect()
    assert info.value.reply_code == 530 and not info.value.retriable
    assert "wrong-password" not in str(info.value)


def test_untrusted_certificate_names_the_fingerprint_to_pin(ftp_server: ServerFactory) -> None:
    served = ftp_server("explicit")
    assert served.server.pki is not None
    conn = served.connection(ca_file=None)
    with pytest.raises(CertificateError) as info:
        FtpBackend(conn).connect()
    fingerprint = served.server.pki.server_fingerprint
    assert info.value.fingerprint == fingerprint
    assert f"--fingerprint {fingerprint}" in str(info.value)
    assert info.value.exit_code == ExitCode.TLS and not info.value.retriable


@pytest.mark.parametrize("tls", ["explicit", "implicit"])
def test_pinned_fingerprint_is_enough_and_a_wrong_pin_is_refused(
    ftp_server: ServerFactory, tls: str
) -> None:
    served = ftp_server(tls)
    assert served.server.pki is not None
    good = served.connection(ca_file=None, fingerprint=served.server.pki.server_fingerprint)
    with FtpBackend(good) as ftp:
        assert ftp.list("/") == []
    wrong = "00:" * 31 + "00"
    with pytest.raises(CertificateError, match="does not match the pinned") as info:
        FtpBackend(served.connection(ca_file=None, fingerprint=wrong)).connect()
    assert info.value.fingerprint == served.server.pki.server_fingerprint


def test_explicit_tls_refused_by_a_plain_server_fails_closed(ftp_server: ServerFactory) -> None:
    served = ftp_server("none")
    conn = served.connection(tls="explicit", ca_file=None, insecure=True)
    with pytest.raises(TLSError, match="refused AUTH TLS") as info:
        FtpBackend(conn).connect()
    assert "never falls back to plain text" in str(info.value)


def test_implicit_url_against_an_explicit_port_explains_itself(ftp_server: ServerFactory) -> None:
    served = ftp_server("explicit")
    with pytest.raises(TLSError) as info:
        FtpBackend(served.connection(tls="implicit")).connect()
    assert "does not speak TLS here" in str(info.value)


def test_unreachable_port_is_a_retriable_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from ferryman.connection import FtpConnection

    conn = FtpConnection(host="127.0.0.1", port=port, timeout=5, use_netrc=False)
    with pytest.raises(ConnectError, match="refused the connection") as info:
        FtpBackend(conn).connect()
    assert info.value.retriable and info.value.exit_code == ExitCode.CONNECTION


def test_server_closing_the_connection_gives_a_retriable_error_then_reconnects(
    ftp_server: ServerFactory,
) -> None:
    served = ftp_server("explicit")
    with FtpBackend(served.connection()) as ftp:
        assert ftp.list("/") == []
        session = ftp.session
        assert session is not None
        session.sock.shutdown(socket.SHUT_RDWR)  # the connection drops under the session
        with pytest.raises(ConnectError) as info:
            ftp.list("/")
        assert info.value.retriable
        assert ftp.list("/") == []  # a fresh session is opened on the next operation


@pytest.mark.parametrize("path", ["/a\r\nDELE b", "/a\nb", "/a\0b"])
def test_line_breaks_in_paths_never_reach_the_wire(ftp_server: ServerFactory, path: str) -> None:
    served = ftp_server("explicit")
    (served.root / "b").write_text("keep me")
    with FtpBackend(served.connection()) as ftp:
        for action in (ftp.stat, ftp.remove, ftp.list, ftp.mkdir):
            with pytest.raises(ConfigError, match="contains a"):
                action(path)
    assert (served.root / "b").read_text() == "keep me"


@pytest.mark.parametrize(
    "overrides", [{"passive": False}, {"use_epsv": False}, {"use_mlsd": False}]
)
def test_active_mode_pasv_only_and_list_only(
    ftp_server: ServerFactory, overrides: dict[str, object]
) -> None:
    served = ftp_server("explicit")
    (served.root / "dir").mkdir()
    (served.root / "file name with spaces.csv").write_bytes(b"x" * 10)
    with FtpBackend(served.connection(**overrides)) as ftp:
        entries = {e.name: e for e in ftp.list("/")}
        assert entries["dir"].type is EntryType.DIR
        assert entries["file name with spaces.csv"].size == 10
        assert _read_all(ftp, "/file name with spaces.csv") == b"x" * 10


def test_transcript_masks_the_password_and_shows_tls_and_data(
    ftp_server: ServerFactory, tmp_path: Path
) -> None:
    served = ftp_server("explicit")
    (served.root / "a.txt").write_bytes(b"abc")
    log_file = tmp_path / "transcript.log"
    configure_logging(0, log_file)
    try:
        with FtpBackend(served.connection()) as ftp:
            _read_all(ftp, "/a.txt")
    finally:
        configure_logging(0, None)
        logging.getLogger("ferryman").setLevel(logging.WARNING)
    text = log_file.read_text()
    assert PASSWORD not in text
    assert "> PASS ****" in text
    assert "* TLS TLSv1.3" in text and "SHA-256" in text
    assert "session resumed" in text
    assert "* data 127.0.0.1:" in text
    assert "RETR /a.txt: 3 bytes in" in text


def test_client_certificate_for_mutual_tls(ftp_server: ServerFactory, tmp_path: Path) -> None:
    from ferryman.certs import make_client_cert, make_test_pki

    pki = make_test_pki(tmp_path / "pki")
    served = ftp_server(
        "explicit", certfile=pki.server_cert, keyfile=pki.server_key, client_ca=pki.ca_cert
    )
    cert, key = make_client_cert(tmp_path / "client", pki)
    conn = served.connection(ca_file=pki.ca_cert, client_cert=cert, client_key=key)
    with FtpBackend(conn) as ftp:
        assert ftp.list("/") == []
    with pytest.raises(TLSError):
        FtpBackend(served.connection(ca_file=pki.ca_cert)).connect()
