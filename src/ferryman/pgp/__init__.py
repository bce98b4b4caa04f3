"""OpenPGP through GnuPG's ``gpg``: encrypt, decrypt, sign and verify files, as steps and
on the way of a transfer (docs/pgp.md).

Importing this package starts nothing; gpg runs only when an operation is asked for.
"""

from __future__ import annotations

from .gpg import GpgReadStream, Keyring
from .operations import (
    COMPRESSIONS,
    PGP_SUFFIXES,
    Decrypt,
    Encrypt,
    PgpTransform,
    Sign,
    SignMode,
    Verify,
    plain_name,
)
from .settings import PgpSettings, keyring_for, load_pgp_settings
from .status import GpgStatus, Signature

__all__ = [
    "COMPRESSIONS",
    "PGP_SUFFIXES",
    "Decrypt",
    "Encrypt",
    "GpgReadStream",
    "GpgStatus",
    "Keyring",
    "PgpSettings",
    "PgpTransform",
    "Sign",
    "SignMode",
    "Signature",
    "Verify",
    "keyring_for",
    "load_pgp_settings",
    "plain_name",
]
