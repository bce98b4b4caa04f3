"""The verdict on gpg's status lines (``ferryman.pgp.status``) for what the real-gpg tests
cannot easily make: expired and revoked signers, AEAD data, short key ids, an old message
without integrity protection, and the fail-safe default for anything unexpected."""

from __future__ import annotations

import pytest

from ferryman.errors import PgpKeyError, SignatureError
from ferryman.pgp.status import GpgStatus, Signature

FPR = "E714B0D0596CD8BD5A7A7E2DA71EF0002111B6D3"
SUB = "2B5B57E663B03BAE8C4B9C232C36653215278334"


def status(*lines: str, code: int = 0) -> GpgStatus:
    return GpgStatus.parse("\n".join(f"[GNUPG:] {line}" for line in lines) + "\n", code)


GOOD = [
    "BEGIN_DECRYPTION",
    "DECRYPTION_INFO 2 9 0",
    "PLAINTEXT 62 0 x",
    "DECRYPTION_OKAY",
    "GOODMDC",
    "END_DECRYPTION",
]


def test_good_decryption() -> None:
    status(*GOOD).check_decrypted("x", passphrase_given=True)


def test_aead_needs_no_mdc() -> None:
    lines = [line for line in GOOD if line != "GOODMDC"]
    lines[1] = "DECRYPTION_INFO 0 9 2"  # AEAD algorithm 2 (OCB)
    status(*lines).check_decrypted("x", passphrase_given=True)


def test_no_integrity_protection_is_refused() -> None:
    lines = [line for line in GOOD if line != "GOODMDC"]
    with pytest.raises(SignatureError, match="no integrity protection"):
        status(*lines).check_decrypted("x", passphrase_given=True)


@pytest.mark.parametrize(
    "lines",
    [
        [*GOOD, "BADMDC"],
        [*GOOD[:-1], "DECRYPTION_FAILED", "END_DECRYPTION"],
        GOOD[:3],  # gpg ended early, no verdict at all
        [],
    ],
)
def test_anything_short_of_proof_is_refused(lines: list[str]) -> None:
    with pytest.raises(SignatureError):
        status(*lines).check_decrypted("x", passphrase_given=True)


def test_a_failing_exit_status_is_refused_even_with_good_lines() -> None:
    with pytest.raises(SignatureError):
        status(*GOOD, code=2).check_decrypted("x", passphrase_given=True)


@pytest.mark.parametrize(("keyword", "word"), [("EXPKEYSIG", "expired"), ("REVKEYSIG", "revoked")])
def test_expired_and_revoked_signers(keyword: str, word: str) -> None:
    with pytest.raises(SignatureError, match=word):
        status(*GOOD, f"{keyword} A71EF0002111B6D3 Alice").check_signatures(
            "x", signed_by=(), required=False
        )


def test_unknown_signer_key() -> None:
    lines = [*GOOD, f"ERRSIG A71EF0002111B6D3 22 10 00 1796401664 9 {FPR}", "NO_PUBKEY X"]
    with pytest.raises(PgpKeyError, match=FPR):
        status(*lines, code=2).check_signatures("x", signed_by=(), required=False)


def test_signatures_and_pinning() -> None:
    lines = [
        *GOOD,
        "GOODSIG A71EF0002111B6D3 Alice",
        f"VALIDSIG {SUB} 2026-12-04 0 0 4 0 22 10 00 {FPR}",
    ]
    found = status(*lines).check_signatures("x", signed_by=(FPR,), required=True)
    assert found == [Signature(SUB, FPR, "Alice")]
    assert found[0].matches([FPR.lower()]) and found[0].matches(["0x" + FPR[-16:]])
    assert not found[0].matches([FPR[-8:]])  # a short id collides by design: never a pin
    with pytest.raises(SignatureError, match="unexpected key"):
        status(*lines).check_signatures("x", signed_by=(FPR[-8:],), required=True)
