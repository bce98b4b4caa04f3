"""The job file's OpenPGP and archive steps (``encrypt``, ``decrypt``, ``sign``, ``verify``,
``compress``, ``extract``) and the OpenPGP options of ``send`` and ``receive``, as pydantic
models (docs/pgp.md). ``jobs.model`` lists them among the actions.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = [
    "CompressAction",
    "DecryptAction",
    "DecryptOnReceive",
    "EncryptAction",
    "EncryptOnSend",
    "ExtractAction",
    "SignAction",
    "VerifyAction",
]


def _keys(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(f"takes a list of keys (fingerprints): write [{value!r}]")
    return value


Keys = Annotated[list[str], BeforeValidator(_keys)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True
    )


class _Files(_Model):
    files: str | list[str] = Field(
        description="Files to work on: a list, a glob, or an expression such as "
        "'{{ steps.fetch.files }}'."
    )
    to: str | None = Field(
        None, description="Directory for the results; default: beside each file."
    )
    overwrite: bool = Field(False, description="Replace an existing result file.")


class _EncryptOptions(_Model):
    recipients: Keys = Field(
        min_length=1,
        description="Keys to encrypt to: fingerprints (best), key ids or e-mail addresses "
        "in the job's key ring.",
    )
    sign_with: str | None = Field(
        None, description="Also sign with this secret key (its fingerprint)."
    )
    armor: bool = Field(False, description="ASCII armor (NAME.asc) instead of binary (NAME.gpg).")
    compression: Literal["zip", "zlib", "bzip2", "none"] | None = Field(
        None, description="gpg's compression before encrypting; default: gpg's choice."
    )


class _SignerOptions(_Model):
    signed_by: Keys = Field(
        [],
        description="Require a good signature by one of these keys (fingerprints); any "
        "other signer fails the file.",
    )


class EncryptOnSend(_EncryptOptions):
    """``send``'s ``encrypt``: gpg encrypts while uploading; no plaintext copy is written."""


class DecryptOnReceive(_SignerOptions):
    """``receive``'s ``decrypt``: gpg decrypts while downloading; the file appears only
    after the transfer and gpg's checks (integrity, signature) succeeded."""

    require_signature: bool = Field(
        False, description="Fail files that are not signed (signed_by implies it)."
    )


class EncryptAction(_Files, _EncryptOptions):
    """Encrypt files to recipients' public keys (NAME.gpg, or NAME.asc with armor)."""


class DecryptAction(_Files, _SignerOptions):
    """Decrypt files (NAME.gpg -> NAME), checking a signature when there is one."""

    require_signature: bool = Field(
        False, description="Fail files that are not signed (signed_by implies it)."
    )


class SignAction(_Files):
    """Sign files: detached NAME.sig (.asc armored), inline NAME.gpg or clearsigned NAME.asc.

    The signing key is a secret key of the job's key ring; its passphrase comes from pgp:."""

    key: str = Field(description="The secret key to sign with (its fingerprint).")
    mode: Literal["detached", "inline", "clearsign"] = Field(
        "detached", description="detached, inline or clearsign."
    )
    armor: bool = Field(False, description="ASCII armor.")


class VerifyAction(_Files, _SignerOptions):
    """Verify signatures: detached (NAME.sig beside NAME) or inline (its data written out).

    An inline signed message NAME.gpg gives NAME once its signature is good."""

    signature: Literal["detached", "inline"] = Field(
        "detached", description="detached: FILE + suffix holds the signature; inline: FILE does."
    )
    suffix: str | None = Field(
        None, description="The detached signature's suffix; default .sig, else .asc."
    )


class CompressAction(_Files):
    """Compress files: gzip (each NAME -> NAME.gz) or zip (all into one archive)."""

    format: Literal["gzip", "zip"] = Field("gzip", description="gzip or zip.")
    archive: str | None = Field(None, description="zip: the archive to write (out/batch.zip).")
    level: int = Field(6, ge=0, le=9, description="Compression level, 0 (none) to 9 (most).")

    @model_validator(mode="after")
    def _zip_needs_archive(self) -> Self:
        if self.format == "zip" and not self.archive:
            raise ValueError("format zip puts every file into one archive: give archive: FILE.zip")
        if self.format == "gzip" and self.archive:
            raise ValueError("archive: is for format zip; gzip makes NAME.gz per file")
        return self


class ExtractAction(_Files):
    """Extract archives: NAME.gz -> NAME, NAME.zip -> its members (hostile names refused)."""
