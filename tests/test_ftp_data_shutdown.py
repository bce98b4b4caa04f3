"""How the FTP backend ends a data connection: close_notify, then FIN, then the reply.

vsftpd ends every data connection with ``SO_LINGER`` + ``close()`` and sends its ``226`` only
once that close returns, i.e. once the client has ACKed vsftpd's FIN (and, over TLS, after the
client's close_notify). A client that waits for the ``226`` before sending its own FIN leaves
that ACK to Linux's delayed-ACK timer: 40 ms per file. These scripted servers are stricter than
vsftpd: they withhold the ``226`` until the client's FIN (and close_notify) has arrived, and
record what they saw, so a client that gets the order wrong fails an assertion here instead of
merely being slow. No timing is asserted.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from ferryman.backends.ftp import FtpBackend
from ferryman.certs import PkiFiles, make_test_pki
from ferryman.connection import FtpConnection
from ferryman.errors import TimeoutError as FerrymanTimeoutError
from tests.servers.scripted import Reply, Rule, ScriptedFtpServer

pytestmark = pytest.mark.timeout(60)

PAYLOAD = bytes(range(256)) * 16  # 4 KiB, a "small file"
FIN_WAIT = 3.0  # how long the fake server waits for the client's FIN/close_notify at most
EVENTS = "events"


# ---------------------------------------------------------------------------------------------
# fake servers


class ImplicitTlsScriptedServer(ScriptedFtpServer):
    """A scripted server speaking implicit FTPS (TLS from the first byte) on its control
    connection; rules wrap data connections themselves with :attr:`context`."""

    def __init__(
        self, rules: dict[str, Rule], *, context: ssl.SSLContext, timeout: float = 10.0
    ) -> None:
        super().__init__(rules, timeout=timeout)
        self.context = context

    def _accept_control(self) -> socket.socket | None:
        conn = super()._accept_control()
        if conn is None:
            return None
        conn.settimeout(self.timeout)
        tls = self.context.wrap_socket(conn, server_side=True)
        tls.settimeout(0.1)  # what the dialogue loop expects
        return tls


def _events(server: ScriptedFtpServer) -> list[str]:
    events = server.state.setdefault(EVENTS, [])
    assert isinstance(events, list)
    return events


def _wait_for_fin(sock: socket.socket) -> bool:
    """True once the client half-closed TCP (EOF); False when it did not within FIN_WAIT.

    Reads a duplicate of the descriptor, so that over TLS it sees TCP, not TLS records."""
    with socket.fromfd(sock.fileno(), socket.AF_INET, socket.SOCK_STREAM) as plain:
        plain.settimeout(FIN_WAIT)
        try:
            while plain.recv(4096):
                pass
        except OSError:  # including the time-out
            return False
    return True


def _accept(server: ScriptedFtpServer, context: ssl.SSLContext | None) -> socket.socket:
    """Accept the data connection, with a context also the TLS handshake (session reuse is
    checked as vsftpd's require_ssl_reuse=YES does). A ragged EOF raises instead of ending."""
    raw = server.accept_data()
    if context is None:
        return raw
    try:
        data = context.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
    except BaseException:
        raw.close()
        raise
    if not data.session_reused:
        _events(server).append("not resumed")
    return data


def vsftpd_like_out(
    data: bytes, context: ssl.SSLContext | None = None, *, close_notify: bool = True
) -> Callable[[ScriptedFtpServer, str], Reply]:
    """RETR/LIST/MLSD as vsftpd ends them: send, close_notify and wait for the client's (TLS),
    then withhold the 226 until the client's FIN arrived. ``close_notify=False`` models a
    server that never sends one (IIS): the client sees a ragged EOF."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        events = _events(server)
        server.reply("150 Opening BINARY mode data connection.")
        conn = _accept(server, context)
        try:
            conn.sendall(data)
            if isinstance(conn, ssl.SSLSocket) and close_notify:
                conn.settimeout(FIN_WAIT)
                try:
                    conn.unwrap()  # ours out, theirs awaited (vsftpd's second SSL_shutdown)
                    events.append("close_notify")
                except (ssl.SSLError, OSError):
                    events.append("no close_notify")
            else:
                conn.shutdown(socket.SHUT_WR)  # a TCP FIN only (over TLS: a ragged EOF)
            events.append("fin" if _wait_for_fin(conn) else "no fin")
        finally:
            conn.close()
        events.append("226")
        return "226 Transfer complete."

    return rule


def vsftpd_like_in(
    context: ssl.SSLContext | None = None, *, close_notify: bool = True
) -> Callable[[ScriptedFtpServer, str], Reply]:
    """STOR: read to the end (over TLS: to the client's close_notify), then wait for its FIN
    before the 226. ``close_notify=False``: never send ours, as IIS does."""

    def rule(server: ScriptedFtpServer, arg: str) -> Reply:
        events = _events(server)
        server.reply("150 Ok to send data.")
        conn = _accept(server, context)
        chunks: list[bytes] = []
        try:
            conn.settimeout(FIN_WAIT)
            try:
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                if isinstance(conn, ssl.SSLSocket):
                    events.append("close_notify")  # b"" without ragged EOFs: a close_notify
            except (ssl.SSLError, OSError) as err:
                events.append(f"no clean end of data ({type(err).__name__})")
            if isinstance(conn, ssl.SSLSocket) and close_notify:
                try:
                    conn.unwrap()
                except (ssl.SSLError, OSError):
                    pass
            events.append("fin" if _wait_for_fin(conn) else "no fin")
        finally:
            conn.close()
        server.uploads.append((arg, b"".join(chunks)))
        events.append("226")
        return "226 Transfer complete."

    return rule


def silent_out(data: bytes) -> Callable[[ScriptedFtpServer, str], Reply]:
    """RETR that sends the file and then never answers: the client must give up in time."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        server.reply("150 Opening BINARY mode data connection.")
        server.send_data(data)
        return None

    return rule


# ---------------------------------------------------------------------------------------------
# helpers


def backend_for(
    server: ScriptedFtpServer, pki: PkiFiles | None = None, **overrides: object
) -> FtpBackend:
    fields: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "user": "bob",
        "password": SecretStr("pw-for-shutdown-tests"),
        "tls": "none" if pki is None else "implicit",
        "timeout": 10,
        "retries": 0,
        "use_netrc": False,
        "use_keyring": False,
        **overrides,
    }
    if pki is not None:
        fields["ca_file"] = pki.ca_cert
    return FtpBackend(FtpConnection.model_validate(fields))


def read_all(backend: FtpBackend, path: str) -> bytes:
    with backend.open_read(path) as stream:
        data = bytearray()
        while chunk := stream.read(1 << 16):
            data += chunk
    return bytes(data)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_test_pki(Path(tmp_path_factory.mktemp("shutdown-pki")))


def server_context(pki: PkiFiles, version: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.maximum_version = ssl.TLSVersion[version]
    return context


TLS_VERSIONS = ["TLSv1_2", "TLSv1_3"]


# ---------------------------------------------------------------------------------------------
# plain FTP


def test_download_sends_fin_before_waiting_for_the_reply() -> None:
    rules: dict[str, Rule] = {"RETR": vsftpd_like_out(PAYLOAD)}
    with ScriptedFtpServer(rules, timeout=10) as server, backend_for(server) as ftp:
        for _ in range(3):
            assert read_all(ftp, "/small.bin") == PAYLOAD
    assert _events(server) == ["fin", "226"] * 3


def test_listing_sends_fin_before_waiting_for_the_reply() -> None:
    listing = b"-rw-r--r--    1 ftp      ftp          4096 Nov 23 05:06 small.bin\r\n"
    rules: dict[str, Rule] = {"LIST": vsftpd_like_out(listing)}
    with ScriptedFtpServer(rules, timeout=10) as server:
        with backend_for(server, use_mlsd=False) as ftp:
            assert [entry.name for entry in ftp.list("/")] == ["small.bin"]
    assert _events(server) == ["fin", "226"]


def test_upload_sends_fin_before_waiting_for_the_reply() -> None:
    rules: dict[str, Rule] = {"STOR": vsftpd_like_in()}
    with ScriptedFtpServer(rules, timeout=10) as server, backend_for(server) as ftp:
        with ftp.open_write("/up.bin") as stream:
            stream.write(PAYLOAD)
    assert server.uploads == [("/up.bin", PAYLOAD)]
    assert _events(server) == ["fin", "226"]


def test_a_server_that_never_sends_226_fails_in_bounded_time() -> None:
    rules: dict[str, Rule] = {"RETR": silent_out(PAYLOAD)}
    with ScriptedFtpServer(rules, timeout=10) as server:
        ftp = backend_for(server, timeout=1)
        stream = ftp.open_read("/small.bin")
        assert stream.read() == PAYLOAD
        with pytest.raises(FerrymanTimeoutError) as info:
            while stream.read():
                pass
            stream.close()
        assert info.value.retriable
        assert ftp.session is None  # the session is out of step: dropped, not reused
        ftp.close()


# ---------------------------------------------------------------------------------------------
# FTPS (implicit, with session reuse required as by vsftpd)


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_tls_download_sends_close_notify_then_fin_before_the_reply(
    pki: PkiFiles, version: str
) -> None:
    context = server_context(pki, version)
    rules: dict[str, Rule] = {"RETR": vsftpd_like_out(PAYLOAD, context)}
    with ImplicitTlsScriptedServer(rules, context=context) as server:
        with backend_for(server, pki) as ftp:
            for _ in range(3):
                assert read_all(ftp, "/small.bin") == PAYLOAD
            session = ftp.session
            assert session is not None and session.data_sessions_resumed == [True] * 3
    assert _events(server) == ["close_notify", "fin", "226"] * 3


@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_tls_download_without_the_servers_close_notify_still_ends_promptly(
    pki: PkiFiles, version: str
) -> None:
    context = server_context(pki, version)
    rules: dict[str, Rule] = {"RETR": vsftpd_like_out(PAYLOAD, context, close_notify=False)}
    with ImplicitTlsScriptedServer(rules, context=context) as server:
        with backend_for(server, pki) as ftp:
            assert read_all(ftp, "/small.bin") == PAYLOAD
    assert _events(server) == ["fin", "226"]


@pytest.mark.parametrize("close_notify", [True, False], ids=["vsftpd", "iis-like"])
@pytest.mark.parametrize("version", TLS_VERSIONS)
def test_tls_upload_sends_close_notify_then_fin_and_never_waits_for_the_servers(
    pki: PkiFiles, version: str, close_notify: bool
) -> None:
    context = server_context(pki, version)
    rules: dict[str, Rule] = {"STOR": vsftpd_like_in(context, close_notify=close_notify)}
    with ImplicitTlsScriptedServer(rules, context=context) as server:
        with backend_for(server, pki) as ftp:
            for name in ("/a.bin", "/b.bin"):
                with ftp.open_write(name) as stream:
                    stream.write(PAYLOAD[:1000])
                    stream.write(PAYLOAD[1000:])
    assert server.uploads == [("/a.bin", PAYLOAD), ("/b.bin", PAYLOAD)]
    assert _events(server) == ["close_notify", "fin", "226"] * 2
