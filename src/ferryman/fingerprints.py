"""SHA-256 certificate fingerprints as pinning uses them (stdlib only: loaded with every
connection, unlike the test PKI in :mod:`ferryman.certs`, which needs ``cryptography``)."""

from __future__ import annotations

import hashlib
import re

__all__ = ["normalize_fingerprint", "sha256_fingerprint"]

_PREFIX_RE = re.compile(r"^\s*sha-?256\s*[:/=]", re.IGNORECASE)
_SEPARATORS_RE = re.compile(r"[\s:]+")
_HEX64_RE = re.compile(r"[0-9A-Fa-f]{64}")


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def sha256_fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate as ``AB:CD:...`` (upper case, 32 pairs)."""
    return _colon_hex(hashlib.sha256(der).digest())


def normalize_fingerprint(text: str) -> str:
    """Bring a SHA-256 fingerprint written in any usual way to the canonical ``AB:CD:...`` form.

    Accepts 64 hex digits in any case, with or without colons or spaces between them, and an
    optional ``SHA256:`` / ``sha256/`` prefix. Raises :class:`ValueError` for anything else.
    """
    body = _PREFIX_RE.sub("", text, count=1)
    digits = _SEPARATORS_RE.sub("", body)
    if not _HEX64_RE.fullmatch(digits):
        shown = text if len(text) <= 120 else text[:117] + "..."
        if re.fullmatch(r"[0-9A-Fa-f]*", digits):
            found = f"{len(digits)} hex digits"
        else:
            found = "characters that are not hex digits"
        raise ValueError(
            f"not a SHA-256 fingerprint: {shown!r} has {found}; expected 32 bytes written as "
            "64 hex digits, e.g. AB:CD:EF:... (an optional 'SHA256:' prefix is allowed; "
            "base64 fingerprints are not)"
        )
    return _colon_hex(bytes.fromhex(digits))
