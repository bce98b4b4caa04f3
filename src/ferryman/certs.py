"""A throw-away test PKI (fingerprints for pinning are in :mod:`ferryman.fingerprints`).

:func:`make_test_pki` and :func:`make_client_cert` build the small certificate authority that
the embedded FTPS server of ``ferryman demo`` and the test suite present. Nothing here is meant
for production certificates: keys are unencrypted files (mode 0600) in the given directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .fingerprints import sha256_fingerprint

__all__ = [
    "PkiFiles",
    "make_client_cert",
    "make_test_pki",
]

_VALIDITY = dt.timedelta(days=730)


@dataclass(frozen=True, slots=True)
class PkiFiles:
    """The PEM files of a test PKI made by :func:`make_test_pki`.

    ``server_fingerprint`` and ``ca_fingerprint`` are SHA-256 fingerprints (``AB:CD:...``) of the
    DER certificates. ``server_chain`` holds the server certificate followed by its private key
    in one file (what vsftpd's ``rsa_cert_file`` accepts). ``ca_key`` signs further certificates
    (:func:`make_client_cert`).
    """

    ca_cert: Path
    server_cert: Path
    server_key: Path
    server_fingerprint: str
    ca_fingerprint: str
    ca_key: Path
    server_chain: Path


def _write(path: Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to ``path``; private files get mode 0600 from the moment they exist."""
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)  # the file may have existed with other permissions
        fh.write(data)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ferryman test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _leaf(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_test_pki(
    directory: Path, *, hosts: Sequence[str] = ("127.0.0.1", "localhost")
) -> PkiFiles:
    """Create a test CA and a server certificate signed by it, as PEM files in ``directory``.

    The server certificate names every entry of ``hosts`` in its SubjectAltName (IP addresses
    as iPAddress, anything else as dNSName) and has the first one as common name. Keys are EC
    P-256; certificates are valid from a day ago for about two years. Files written:
    ``ca.crt``, ``ca.key``, ``server.crt``, ``server.key`` and ``server-chain.pem``.
    """
    if isinstance(hosts, str) or not hosts:
        raise ValueError("hosts must be a non-empty sequence of host names or IP addresses")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("ferryman test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + _VALIDITY + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _leaf(
        hosts[0], server_key, ca, ca_key, usage=ExtendedKeyUsageOID.SERVER_AUTH, san=_san(hosts)
    )

    server_pem = server.public_bytes(serialization.Encoding.PEM)
    server_key_pem = _key_pem(server_key)
    return PkiFiles(
        ca_cert=_write(directory / "ca.crt", ca.public_bytes(serialization.Encoding.PEM)),
        server_cert=_write(directory / "server.crt", server_pem),
        server_key=_write(directory / "server.key", server_key_pem, private=True),
        server_fingerprint=sha256_fingerprint(server.public_bytes(serialization.Encoding.DER)),
        ca_fingerprint=sha256_fingerprint(ca.public_bytes(serialization.Encoding.DER)),
        ca_key=_write(directory / "ca.key", _key_pem(ca_key), private=True),
        server_chain=_write(
            directory / "server-chain.pem", server_pem + server_key_pem, private=True
        ),
    )


def make_client_cert(directory: Path, ca: PkiFiles) -> tuple[Path, Path]:
    """Create a client certificate (TLS client authentication) signed by the CA of ``ca``.

    Returns ``(certificate, key)``: ``client.crt`` and ``client.key`` (mode 0600) in
    ``directory``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca.ca_key} is not the EC key of a ferryman test CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _leaf(
        "ferryman test client",
        key,
        ca_cert,
        ca_key,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        san=None,
    )
    return (
        _write(directory / "client.crt", cert.public_bytes(serialization.Encoding.PEM)),
        _write(directory / "client.key", _key_pem(key), private=True),
    )
