"""The OpenPGP and archive steps: ``encrypt``, ``decrypt``, ``sign``, ``verify``, ``compress``,
``extract``, and the ``encrypt``/``decrypt`` options of ``send``/``receive``.

Each step works through its files in order; each result is written under a temporary name
and published whole (:class:`ferryman.localfiles.LocalOutput`) only once gpg's verdict (or
the archive's checks) is good. The first failing file stops the step with its error; the
results published before it stay. The key ring is the job's (``pgp:``), made ready (keys
imported, passphrase resolved) when a step first needs it.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..archives import compress_files, extract_file, gzip_file
from ..backends.local import LocalBackend
from ..errors import ConfigError, FerrymanError, NotFoundError
from ..localfiles import LocalOutput
from ..pgp import (
    Decrypt,
    Encrypt,
    GpgReadStream,
    Keyring,
    PgpTransform,
    Sign,
    SignMode,
    Verify,
    keyring_for,
    plain_name,
)
from ..pgp.operations import Operation, run_through
from ..transfer.transform import StreamTransform
from .context import RunContext
from .file_steps import StepOutcome
from .model import TransferAction
from .pgp_model import (
    CompressAction,
    DecryptAction,
    EncryptAction,
    ExtractAction,
    SignAction,
    VerifyAction,
)

__all__ = ["PGP_STEPS", "job_keyring", "transfer_transform"]

log = logging.getLogger("ferryman.jobs")

_CHUNK = 256 * 1024


def job_keyring(ctx: RunContext) -> Keyring:
    """The job's key ring, made ready the first time a step asks."""
    if ctx.keyring is None:
        settings = ctx.loaded.job.pgp
        ctx.keyring = keyring_for(settings.relative_to(ctx.loaded.base) if settings else None)
    keyring: Keyring = ctx.keyring
    return keyring


def transfer_transform(
    ctx: RunContext, action: TransferAction, upload: bool
) -> StreamTransform | None:
    """The gpg transform of a ``send`` with ``encrypt`` or a ``receive`` with ``decrypt``."""
    if action.encrypt is None and action.decrypt is None:
        return None
    if action.encrypt is not None and not upload:
        raise ConfigError(
            "encrypt: is an option of send; a receive decrypts (decrypt:)",
            hint="to encrypt received files, add an encrypt step after the receive",
        )
    if action.decrypt is not None and upload:
        raise ConfigError(
            "decrypt: is an option of receive; a send encrypts (encrypt:)",
            hint="to decrypt local files before sending them, add a decrypt step",
        )
    if action.ascii:
        raise ConfigError("ascii: changes line ends, which encrypted data must keep; drop it")
    if action.encrypt is not None:
        e = action.encrypt
        operation: Encrypt | Decrypt = Encrypt(
            tuple(e.recipients), e.sign_with, e.armor, e.compression
        )
    else:
        assert action.decrypt is not None
        d = action.decrypt
        operation = Decrypt(tuple(d.signed_by), d.require_signature)
    return PgpTransform(job_keyring(ctx), operation)


def _files(ctx: RunContext, files: str | list[str]) -> list[Path]:
    """The local files a step names: a list, or a glob relative to the job file."""
    if isinstance(files, list):
        found = [ctx.local_path(f) for f in files]
    else:
        pattern = str(ctx.local_path(files))
        found = (
            [Path(p) for p in sorted(glob.glob(pattern))]
            if glob.has_magic(pattern)
            else [Path(pattern)]
        )
    for path in found:
        if not path.is_file():
            raise NotFoundError(f"{path}: no such file", hint="check the step's files:")
    return found


def _target(ctx: RunContext, to: str | None, source: Path, name: str) -> Path:
    directory = ctx.local_path(to) if to else source.parent
    return directory / name


def _through(
    ctx: RunContext, operation: Operation, source: Path, target: Path | None, overwrite: bool
) -> GpgReadStream:
    """gpg doing ``operation`` on ``source``, its output published as ``target`` (None: no
    output is kept, as for a detached signature's check); returns the gpg stream, closed."""
    keyring = job_keyring(ctx)
    what = f"{type(operation).__name__.lower()} {source}"
    out = LocalOutput(target, overwrite=overwrite) if target is not None else None
    try:
        stream = run_through(keyring, operation, LocalBackend().open_read(str(source)), what)
        try:
            buffer = memoryview(bytearray(_CHUNK))
            while n := stream.readinto(buffer):
                if out is not None:
                    out.stream.write(buffer[:n])
            stream.close()  # gpg's verdict, before anything is published
        except BaseException:
            stream.abort()
            raise
        if out is not None:
            out.publish()
    except BaseException:
        if out is not None:
            out.discard()
        raise
    return stream


def _each(
    ctx: RunContext,
    files: list[Path],
    work: Callable[[Path], tuple[Path | None, list[str]]],
) -> StepOutcome:
    """Run ``work`` on each file (it returns the file made and the signers found: the result
    has each file's first signer, or None); stop at the first failure."""
    result: dict[str, Any] = {"files": [], "sources": [], "count": 0, "signers": []}
    if ctx.dry_run:
        result["sources"] = [str(f) for f in files]
        return StepOutcome(result)
    for source in files:
        try:
            made, signers = work(source)
        except FerrymanError as err:
            return StepOutcome(result, err)
        if made is not None:
            result["files"].append(str(made))
        result["sources"].append(str(source))
        result["signers"].append(signers[0] if signers else None)
        result["count"] += 1
    return StepOutcome(result)


