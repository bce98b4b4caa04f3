"""The test PKI (ferryman.certs) and the embedded FTP/FTPS server (ferryman.embedded).

The clients here are the standard library only (ftplib, ssl, socket), so these tests check the
server, not ferryman's own FTP backend.
"""

from __future__ import annotations

import ftplib
import hashlib
import io
import ipaddress
import logging
import os
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ferryman.certs import PkiFiles, make_client_cert, make_test_pki
from ferryman.embedded import EmbeddedServer
from ferryman.fingerprints import normalize_fingerprint, sha256_fingerprint

from .conftest import PASSWORD, ServerFactory

PAYLOAD = bytes(range(256)) * 400  # 100 KiB, binary


# --- clients -------------------------------------------------------------------------------


class ImplicitFTPS(ftplib.FTP_TLS):
    """FTP_TLS for implicit FTPS: TLS is set up before the 220 greeting is read."""

    def connect(
        self,
        host: str = "",
        port: int = 0,
        timeout: float = -999,
        source_address: Any = None,
    ) -> str:
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((host, port), self.timeout)
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


class ResumingFTPS(ftplib.FTP_TLS):
    """FTP_TLS whose protected data connections resume the control connection's session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reused: list[bool] = []

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        assert isinstance(self.sock, ssl.SSLSocket)
        tls = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        self.reused.append(bool(tls.session_reused))
        return tls, size


def client_context(pki: PkiFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    assert ctx.check_hostname and ctx.verify_mode is ssl.CERT_REQUIRED
    return ctx


def round_trip(ftp: ftplib.FTP, name: str = "data.bin") -> None:
    ftp.storbinary(f"STOR {name}", io.BytesIO(PAYLOAD))
    assert name in ftp.nlst()
    out = io.BytesIO()
    ftp.retrbinary(f"RETR {name}", out.write)
    assert out.getvalue() == PAYLOAD


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ferryman-ftpd")]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    (path / "hello.txt").write_bytes(b"hello\n")
    return path


@pytest.fixture
def pki(tmp_path: Path) -> PkiFiles:
    return make_test_pki(tmp_path / "pki")


@pytest.fixture
def explicit(root: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(root, tls="explicit", password="secret") as server:
        yield server


# --- certs ---------------------------------------------------------------------------------


def test_fingerprint_forms_round_trip() -> None:
    fp = sha256_fingerprint(b"certificate bytes")
    assert fp == ":".join(f"{b:02X}" for b in hashlib.sha256(b"certificate bytes").digest())
    bare = fp.replace(":", "")
    for text in (
        fp,
        fp.lower(),
        bare,
        bare.lower(),
        f"SHA256:{fp}",
        f"sha256/{bare.lower()}",
        f"  sha256: {fp.replace(':', ' ')}  ",
    ):
        assert normalize_fingerprint(text) == fp
    assert normalize_fingerprint(normalize_fingerprint(bare)) == fp


@pytest.mark.parametrize(
    "text",
    ["", "AB:CD", "sha1:" + "ab" * 20, "zz" * 32, "ab" * 33, "SHA256:q83vEjRWeJA="],
)
def test_bad_fingerprints_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        normalize_fingerprint(text)


def test_test_pki(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path, hosts=("127.0.0.1", "::1", "localhost", "ftp.test"))
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())

    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "ftp.test"]
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days >= 700

    assert pki.server_fingerprint == sha256_fingerprint(
        server.public_bytes(serialization.Encoding.DER)
    )
    assert pki.ca_fingerprint == sha256_fingerprint(ca.public_bytes(serialization.Encoding.DER))
    chain = pki.server_chain.read_text()
    assert "BEGIN CERTIFICATE" in chain and "BEGIN PRIVATE KEY" in chain
    for private in (pki.server_key, pki.ca_key, pki.server_chain):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600

    cert_path, key_path = make_client_cert(tmp_path / "client", pki)
    client = x509.load_pem_x509_certificate(cert_path.read_bytes())
    client.verify_directly_issued_by(ca)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    # The files load as a TLS client identity.
    ssl.create_default_context().load_cert_chain(str(cert_path), str(key_path))


def test_test_pki_needs_hosts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hosts"):
        make_test_pki(tmp_path, hosts=())


# --- plain FTP -----------------------------------------------------------------------------


def test_plain_round_trip_and_wrong_password(root: Path) -> None:
    with EmbeddedServer(root, tls="none", password="secret", banner="hi there") as server:
        assert server.pki is None
        assert server.url() == f"ftp://demo@127.0.0.1:{server.port}/"
        with ftplib.FTP() as ftp:
            assert ftp.connect(server.host, server.port, timeout=5) == "220 hi there"
            ftp.login("demo", "secret")
            round_trip(ftp)
            assert (root / "data.bin").read_bytes() == PAYLOAD
            ftp.mkd("sub")
            ftp.rename("data.bin", "sub/moved.bin")
            ftp.delete("sub/moved.bin")
            ftp.rmd("sub")
        with ftplib.FTP() as ftp:
            ftp.connect(server.host, server.port, timeout=5)
            with pytest.raises(ftplib.error_perm, match=r"^530"):
                ftp.login("demo", "wrong")


def test_anonymous_is_read_only(root: Path) -> None:
    with (
        EmbeddedServer(root, tls="none", anonymous=True) as server,
        ftplib.FTP() as ftp,
    ):
        ftp.connect(server.host, server.port, timeout=5)
        ftp.login()  # anonymous
        assert ftp.nlst() == ["hello.txt"]
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.storbinary("STOR new.bin", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.delete("hello.txt")
    assert (root / "hello.txt").exists() and not (root / "new.bin").exists()


def test_random_password_and_no_password_in_url(root: Path) -> None:
    a = EmbeddedServer(root, tls="none")
    b = EmbeddedServer(root, tls="none")
    assert a.password and a.password != b.password
    with a:
        assert a.password not in a.url()
        assert a.url(scheme_user=False) == f"ftp://127.0.0.1:{a.port}/"
        assert a.address == ("127.0.0.1", a.port)


def test_per_ip_limit(root: Path) -> None:
    with (
        EmbeddedServer(root, tls="none", max_connections_per_ip=1) as server,
        ftplib.FTP() as first,
        ftplib.FTP() as second,
    ):
        first.connect(server.host, server.port, timeout=5)
        with pytest.raises(ftplib.error_temp, match=r"^421"):
            second.connect(server.host, server.port, timeout=5)


# --- explicit FTPS -------------------------------------------------------------------------


def test_explicit_round_trip_verifies_certificate(explicit: EmbeddedServer) -> None:
    pki = explicit.pki
    assert pki is not None
    assert explicit.url() == f"ftpes://demo@127.0.0.1:{explicit.port}/"
    with ftplib.FTP_TLS(context=client_context(pki), timeout=5) as ftp:
        ftp.connect(explicit.host, explicit.port)
        ftp.login("demo", "secret")  # AUTH TLS first, host name checked against the SAN
        assert isinstance(ftp.sock, ssl.SSLSocket)
        der = ftp.sock.getpeercert(binary_form=True)
        assert der is not None
        assert sha256_fingerprint(der) == pki.server_fingerprint
        assert hashlib.sha256(der).hexdigest().upper() == pki.server_fingerprint.replace(":", "")
        assert ftp.sock.version() == "TLSv1.3"
        ftp.prot_p()
        round_trip(ftp)


def test_explicit_wrong_password(explicit: EmbeddedServer) -> None:
    assert explicit.pki is not None
    with ftplib.FTP_TLS(context=client_context(explicit.pki), timeout=5) as ftp:
        ftp.connect(explicit.host, explicit.port)
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            ftp.login("demo", "wrong")


def test_explicit_requires_tls(explicit: EmbeddedServer) -> None:
    assert explicit.pki is not None
    with ftplib.FTP() as ftp:
        ftp.connect(explicit.host, explicit.port, timeout=5)
        with pytest.raises(ftplib.error_perm, match=r"^550 SSL/TLS required"):
            ftp.login("demo", "secret")
    with ftplib.FTP_TLS(context=client_context(explicit.pki), timeout=5) as ftp:
        ftp.connect(explicit.host, explicit.port)
        ftp.login("demo", "secret")
        with pytest.raises(ftplib.error_perm, match=r"^550 SSL/TLS required"):
            ftp.nlst()  # PASV before PROT P


def test_explicit_without_require_tls_allows_plain(root: Path) -> None:
    with (
        EmbeddedServer(root, tls="explicit", password="pw", require_tls=False) as server,
        ftplib.FTP() as ftp,
    ):
        ftp.connect(server.host, server.port, timeout=5)
        ftp.login("demo", "pw")
        assert ftp.nlst() == ["hello.txt"]


def test_untrusted_certificate_is_refused(explicit: EmbeddedServer, pki: PkiFiles) -> None:
    # ``pki`` is another CA than the one of the server.
    with ftplib.FTP_TLS(context=client_context(pki), timeout=5) as ftp:
        ftp.connect(explicit.host, explicit.port)
        with pytest.raises(ssl.SSLCertVerificationError):
            ftp.auth()


def test_given_certificate_is_used(root: Path, pki: PkiFiles) -> None:
    with (
        EmbeddedServer(
            root, password="pw", certfile=pki.server_cert, keyfile=pki.server_key
        ) as server,
        ftplib.FTP_TLS(context=client_context(pki), timeout=5) as ftp,
    ):
        assert server.pki is None
        ftp.connect(server.host, server.port)
        ftp.login("demo", "pw")
        assert isinstance(ftp.sock, ssl.SSLSocket)
        der = ftp.sock.getpeercert(binary_form=True)
        assert der is not None and sha256_fingerprint(der) == pki.server_fingerprint


def test_combined_cert_and_key_file(root: Path, pki: PkiFiles) -> None:
    with (
        EmbeddedServer(root, password="pw", certfile=pki.server_chain) as server,
        ftplib.FTP_TLS(context=client_context(pki), timeout=5) as ftp,
    ):
        ftp.connect(server.host, server.port)
        ftp.login("demo", "pw")


@pytest.mark.parametrize("max_version", ["1.2", "1.3"])
def test_tls_version_and_data_session_reuse(root: Path, max_version: str) -> None:
    with EmbeddedServer(root, password="pw", tls_max_version=max_version) as server:  # type: ignore[arg-type]
        assert server.pki is not None
        with ResumingFTPS(context=client_context(server.pki), timeout=5) as ftp:
            ftp.connect(server.host, server.port)
            ftp.login("demo", "pw")
            assert isinstance(ftp.sock, ssl.SSLSocket)
            assert ftp.sock.version() == f"TLSv{max_version}"
            ftp.prot_p()
            round_trip(ftp)
            assert ftp.reused and all(ftp.reused)


def test_client_certificate_required(root: Path, tmp_path: Path, pki: PkiFiles) -> None:
    cert, key = make_client_cert(tmp_path / "client", pki)
    with EmbeddedServer(
        root,
        password="pw",
        certfile=pki.server_cert,
        keyfile=pki.server_key,
        client_ca=pki.ca_cert,
    ) as server:
        ctx = client_context(pki)
        ctx.load_cert_chain(str(cert), str(key))
        with ftplib.FTP_TLS(context=ctx, timeout=5) as ftp:
            ftp.connect(server.host, server.port)
            ftp.login("demo", "pw")
            ftp.prot_p()
            assert ftp.nlst() == ["hello.txt"]
        ftp = ftplib.FTP_TLS(context=client_context(pki), timeout=5)
        try:
            ftp.connect(server.host, server.port)
            with pytest.raises((ssl.SSLError, OSError, EOFError)):
                ftp.login("demo", "pw")  # TLS 1.3: the refusal arrives after the handshake
        finally:
            ftp.close()


# --- implicit FTPS -------------------------------------------------------------------------


def test_implicit_round_trip(root: Path) -> None:
    with EmbeddedServer(root, tls="implicit", password="pw", banner="implicit hi") as server:
        assert server.pki is not None
        assert server.url() == f"ftps://demo@127.0.0.1:{server.port}/"
        with ImplicitFTPS(context=client_context(server.pki), timeout=5) as ftp:
            assert ftp.connect(server.host, server.port) == "220 implicit hi"
            assert isinstance(ftp.sock, ssl.SSLSocket)
            der = ftp.sock.getpeercert(binary_form=True)
            assert der is not None and sha256_fingerprint(der) == server.pki.server_fingerprint
            ftp.login("demo", "pw")
            with pytest.raises(ftplib.error_perm, match=r"^503"):
                ftp.voidcmd("AUTH TLS")  # already TLS
            ftp.prot_p()
            round_trip(ftp)
        with ImplicitFTPS(context=client_context(server.pki), timeout=5) as ftp:
            ftp.connect(server.host, server.port)
            with pytest.raises(ftplib.error_perm, match=r"^530"):
                ftp.login("demo", "wrong")


def test_implicit_sends_nothing_in_clear(root: Path) -> None:
    with (
        EmbeddedServer(root, tls="implicit") as server,
        socket.create_connection(server.address, timeout=0.5) as raw,
        pytest.raises(TimeoutError),
    ):
        raw.recv(100)  # the greeting waits for the client's TLS handshake


def test_implicit_requires_prot_p(root: Path) -> None:
    with EmbeddedServer(root, tls="implicit", password="pw") as server:
        assert server.pki is not None
        with ImplicitFTPS(context=client_context(server.pki), timeout=5) as ftp:
            ftp.connect(server.host, server.port)
            ftp.login("demo", "pw")
            with pytest.raises(ftplib.error_perm, match=r"^550 SSL/TLS required"):
                ftp.nlst()


@pytest.mark.parametrize("limit", [{"max_connections_per_ip": 1}, {"max_connections": 2}])
def test_implicit_connection_limits_refuse_inside_tls(root: Path, limit: dict[str, int]) -> None:
    # max_connections counts sockets: the listener and the first session make two.
    with EmbeddedServer(root, tls="implicit", **limit) as server:  # type: ignore[arg-type]
        assert server.pki is not None
        ctx = client_context(server.pki)
        with ImplicitFTPS(context=ctx, timeout=5) as first, ImplicitFTPS(context=ctx) as second:
            first.connect(server.host, server.port)
            with pytest.raises(ftplib.error_temp, match=r"^421"):
                second.connect(server.host, server.port, timeout=5)


def test_implicit_tls12(root: Path) -> None:
    with EmbeddedServer(root, tls="implicit", password="pw", tls_max_version="1.2") as server:
        assert server.pki is not None
        with ImplicitFTPS(context=client_context(server.pki), timeout=5) as ftp:
            ftp.connect(server.host, server.port)
            assert isinstance(ftp.sock, ssl.SSLSocket)
            assert ftp.sock.version() == "TLSv1.2"
            ftp.login("demo", "pw")
            ftp.prot_p()
            round_trip(ftp)


# --- life cycle and logging ----------------------------------------------------------------


def test_stop_closes_everything(root: Path) -> None:
    server = EmbeddedServer(root, tls="explicit", password="pw").start()
    pki = server.pki
    assert pki is not None and pki.ca_cert.exists()
    address = server.address
    client = ftplib.FTP_TLS(context=client_context(pki), timeout=5)
    client.connect(*address)
    client.login("demo", "pw")  # a session left open at stop()
    assert len(server_threads()) == 1
    server.stop()
    assert server_threads() == []
    assert not pki.ca_cert.exists()  # the generated PKI is removed
    client.close()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(address, timeout=2):
        pass
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        server.start()


def test_bad_arguments(root: Path) -> None:
    with pytest.raises(ValueError, match="tls"):
        EmbeddedServer(root, tls="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tls_max_version"):
        EmbeddedServer(root, tls_max_version="1.1")  # type: ignore[arg-type]


def test_logs_to_logger_not_stderr(
    root: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="ferryman.embedded")
    with EmbeddedServer(root, tls="none", password="pw") as server, ftplib.FTP() as ftp:
        ftp.connect(server.host, server.port, timeout=5)
        ftp.login("demo", "pw")
        ftp.quit()
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "ferryman.embedded"]
    assert any("logged in" in m for m in messages)
    assert not any("pw" in m.split() for m in messages)


def _open_in_this_process(path: Path) -> int:
    found = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if Path(os.readlink(fd)) == path:
                found += 1
        except OSError:
            continue
    return found


def test_a_queued_retr_replaced_by_another_closes_its_file(ftp_server: ServerFactory) -> None:
    """A client that pipelines EPSV + RETR and gives up on the data connection leaves the
    server a queued file; the next RETR must not leak it (pyftpdlib replaces the queue)."""
    served = ftp_server("none")
    first, second = served.root / "a.bin", served.root / "b.bin"
    first.write_bytes(b"a" * 10)
    second.write_bytes(b"b" * 10)
    ftp = ftplib.FTP()
    ftp.connect(served.server.host, served.server.port, timeout=10)
    try:
        ftp.login(served.server.user, PASSWORD)
        for name in ("a.bin", "b.bin"):
            assert ftp.sendcmd("EPSV").startswith("229")
            ftp.putcmd(f"RETR {name}")
            assert ftp.getresp().startswith("150")
        deadline = time.monotonic() + 5
        while _open_in_this_process(first.resolve()) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _open_in_this_process(first.resolve()) == 0
    finally:
        ftp.close()
