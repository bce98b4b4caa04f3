"""The TLS 1.3 key-exchange group a server asks for is learned and offered first (issue 19).

Real TLS on loopback: a Python TLS server that accepts only P-256 (as Debian's vsftpd) answers
OpenSSL's default X25519 key share with a HelloRetryRequest; the client's handshake reads the
group from it, and a context offering that group is not asked again. Then vsftpd itself
(``require_ssl_reuse``): the first session learns P-256, later sessions and their resumed
data connections no longer pay the retry.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.ftp.keyshare import (
    grouped_context,
    handshake_noting_retry,
    hello_retry_group,
)
from ferryman.backends.ftp.pipelining import host_facts
from ferryman.certs import PkiFiles, make_test_pki
from tests.servers.ftp_connection import connection
from tests.servers.turns import TurnCounter
from tests.servers.vsftpd import Vsftpd, Workdir


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def _client(pki: PkiFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(pki.ca_cert))
    return context


@pytest.fixture
def tls_server(pki: PkiFiles) -> Iterator[Callable[[str], int]]:
    """Start a one-connection TLS 1.3 server offering only ``group``; returns its port."""
    listeners: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def start(group: str) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        context.set_ecdh_curve(group)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(10)
        listeners.append(listener)

        def serve() -> None:
            raw, _ = listener.accept()
            # a link's latency: on loopback the client's first read could already find the
            # retry request, which OpenSSL then consumes before anything can peek at it
            time.sleep(0.05)
            with context.wrap_socket(raw, server_side=True) as tls:
                tls.sendall(b"hello")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return int(listener.getsockname()[1])

    yield start
    for thread in threads:
        thread.join(timeout=10)
    for listener in listeners:
        listener.close()


def _handshake(context: ssl.SSLContext, port: int) -> str | None:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(
        raw, server_hostname="127.0.0.1", do_handshake_on_connect=False
    ) as tls:
        group = handshake_noting_retry(tls, 10)
        assert tls.recv(5) == b"hello"  # the connection works after the peek
        return group


def test_a_retry_request_names_the_group_and_a_grouped_context_needs_none(
    pki: PkiFiles, tls_server: Callable[[str], int]
) -> None:
    client = _client(pki)
    assert _handshake(client, tls_server("prime256v1")) == "prime256v1"
    grouped = grouped_context(client, "prime256v1", lambda: _client(pki))
    assert grouped is grouped_context(client, "prime256v1", lambda: _client(pki))  # shared
    assert _handshake(grouped, tls_server("prime256v1")) is None
    assert _handshake(client, tls_server("X25519")) is None  # the default share was taken
    assert _handshake(client, tls_server("secp384r1")) == "secp384r1"


def test_records_that_are_not_a_retry_request_name_no_group() -> None:
    assert hello_retry_group(b"") is None
    assert hello_retry_group(b"\x15\x03\x03\x00\x02\x02\x28") is None  # an alert
    server_hello = b"\x16\x03\x03\x00\x58\x02\x00\x00\x54\x03\x03" + bytes(32) + b"\x00" * 40
    assert hello_retry_group(server_hello) is None
    retry = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
    cut = b"\x16\x03\x03\x00\x58\x02\x00\x00\x54\x03\x03" + retry + b"\x00"
    assert hello_retry_group(cut) is None  # cut short: nothing is guessed
    extensions = b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x02\x00\x18"
    whole = cut + b"\x13\x02\x00" + len(extensions).to_bytes(2, "big") + extensions
    assert hello_retry_group(whole) == "secp384r1"


@pytest.mark.vsftpd
def test_vsftpd_sessions_after_the_first_offer_its_group(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir, tmp_path: Path
) -> None:
    vsftpd_workdir.write("keyshare/a.bin", b"a" * 100)
    conn = connection(vsftpd_explicit)
    # through a relay that holds the server's replies 20 ms, as a link would (see keyshare.py)
    relay = TurnCounter("127.0.0.1", vsftpd_explicit.port, reply_delay=0.02).start()
    conn = conn.model_copy(update={"port": relay.port})
    first = FtpBackend(conn).connect()
    try:
        # Debian's vsftpd takes only P-256: the first handshake learned it
        assert host_facts("127.0.0.1", relay.port).tls_group == "prime256v1"
        second = first.sibling().connect()
        try:
            session = second.session_or_raise()
            assert session.context is not first.session_or_raise().context
            assert first.session_or_raise().hello_retry == "prime256v1"
            assert session.hello_retry is None  # no second round trip in the handshake
            stream = second.open_read(vsftpd_workdir.ftp_path("keyshare/a.bin"))
            assert stream.read() == b"a" * 100
            assert stream.read() == b""
            stream.close()
            assert session.data_sessions_resumed == [True]  # require_ssl_reuse still met
        finally:
            second.close()
    finally:
        first.close()
        relay.close()


def test_a_remembered_group_the_server_no_longer_takes_is_forgotten(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir
) -> None:
    """A server behind the same name that refuses the remembered group (another node, a
    new configuration) costs one failed handshake, not the connection."""
    vsftpd_workdir.write("keyshare/b.bin", b"b" * 10)
    conn = connection(vsftpd_explicit)
    facts = host_facts("127.0.0.1", vsftpd_explicit.port)
    facts.tls_group = "secp384r1"  # Debian's vsftpd takes only P-256
    backend = FtpBackend(conn).connect()
    try:
        assert facts.tls_group in (None, "prime256v1")  # forgotten (then learned again)
        stream = backend.open_read(vsftpd_workdir.ftp_path("keyshare/b.bin"))
        assert stream.read() == b"b" * 10
        stream.close()
    finally:
        backend.close()
