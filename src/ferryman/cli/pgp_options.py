"""``put --encrypt-to`` and ``get --decrypt``: gpg on the way of a transfer (docs/pgp.md).

The key ring and passphrase come from ``--gnupg-home`` / ``--pgp-passphrase-env`` /
``--pgp-passphrase-file``, else from the connections file's ``pgp:`` section, else gpg's
defaults (``$GNUPGHOME``, ``~/.gnupg``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from ..connections_file import default_connections_path
from ..transfer.transform import StreamTransform

__all__ = ["PgpChoices", "pgp_options"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PgpChoices:
    encrypt_to: tuple[str, ...] = ()
    sign_with: str | None = None
    armor: bool = False
    compress_algo: str | None = None
    decrypt: bool = False
    signed_by: tuple[str, ...] = ()
    require_signature: bool = False
    gnupg_home: Path | None = None
    pgp_passphrase_env: str | None = None
    pgp_passphrase_file: Path | None = None

    @property
    def wanted(self) -> bool:
        return bool(self.encrypt_to or self.decrypt)

    def transform(self, connections: Path | None) -> StreamTransform | None:
        """The gpg transform asked for, or None; gpg's key ring made ready."""
        if not self.wanted:
            return None
        from ..pgp import (  # noqa: PLC0415 - only when asked
            Decrypt,
            Encrypt,
            PgpSettings,
            PgpTransform,
            keyring_for,
            load_pgp_settings,
        )

        settings = load_pgp_settings(connections or default_connections_path()) or PgpSettings()
        given: dict[str, object] = {}
        if self.gnupg_home is not None:
            given["gnupg_home"] = self.gnupg_home.expanduser().resolve()
        if self.pgp_passphrase_env or self.pgp_passphrase_file:  # replaces the file's source
            given["passphrase_env"] = self.pgp_passphrase_env
            given["passphrase_file"] = self.pgp_passphrase_file
            given["passphrase_keyring"] = None
        settings = settings.model_copy(update=given)
        keyring = keyring_for(settings)
        if self.encrypt_to:
            operation: Encrypt | Decrypt = Encrypt(
                self.encrypt_to, self.sign_with, self.armor, self.compress_algo
            )
        else:
            operation = Decrypt(self.signed_by, self.require_signature)
        return PgpTransform(keyring, operation)


_COMMON = [
    click.option(
        "--gnupg-home",
        type=click.Path(path_type=Path, file_okay=False),
        help="The key ring's directory (default: the connections file's pgp: gnupg_home, "
        "else $GNUPGHOME or ~/.gnupg).",
    ),
    click.option(
        "--pgp-passphrase-env",
        metavar="NAME",
        help="Environment variable holding the secret key's passphrase.",
    ),
    click.option(
        "--pgp-passphrase-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="File whose first line is the secret key's passphrase.",
    ),
]
_PUT = [
    click.option(
        "--encrypt-to",
        multiple=True,
        metavar="KEY",
        help="Encrypt with gpg while uploading, to this key (a fingerprint; repeat for "
        "several); files get .gpg (.asc with --armor).",
    ),
    click.option("--sign-with", metavar="KEY", help="With --encrypt-to: also sign with KEY."),
    click.option("--armor", is_flag=True, help="With --encrypt-to: ASCII armor (.asc)."),
    click.option(
        "--compress-algo",
        type=click.Choice(["zip", "zlib", "bzip2", "none"]),
        help="With --encrypt-to: gpg's compression (none for data already compressed); "
        "default: gpg's choice.",
    ),
]
_GET = [
    click.option(
        "--decrypt",
        is_flag=True,
        help="Decrypt with gpg while downloading; a file appears only once gpg's integrity "
        "and signature checks passed (.gpg/.pgp/.asc dropped from its name).",
    ),
    click.option(
        "--signed-by",
        multiple=True,
        metavar="KEY",
        help="With --decrypt: require a good signature by KEY (a fingerprint; repeatable).",
    ),
    click.option("--require-signature", is_flag=True, help="With --decrypt: fail unsigned files."),
]


def pgp_options(*, upload: bool) -> Callable[[F], F]:
    """The OpenPGP options of ``put`` (``upload``) or ``get``, passed on as ``pgp``."""
    names = ["gnupg_home", "pgp_passphrase_env", "pgp_passphrase_file"]
    put = ["encrypt_to", "sign_with", "armor", "compress_algo"]
    names += put if upload else ["decrypt", "signed_by", "require_signature"]

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            choices = PgpChoices(**{n: kwargs.pop(n) for n in names})
            extras = choices.sign_with or choices.armor or choices.compress_algo
            if upload and extras and not choices.encrypt_to:
                raise click.UsageError(
                    "--sign-with, --armor and --compress-algo go with --encrypt-to"
                )
            checks_signer = choices.signed_by or choices.require_signature
            if not upload and checks_signer and not choices.decrypt:
                raise click.UsageError("--signed-by and --require-signature go with --decrypt")
            return func(*args, pgp=choices, **kwargs)

        for option in reversed([*(_PUT if upload else _GET), *_COMMON]):
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate
