"""What ``gpg --status-fd`` says, and what it means for ferryman: success or one clear error.

gpg writes machine-readable lines (``[GNUPG:] KEYWORD ARGS``, doc/DETAILS in GnuPG's
sources) beside its human messages. The verdict is built from them and from the exit
status, never from the human text, and it is fail-safe: an operation succeeds only when the
lines that prove success are there *and* nothing says otherwise. That matters because gpg
streams: a tampered message may print ``GOODSIG`` (the signature packet came before the
damage) and only then ``BADMDC``; its plaintext has already been written by then, which is
why ferryman decrypts into a temporary name and publishes only after this verdict.

Key words used:

- decrypting: ``DECRYPTION_OKAY`` and (``GOODMDC`` or an AEAD packet, which authenticates
  itself) are required; ``DECRYPTION_FAILED``, ``BADMDC``, ``NO_SECKEY``, ``ERROR`` with a
  passphrase code, ``NEED_PASSPHRASE`` without a passphrase, ``NODATA`` refuse;
- signatures: ``GOODSIG`` + ``VALIDSIG <fingerprint> ... <primary fingerprint>`` is a good
  signature; ``BADSIG`` is tampering; ``ERRSIG`` + ``NO_PUBKEY`` a signer whose public key
  the key ring lacks; ``EXPKEYSIG``/``REVKEYSIG`` a signature by an expired or revoked key;
- encrypting and signing: ``INV_RECP`` and ``INV_SGNR`` name unusable keys,
  ``END_ENCRYPTION`` and ``SIG_CREATED`` prove the work was done.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import (
    FerrymanError,
    PgpError,
    PgpKeyError,
    PgpPassphraseError,
    SignatureError,
)

__all__ = ["GpgStatus", "Signature", "normalize_fingerprint"]

_PREFIX = "[GNUPG:] "
#: libgpg-error codes (the low 16 bits of an ERROR line's code) that mean "the passphrase"
_BAD_PASSPHRASE = 11
_NO_PASSPHRASE = 67  #: GPG_ERR_NO_PASSPHRASE
_CANCELED = 99
#: INV_RECP / INV_SGNR reason codes (doc/DETAILS)
_INVALID_REASONS = {
    "0": "no specific reason given",
    "1": "not found in the key ring",
    "2": "ambiguous: several keys match",
    "3": "wrong key usage (it cannot encrypt or sign)",
    "4": "the key is revoked",
    "5": "the key is expired",
    "6": "no certificate revocation list known",
    "7": "the certificate revocation list is too old",
    "8": "policy mismatch",
    "9": "not a secret key",
    "10": "the key is not trusted",
    "11": "a certificate is missing",
    "12": "an issuer certificate is missing",
    "13": "the key is disabled",
    "14": "the syntax of the user id is not valid",
}


def normalize_fingerprint(key: str) -> str:
    """A fingerprint or key id as gpg prints it: upper case, no spaces, no ``0x``."""
    text = key.replace(" ", "").upper()
    return text[2:] if text.startswith("0X") else text


@dataclass(frozen=True)
class Signature:
    """One good signature: the signing (sub)key's fingerprint and its primary key's."""

    fingerprint: str
    primary: str
    user: str = ""

    def matches(self, wanted: Iterable[str]) -> bool:
        """Whether one of ``wanted`` (fingerprints, or long key ids: their last 16 digits)
        names this signature's key or its primary key."""
        for key in map(normalize_fingerprint, wanted):
            if len(key) < 16:
                continue  # short ids collide by design; never accepted as a signer
            if self.fingerprint.endswith(key) or self.primary.endswith(key):
                return True
        return False


