"""A TLS session that breaks after login is a dropped connection, not a TLS set-up to fix
(issue 19): vsftpd ends a session whose process fails by writing ``500 OOPS: ...`` in clear
text on the TLS control connection. Reproduced with a real vsftpd whose only passive port is
taken: its EPSV cannot bind and the session dies as in the field (a passive port range too
small for the connections in use)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyftpdlib.handlers import TLS_DTPHandler

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.ftp.tls import CLEAR_TEXT_WAIT
from ferryman.certs import PkiFiles
from ferryman.errors import ConnectError, TLSError
from tests.conftest import ServerFactory
from tests.servers.ftp_connection import connection
from tests.servers.vsftpd import Vsftpd


@pytest.fixture
def taken_port() -> Iterator[int]:
    holder = socket.create_server(("127.0.0.1", 0))
    yield int(holder.getsockname()[1])
    holder.close()


@pytest.mark.vsftpd
def test_a_session_that_dies_in_clear_text_is_retriable_and_says_why(
    vsftpd_root: Path, vsftpd_pki: PkiFiles, taken_port: int
) -> None:
    ports = {"pasv_min_port": str(taken_port), "pasv_max_port": str(taken_port)}
    with Vsftpd("explicit", root=vsftpd_root, pki=vsftpd_pki, extra_config=ports) as server:
        backend = FtpBackend(connection(server)).connect()
        try:
            with pytest.raises(ConnectError) as caught:
                backend.list("/")
        finally:
            backend.close()
    error = caught.value
    assert error.retriable
    assert "TLS session" in error.message and "broke" in error.message
    assert "vsf_sysutil_bind" in error.message  # what vsftpd wrote in clear text
    assert "does not speak TLS" not in (error.hint or "")
    assert backend.session is None  # dropped: the next attempt reconnects


@pytest.mark.vsftpd
def test_a_session_that_dies_at_login_is_not_blamed_on_the_tls_mode(
    vsftpd_pki: PkiFiles, tmp_path: Path
) -> None:
    # a home the FTP user may not enter: vsftpd's session writes "500 OOPS: cannot change
    # directory" in clear text right after the TLS handshake of AUTH TLS
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with Vsftpd("explicit", root=closed, pki=vsftpd_pki) as server:
        conn = connection(server)
        with pytest.raises(TLSError) as caught:
            FtpBackend(conn).connect()
    error = caught.value
    assert "cannot change directory" in error.message  # the server's own words
    assert not error.retriable  # refused at login: trying again changes nothing
    assert "does not speak TLS" not in (error.hint or "")


@pytest.mark.vsftpd
def test_a_live_session_is_never_read_beneath_its_tls_layer(vsftpd_explicit: Vsftpd) -> None:
    backend = FtpBackend(connection(vsftpd_explicit)).connect()
    try:
        session = backend.session
        assert session is not None
        assert session.clear_text() == ""  # TLS did not fail: nothing is read under it
        session.control_tls_failed = True  # as if it had: a silent socket gives no words
        started = time.monotonic()
        assert session.clear_text() == ""
        assert time.monotonic() - started < CLEAR_TEXT_WAIT + 1  # not the 10 s time-out
        session.control_tls_failed = False
        assert backend.list("/") is not None  # nothing of the session was taken
    finally:
        backend.close()


def test_a_data_connection_closed_before_its_handshake_is_a_broken_session(
    ftp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the server closes the first data connection instead of securing it (as a vsftpd whose
    # session process died does): a dropped connection, retried on a fresh one
    served = ftp_server("explicit")
    (served.root / "a.txt").write_bytes(b"hello")
    cut: list[bool] = [True]
    secure = TLS_DTPHandler.secure_connection

    def close_first(self: TLS_DTPHandler, context: object) -> None:
        if cut:
            cut.clear()
            self.socket.shutdown(socket.SHUT_RDWR)  # the client's handshake meets an EOF
            return
        secure(self, context)

    monkeypatch.setattr(TLS_DTPHandler, "secure_connection", close_first)
    # pyftpdlib then says nothing more about that transfer: its final reply is waited for
    backend = FtpBackend(served.connection(timeout=2)).connect()
    try:
        with pytest.raises(ConnectError) as caught:
            backend.list("/")
        assert caught.value.retriable and "broke" in caught.value.message
        assert backend.session is None  # dropped
        assert [e.name for e in backend.list("/")] == ["a.txt"]  # a fresh session works
    finally:
        backend.close()
