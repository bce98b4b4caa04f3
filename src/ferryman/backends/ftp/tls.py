"""TLS for FTPS: contexts that verify by default, certificate pinning, and TLS diagnostics."""

from __future__ import annotations

import select
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...connection import FtpConnection, TLSMode
from ...errors import CertificateError, ConfigError
from ...fingerprints import sha256_fingerprint

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "CLEAR_TEXT_WAIT",
    "TLSInfo",
    "build_context",
    "check_pin",
    "clear_text_under",
    "describe_tls",
    "probe_fingerprint",
]

#: how long the rest of a line in clear text is waited for once its start arrived (seconds)
CLEAR_TEXT_WAIT = 1.0

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def build_context(conn: FtpConnection) -> ssl.SSLContext:
    """An SSL context that verifies the certificate and host name unless told otherwise.

    (stdlib ``FTP_TLS()`` without a context verifies nothing; we never do that silently.)
    With a pinned fingerprint the chain is not checked, but exactly that certificate must be
    presented (see :func:`check_pin`).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _VERSIONS[conn.tls_min_version]
    if conn.tls_max_version:
        ctx.maximum_version = _VERSIONS[conn.tls_max_version]
    if conn.fingerprint is not None or not conn.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif conn.ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=str(conn.ca_file.expanduser()))
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(
                f"cannot load ca_file {conn.ca_file}: {getattr(err, 'strerror', None) or err}",
                hint="give a readable PEM file with the CA certificate(s)",
            ) from None
    else:
        ctx.load_default_certs()
    if conn.client_cert is not None:
        try:
            ctx.load_cert_chain(
                str(conn.client_cert.expanduser()),
                str(conn.client_key.expanduser()) if conn.client_key else None,
            )
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(
                f"cannot load client certificate {conn.client_cert}: "
                f"{getattr(err, 'strerror', None) or err}",
                hint="give PEM files; an encrypted key is not supported",
            ) from None
    return ctx


def check_pin(sock: ssl.SSLSocket, expected: str | None) -> str:
    """Return the peer certificate's fingerprint; raise when it differs from ``expected``."""
    der = sock.getpeercert(binary_form=True)
    if der is None:
        raise CertificateError("the server presented no certificate")
    actual = sha256_fingerprint(der)
    if expected is not None and actual != expected:
        raise CertificateError(
            f"the server certificate's SHA-256 fingerprint {actual} does not match the pinned "
            f"fingerprint {expected}",
            hint="if the server's certificate was renewed on purpose, pin the new fingerprint; "
            "otherwise someone may be intercepting the connection",
            fingerprint=actual,
        )
    return actual


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What the transcript and ``ferryman test`` show about a TLS session."""

    version: str
    cipher: str
    bits: int
    subject: str
    issuer: str
    not_after: str
    fingerprint: str
    san: tuple[str, ...]

    def summary(self) -> str:
        return (
            f"{self.version} {self.cipher} ({self.bits} bits); certificate {self.subject} "
            f"issued by {self.issuer}, valid until {self.not_after}; SHA-256 {self.fingerprint}"
        )


def _name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID  # noqa: PLC0415 (only for the transcript)

    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else name.rfc4514_string() or "(no name)"


def describe_tls(sock: ssl.SSLSocket) -> TLSInfo:
    """The session's TLS details (for ``-v`` and ``ferryman test``; loads ``cryptography``,
    which a transfer without a transcript never needs)."""
    from cryptography import x509  # noqa: PLC0415 (about 20 ms of start-up saved otherwise)

    der = sock.getpeercert(binary_form=True) or b""
    cipher = sock.cipher() or ("?", "?", 0)
    subject = issuer = not_after = "?"
    san: tuple[str, ...] = ()
    if der:
        cert = x509.load_der_x509_certificate(der)
        subject, issuer = _name(cert.subject), _name(cert.issuer)
        not_after = cert.not_valid_after_utc.strftime("%Y-%m-%d")
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            san = tuple(str(v) for v in ext.value.get_values_for_type(x509.DNSName)) + tuple(
                str(v) for v in ext.value.get_values_for_type(x509.IPAddress)
            )
        except x509.ExtensionNotFound:
            pass
    return TLSInfo(
        version=sock.version() or "?",
        cipher=cipher[0],
        bits=cipher[2] or 0,
        subject=subject,
        issuer=issuer,
        not_after=not_after,
        fingerprint=sha256_fingerprint(der) if der else "?",
        san=san,
    )


def clear_text_under(sock: ssl.SSLSocket) -> str:
    """What is left unread under the TLS layer of ``sock``, when it is a line of printable
    ASCII: a server that ends a session by writing in clear text on a TLS connection
    (vsftpd's ``500 OOPS: ...``) leaves its words there once OpenSSL refused their first 5
    bytes as a record header. "" when nothing waits, or what waits is TLS records. Call it
    only once TLS failed on ``sock``: it reads beneath the TLS layer. Waits at most
    :data:`CLEAR_TEXT_WAIT` for the rest of a line whose start arrived."""
    raw = b""
    deadline = time.monotonic() + CLEAR_TEXT_WAIT
    timeout = sock.gettimeout()
    socket.socket.settimeout(sock, 0.0)  # a socket with a time-out waits in recv whatever flags
    try:
        while b"\n" not in raw and len(raw) < 512:
            try:  # the server writes its line in pieces (vsftpd: "500 OOPS: ", then why)
                chunk: bytes | None = socket.socket.recv(sock, 512 - len(raw))
            except BlockingIOError:
                chunk = None
            except OSError:
                break
            if chunk == b"" or (chunk is None and not raw):
                break  # closed, or nothing at all waits: no words
            raw += chunk or b""
            left = deadline - time.monotonic()
            if chunk is None and (left <= 0 or not select.select([sock], [], [], left)[0]):
                break
    finally:
        try:
            socket.socket.settimeout(sock, timeout)
        except OSError:
            pass
    line = raw.split(b"\n")[0].strip()
    if not line or any(byte < 0x20 or byte > 0x7E for byte in line):
        return ""  # TLS records (an alert in flight), not words
    return line.decode("ascii")[:200]


def _read_reply(sock: socket.socket) -> str:
    data = b""
    while b"\n" not in data and len(data) < 8192:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def probe_fingerprint(conn: FtpConnection) -> str | None:
    """Fetch the server certificate's fingerprint without trusting it or sending credentials.

    Used after a verification failure, so the error can say exactly what to pin. Sends at most
    ``AUTH TLS`` (explicit mode); never USER or PASS. Any failure just gives ``None``.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    timeout = min(conn.effective_connect_timeout, 15.0)
    try:
        with socket.create_connection((conn.host, conn.port), timeout=timeout) as raw:
            if conn.tls is TLSMode.EXPLICIT:
                _read_reply(raw)
                raw.sendall(b"AUTH TLS\r\n")
                if not _read_reply(raw).startswith("234"):
                    return None
            with ctx.wrap_socket(raw, server_hostname=conn.host) as tls:
                der = tls.getpeercert(binary_form=True)
                return sha256_fingerprint(der) if der else None
    except (OSError, ssl.SSLError):
        return None