@dataclass
class GpgStatus:
    """The parsed status lines of one gpg run, and its exit status."""

    lines: list[tuple[str, list[str]]] = field(default_factory=list)
    returncode: int | None = None

    @classmethod
    def parse(cls, text: str, returncode: int | None = None) -> GpgStatus:
        status = cls(returncode=returncode)
        for line in text.splitlines():
            if line.startswith(_PREFIX):
                keyword, *args = line[len(_PREFIX) :].split(" ")
                status.lines.append((keyword, args))
        return status

    def has(self, keyword: str) -> bool:
        return any(k == keyword for k, _ in self.lines)

    def args(self, keyword: str) -> list[list[str]]:
        return [a for k, a in self.lines if k == keyword]

    # --- what happened ----------------------------------------------------------------------

    @property
    def signatures(self) -> list[Signature]:
        """The good signatures (``VALIDSIG``), in order."""
        users = [" ".join(a[1:]) for a in self.args("GOODSIG")]
        found = []
        for index, args in enumerate(self.args("VALIDSIG")):
            primary = args[9] if len(args) > 9 else args[0]
            user = users[index] if index < len(users) else ""
            found.append(Signature(args[0], primary, user))
        return found

    @property
    def created(self) -> list[str]:
        """Fingerprints of the keys that made signatures (``SIG_CREATED``)."""
        return [a[5] for a in self.args("SIG_CREATED") if len(a) > 5]

    def _error_codes(self) -> list[int]:
        codes = []
        for args in self.args("ERROR") + self.args("FAILURE"):
            try:
                codes.append(int(args[-1]) & 0xFFFF)
            except (ValueError, IndexError):
                continue
        return codes

    # --- verdicts ---------------------------------------------------------------------------

    def passphrase_problem(self, what: str, given: bool) -> FerrymanError | None:
        codes = self._error_codes()
        if _BAD_PASSPHRASE in codes or self.has("BAD_PASSPHRASE"):
            return PgpPassphraseError(
                f"{what}: the passphrase of the secret key is wrong",
                hint="check the passphrase source (pgp: passphrase_env, passphrase_file, "
                "passphrase_keyring)",
            )
        asked = self.has("NEED_PASSPHRASE") or _NO_PASSPHRASE in codes or _CANCELED in codes
        if asked and not given and not self.has("DECRYPTION_OKAY") and not self.created:
            return PgpPassphraseError(
                f"{what}: the secret key is protected by a passphrase, and none was given",
                hint="give it with pgp: passphrase_env, passphrase_file or passphrase_keyring "
                "(--pgp-passphrase-env / --pgp-passphrase-file on the command line)",
            )
        return None

    def invalid_keys(self, what: str) -> FerrymanError | None:
        for keyword, role in (("INV_RECP", "recipient"), ("INV_SGNR", "signing key")):
            for args in self.args(keyword):
                reason = _INVALID_REASONS.get(args[0] if args else "0", "unusable")
                name = args[1] if len(args) > 1 else "?"
                return PgpKeyError(
                    f"{what}: the {role} {name} cannot be used: {reason}",
                    hint="import the key into the job's key ring (pgp: gnupg_home, import_keys) "
                    "and name it by its fingerprint",
                )
        return None

    def check_decrypted(self, what: str, *, passphrase_given: bool) -> None:
        """Raise unless the data was decrypted and its integrity checked."""
        if self.has("NO_SECKEY") and not self.has("DECRYPTION_OKAY"):
            ids = ", ".join(a[0] for a in self.args("NO_SECKEY"))
            raise PgpKeyError(
                f"{what}: no secret key to decrypt it: it is encrypted to key(s) {ids}, "
                "which the key ring lacks",
                hint="import the secret key of one of these recipients into the job's key ring, "
                "or ask the sender to encrypt to your key",
            )
        problem = self.passphrase_problem(what, passphrase_given)
        if problem is not None:
            raise problem
        if self.has("NODATA") and not self.has("BEGIN_DECRYPTION"):
            raise SignatureError(
                f"{what}: not OpenPGP data (or an empty file)",
                hint="check that the sender encrypted it; it may be plain text or damaged",
            )
        if self.has("BADMDC") or self.has("BADSIG"):
            raise _tampered(what)
        integrity = self.has("GOODMDC") or any(
            len(a) > 2 and a[2] not in ("", "0") for a in self.args("DECRYPTION_INFO")
        )  # DECRYPTION_INFO's third field is the AEAD algorithm: AEAD packets check themselves
        ok = self.has("DECRYPTION_OKAY") and not self.has("DECRYPTION_FAILED")
        # a signature gpg could not check makes it exit 2: check_signatures says why
        exit_ok = self.returncode == 0 or self.has("ERRSIG")
        if not (ok and integrity and exit_ok):
            if self.has("DECRYPTION_OKAY") and not integrity:
                raise SignatureError(
                    f"{what}: the data has no integrity protection (no MDC), so tampering "
                    "cannot be ruled out",
                    hint="ask the sender to use a current OpenPGP program (any gpg since 2.2)",
                )
            raise _tampered(what)

    def check_signatures(
        self, what: str, *, signed_by: Sequence[str], required: bool
    ) -> list[Signature]:
        """The good signatures; raise for a bad or uncheckable one, for a required one that is
        missing, and for one by an unexpected key."""
        if self.has("BADSIG"):
            raise _tampered(what)
        for keyword, state in (("EXPKEYSIG", "expired"), ("REVKEYSIG", "revoked")):
            for args in self.args(keyword):
                raise SignatureError(
                    f"{what}: signed by key {args[0]}, which is {state}",
                    hint="ask the sender for a signature by a valid key, or import its renewed key",
                )
        for args in self.args("ERRSIG"):
            missing = args[5] == "9" if len(args) > 5 else False
            key = args[-1] if len(args) > 6 and args[-1] not in ("", "-") else args[0]
            if missing:
                raise PgpKeyError(
                    f"{what}: signed by key {key}, whose public key the key ring lacks, so "
                    "the signature cannot be checked",
                    hint="import the signer's public key into the job's key ring "
                    "(pgp: import_keys)",
                )
            raise SignatureError(
                f"{what}: the signature by key {key} cannot be checked (algorithm or "
                "format not supported)",
                hint="ask the sender to sign with a current OpenPGP program",
            )
        found = self.signatures
        if (required or signed_by) and not found:
            raise SignatureError(
                f"{what}: not signed, but a signature is required",
                hint="ask the sender to sign it, or drop the signature requirement",
            )
        if signed_by:
            unexpected = [s for s in found if not s.matches(signed_by)]
            if unexpected or not found:
                who = ", ".join(s.primary for s in unexpected)
                raise SignatureError(
                    f"{what}: signed by an unexpected key {who}; expected {', '.join(signed_by)}",
                    hint="the file is not from whom it should be; if the partner changed "
                    "keys, add the new fingerprint to signed_by",
                )
        if self.returncode not in (0, None):
            raise _tampered(what)
        return found

    def check_made(self, what: str, *, encrypted: bool, signed: bool, given: bool) -> None:
        """Raise unless gpg encrypted and/or signed as asked."""
        for problem in (self.invalid_keys(what), self.passphrase_problem(what, given)):
            if problem is not None:
                raise problem
        done = (not encrypted or self.has("END_ENCRYPTION")) and (not signed or self.created)
        if not done or self.returncode != 0:
            raise PgpError(
                f"{what}: gpg failed (exit status {self.returncode})",
                hint="see the log for gpg's own message; check the keys with "
                "gpg --homedir HOME --list-keys",
            )


def _tampered(what: str) -> SignatureError:
    return SignatureError(
        f"{what}: the OpenPGP data is damaged or was tampered with (its signature or "
        "integrity check failed)",
        hint="nothing was published; ask the sender for the file again",
    )