def _signers(stream: GpgReadStream) -> list[str]:
    return [s.primary for s in stream.status.signatures] if stream.status else []


def encrypt_step(ctx: RunContext, action: EncryptAction) -> StepOutcome:
    operation = Encrypt(
        tuple(action.recipients), action.sign_with, action.armor, action.compression
    )

    def work(source: Path) -> tuple[Path | None, list[str]]:
        target = _target(ctx, action.to, source, source.name + operation.suffix)
        _through(ctx, operation, source, target, action.overwrite)
        return target, []

    return _each(ctx, _files(ctx, action.files), work)


def decrypt_step(ctx: RunContext, action: DecryptAction) -> StepOutcome:
    operation = Decrypt(tuple(action.signed_by), action.require_signature)

    def work(source: Path) -> tuple[Path | None, list[str]]:
        target = _target(ctx, action.to, source, plain_name(source.name))
        stream = _through(ctx, operation, source, target, action.overwrite)
        return target, _signers(stream)

    return _each(ctx, _files(ctx, action.files), work)


def sign_step(ctx: RunContext, action: SignAction) -> StepOutcome:
    operation = Sign(action.key, SignMode(action.mode), action.armor)

    def work(source: Path) -> tuple[Path | None, list[str]]:
        target = _target(ctx, action.to, source, source.name + operation.suffix)
        _through(ctx, operation, source, target, action.overwrite)
        return target, []

    return _each(ctx, _files(ctx, action.files), work)


def _signature_of(source: Path, suffix: str | None) -> Path:
    for candidate in [suffix] if suffix else [".sig", ".asc"]:
        path = source.with_name(source.name + candidate)
        if path.is_file():
            return path
    raise NotFoundError(
        f"{source}: no detached signature beside it ({source.name}{suffix or '.sig'})",
        hint="receive the signature with the file, or set suffix: / signature: inline",
    )


def verify_step(ctx: RunContext, action: VerifyAction) -> StepOutcome:
    signed_by = tuple(action.signed_by)
    files = _files(ctx, action.files)
    if action.signature == "detached":  # a glob may take the signatures too: they are not data
        suffixes = (action.suffix,) if action.suffix else (".sig", ".asc")
        names = {str(f) for f in files}
        files = [
            f
            for f in files
            if not any(str(f).endswith(s) and str(f)[: -len(s)] in names for s in suffixes)
        ]

    def work(source: Path) -> tuple[Path | None, list[str]]:
        if action.signature == "detached":
            signature = _signature_of(source, action.suffix)
            stream = _through(ctx, Verify(signed_by, str(signature)), source, None, False)
            return None, _signers(stream)
        target = _target(ctx, action.to, source, plain_name(source.name))
        stream = _through(ctx, Verify(signed_by), source, target, action.overwrite)
        return target, _signers(stream)

    return _each(ctx, files, work)


def compress_step(ctx: RunContext, action: CompressAction) -> StepOutcome:
    files = _files(ctx, action.files)
    if action.format == "zip":
        assert action.archive is not None
        archive = ctx.local_path(action.archive)
        names = [f.name for f in files]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ConfigError(
                f"compress: several files are named {doubled[0]!r}; a zip holds one of each name",
                hint="compress them into separate archives",
            )
        result: dict[str, Any] = {"files": [str(archive)], "sources": [str(f) for f in files]}
        result["count"] = len(files)
        if not ctx.dry_run:
            result["bytes"] = compress_files(
                [(f, f.name) for f in files],
                archive,
                level=action.level,
                overwrite=action.overwrite,
            )
        return StepOutcome(result)

    def work(source: Path) -> tuple[Path | None, list[str]]:
        target = _target(ctx, action.to, source, source.name + ".gz")
        gzip_file(source, target, level=action.level, overwrite=action.overwrite)
        return target, []

    return _each(ctx, files, work)


def extract_step(ctx: RunContext, action: ExtractAction) -> StepOutcome:
    files = _files(ctx, action.files)
    result: dict[str, Any] = {"files": [], "sources": [], "count": 0}
    if ctx.dry_run:
        result["sources"] = [str(f) for f in files]
        return StepOutcome(result)
    for archive in files:
        into = ctx.local_path(action.to) if action.to else archive.parent
        try:
            made = extract_file(archive, into, overwrite=action.overwrite)
        except FerrymanError as err:
            return StepOutcome(result, err)
        result["files"] += [str(p) for p in made]
        result["sources"].append(str(archive))
        result["count"] += 1
    return StepOutcome(result)


PGP_STEPS: dict[str, Callable[[RunContext, Any], StepOutcome]] = {
    "encrypt": encrypt_step,
    "decrypt": decrypt_step,
    "sign": sign_step,
    "verify": verify_step,
    "compress": compress_step,
    "extract": extract_step,
}
