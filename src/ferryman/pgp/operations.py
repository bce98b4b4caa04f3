"""The four OpenPGP operations -- encrypt, decrypt, sign, verify -- as gpg arguments and the
verdict on gpg's status, and the transfer transforms made of them (``put --encrypt-to``,
``get --decrypt``). Logs name keys by fingerprint, never by a passphrase or key material.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import ReadStream
from ..errors import ConfigError
from ..transfer.transform import StreamTransform, TransformedStream
from .gpg import GpgReadStream, Keyring
from .status import GpgStatus, Signature

__all__ = [
    "COMPRESSIONS",
    "PGP_SUFFIXES",
    "Decrypt",
    "Encrypt",
    "PgpTransform",
    "Sign",
    "SignMode",
    "Verify",
    "plain_name",
]

log = logging.getLogger("ferryman.pgp")

#: what OpenPGP files are called: ``x.csv.gpg`` (binary), ``x.csv.asc`` (armored), ``.pgp``
PGP_SUFFIXES = (".gpg", ".pgp", ".asc", ".sig")
#: gpg's compression algorithms, by the names ``--compress-algo`` takes
COMPRESSIONS = ("zip", "zlib", "bzip2", "none")


def plain_name(name: str) -> str:
    """``x.csv.gpg`` -> ``x.csv``; a name without an OpenPGP suffix gets ``.out``."""
    for suffix in PGP_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            if stem not in (".", ".."):
                return stem
    return f"{name}.out"


def _signers(found: list[Signature]) -> str:
    return ",".join(s.primary for s in found)


@dataclass(frozen=True)
class Encrypt:
    """Encrypt to ``recipients`` (fingerprints, best), optionally signed by ``sign_with``."""

    recipients: tuple[str, ...]
    sign_with: str | None = None
    armor: bool = False
    compression: str | None = None  #: one of COMPRESSIONS; None: gpg's default
    level: int | None = None  #: compression level 0-9

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ConfigError("encrypting needs at least one recipient (a key's fingerprint)")
        if self.compression is not None and self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"compression {self.compression!r} is not one of {', '.join(COMPRESSIONS)}"
            )

    @property
    def suffix(self) -> str:
        return ".asc" if self.armor else ".gpg"

    def args(self) -> list[str]:
        args = ["--encrypt"]
        for recipient in self.recipients:
            args += ["--recipient", recipient]
        if self.sign_with:
            args += ["--sign", "--local-user", self.sign_with]
        if self.armor:
            args.append("--armor")
        if self.compression is not None:
            args += ["--compress-algo", self.compression]
        if self.level is not None:
            args += ["--compress-level", str(self.level)]
        return [*args, "--output", "-"]

    def check(self, status: GpgStatus, what: str, passphrase_given: bool) -> str:
        signed = self.sign_with is not None
        status.check_made(what, encrypted=True, signed=signed, given=passphrase_given)
        log.info(
            "%s: encrypted to %s%s",
            what,
            ", ".join(self.recipients),
            f", signed by {', '.join(status.created)}" if signed else "",
        )
        return "pgp-encrypted" + ("+signed" if signed else "")


@dataclass(frozen=True)
class Decrypt:
    """Decrypt; check a signature when there is one. ``signed_by``: it must be there and by
    one of these keys (fingerprints); ``require_signature``: it must be there."""

    signed_by: tuple[str, ...] = ()
    require_signature: bool = False

    def args(self) -> list[str]:
        return ["--decrypt", "--output", "-"]

    def check(self, status: GpgStatus, what: str, passphrase_given: bool) -> str:
        status.check_decrypted(what, passphrase_given=passphrase_given)
        found = status.check_signatures(
            what, signed_by=self.signed_by, required=self.require_signature
        )
        if found:
            log.info("%s: decrypted; good signature by %s", what, _signers(found))
            return f"pgp-signed-by:{_signers(found)}"
        log.info("%s: decrypted (not signed)", what)
        return "pgp-decrypted"


class SignMode(enum.StrEnum):
    DETACHED = "detached"  #: a separate ``x.sig`` (``x.asc`` armored) beside the file
    INLINE = "inline"  #: one signed message holding the data (``x.gpg`` / ``x.asc``)
    CLEARSIGN = "clearsign"  #: readable text with the signature below it (``x.asc``)


@dataclass(frozen=True)
class Sign:
    key: str
    mode: SignMode = SignMode.DETACHED
    armor: bool = False

    @property
    def suffix(self) -> str:
        if self.mode is SignMode.DETACHED:
            return ".asc" if self.armor else ".sig"
        return ".asc" if self.armor or self.mode is SignMode.CLEARSIGN else ".gpg"

    def args(self) -> list[str]:
        flag = {
            SignMode.DETACHED: "--detach-sign",
            SignMode.INLINE: "--sign",
            SignMode.CLEARSIGN: "--clearsign",
        }[self.mode]
        armor = ["--armor"] if self.armor and self.mode is not SignMode.CLEARSIGN else []
        return [flag, *armor, "--local-user", self.key, "--output", "-"]

    def check(self, status: GpgStatus, what: str, passphrase_given: bool) -> str:
        status.check_made(what, encrypted=False, signed=True, given=passphrase_given)
        log.info("%s: signed by %s", what, ", ".join(status.created))
        return "pgp-signed"


@dataclass(frozen=True)
class Verify:
    """Check a signature; ``signed_by``: only these keys may have made it.
    ``detached``: the path of the signature file (the data is the stream); None: the
    stream is a signed message (inline or clearsigned), its data the output."""

    signed_by: tuple[str, ...] = ()
    detached: str | None = None

    def args(self) -> list[str]:
        if self.detached is not None:
            return ["--verify", self.detached, "-"]
        return ["--decrypt", "--output", "-"]  # prints a signed message's data and checks it

    def check(self, status: GpgStatus, what: str, passphrase_given: bool) -> str:
        if status.has("BEGIN_DECRYPTION") or status.has("ENC_TO"):
            status.check_decrypted(what, passphrase_given=passphrase_given)
        found = status.check_signatures(what, signed_by=self.signed_by, required=True)
        log.info("%s: good signature by %s", what, _signers(found))
        return f"pgp-signed-by:{_signers(found)}"


Operation = Encrypt | Decrypt | Sign | Verify


def run_through(
    keyring: Keyring, operation: Operation, source: ReadStream, what: str
) -> GpgReadStream:
    """gpg doing ``operation`` on ``source``; read the result from the stream returned, and
    close it for the verdict."""
    given = keyring.passphrase is not None
    return keyring.read_through(
        operation.args(), source, what, lambda status: operation.check(status, what, given)
    )


class PgpTransform(StreamTransform):
    """Encrypt or decrypt while transferring: gpg reads the source as it arrives, the copy
    writes gpg's output; nothing in between touches a disk."""

    def __init__(self, keyring: Keyring, operation: Encrypt | Decrypt) -> None:
        self.keyring, self.operation = keyring, operation

    def wrap(self, reader: ReadStream, source: str) -> TransformedStream:
        verb = "encrypting" if isinstance(self.operation, Encrypt) else "decrypting"
        return run_through(self.keyring, self.operation, reader, f"{verb} {source}")

    def target_name(self, name: str) -> str:
        if isinstance(self.operation, Encrypt):
            return name + self.operation.suffix
        return plain_name(name)


def fingerprints(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(v.strip() for v in values if v.strip())
