"""The ``pgp:`` settings of a job or a connections file, and the key ring they give.

```yaml
pgp:
  gnupg_home: keys/              # the job's own key ring (relative to the file)
  passphrase_env: PGP_PASSPHRASE # or passphrase_file:, or passphrase_keyring:
  import_keys: [keys/partner.asc]
  import_keys_env: [OUR_SECRET_KEY]   # an armored private key from the secret store
```

Passphrases and private keys come from the same sources as passwords (an environment
variable, a file, the system keyring), are registered as secrets (masked wherever ferryman
writes text: :mod:`ferryman.redact`) and reach gpg through a pipe or its standard input,
never its command line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from ..redact import register_secret
from .gpg import Keyring

__all__ = ["PgpSettings", "keyring_for", "load_pgp_settings"]

log = logging.getLogger("ferryman.pgp")


def _a_list(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(f"takes a list: write [{value!r}]")
    return value


class PgpSettings(BaseModel):
    """Where the OpenPGP keys are and how to unlock them (docs/pgp.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gnupg_home: Path | None = Field(
        None,
        description="The key ring's directory (gpg --homedir), relative to the file; made "
        "(mode 700) when missing. Default: $GNUPGHOME or ~/.gnupg, the user's own.",
    )
    passphrase_env: str | None = Field(
        None, description="Environment variable holding the secret key's passphrase."
    )
    passphrase_file: Path | None = Field(
        None, description="File whose first line is the secret key's passphrase."
    )
    passphrase_keyring: str | None = Field(
        None,
        description="Take the passphrase from the system keyring: service 'ferryman', this "
        "user name (needs ferryman[keyring]).",
    )
    import_keys: Annotated[list[Path], BeforeValidator(_a_list)] = Field(
        [], description="Key files (public or secret, armored or binary) imported first."
    )
    import_keys_env: Annotated[list[str], BeforeValidator(_a_list)] = Field(
        [], description="Environment variables holding armored keys, imported first."
    )
    program: str = Field("gpg", description="The gpg program (a name on PATH or a path).")
    timeout: float = Field(
        600, gt=0, le=86400, description="Seconds gpg may go without progress before it is killed."
    )

    def relative_to(self, base: Path) -> PgpSettings:
        """These settings with their relative paths made relative to ``base``."""

        def fix(path: Path | None) -> Path | None:
            return None if path is None else (base / path.expanduser()).resolve()

        return self.model_copy(
            update={
                "gnupg_home": fix(self.gnupg_home),
                "passphrase_file": fix(self.passphrase_file),
                "import_keys": [fix(p) for p in self.import_keys],
            }
        )


def _passphrase(settings: PgpSettings) -> str | None:
    if settings.passphrase_env is not None:
        value = os.environ.get(settings.passphrase_env)
        if value is None:
            raise ConfigError(
                f"environment variable {settings.passphrase_env} (pgp passphrase_env) is not set",
                hint=f"export {settings.passphrase_env}=... before running",
            )
        return value
    if settings.passphrase_file is not None:
        try:
            lines = settings.passphrase_file.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise ConfigError(
                f"cannot read pgp passphrase_file {settings.passphrase_file}: {err.strerror}",
                hint="check the path and that this user may read it",
            ) from None
        return lines[0] if lines else ""
    if settings.passphrase_keyring is not None:
        try:
            import keyring  # noqa: PLC0415 - optional dependency, imported only when asked
        except ImportError:
            raise ConfigError(
                "pgp passphrase_keyring needs the keyring package",
                hint="pip install 'ferryman[keyring]'",
            ) from None
        value = keyring.get_password("ferryman", settings.passphrase_keyring)
        if not isinstance(value, str):
            raise ConfigError(
                f"the system keyring has no entry ferryman/{settings.passphrase_keyring}",
                hint=f"store it: keyring set ferryman {settings.passphrase_keyring}",
            )
        return value
    return None


def _key_material(settings: PgpSettings) -> list[tuple[str, bytes]]:
    found = []
    for path in settings.import_keys:
        try:
            found.append((str(path), path.read_bytes()))
        except OSError as err:
            raise ConfigError(
                f"cannot read pgp key file {path}: {err.strerror}",
                hint="check pgp: import_keys",
            ) from None
    for name in settings.import_keys_env:
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(
                f"environment variable {name} (pgp import_keys_env) is not set",
                hint=f"export {name} with the armored key before running",
            )
        register_secret(value)  # a private key: masked wherever it could appear
        found.append((f"env {name}", value.encode("utf-8")))
    return found


_imported: set[tuple[str, str]] = set()  #: (home, digest) already imported in this process
_import_lock = threading.Lock()


def keyring_for(settings: PgpSettings | None) -> Keyring:
    """The key ring the settings describe, ready to use: home made, keys imported, the
    passphrase resolved (and registered as a secret)."""
    settings = settings or PgpSettings()
    passphrase = _passphrase(settings)
    register_secret(passphrase)
    keyring = Keyring(settings.gnupg_home, settings.program, passphrase, settings.timeout)
    keyring.prepare()
    home = str(settings.gnupg_home or "")
    for where, data in _key_material(settings):
        key = (home, hashlib.sha256(data).hexdigest())
        with _import_lock:
            if key in _imported:
                continue
            status = keyring.run(["--import"], f"importing keys from {where}", data)
            counts = status.args("IMPORT_RES")
            if not counts or not counts[0] or counts[0][0] == "0":
                raise ConfigError(
                    f"no OpenPGP key could be imported from {where}",
                    hint="give an armored (-----BEGIN PGP ...) or binary key export",
                )
            for args in status.args("IMPORT_OK"):
                if len(args) > 1:
                    log.info("key %s imported from %s", args[1], where)
            _imported.add(key)
    return keyring


def load_pgp_settings(path: Path) -> PgpSettings | None:
    """The ``pgp:`` section of a connections file (None when it has none)."""
    from ..yamlfile import load_yaml  # noqa: PLC0415 (ruamel.yaml only when a file is read)

    if not path.is_file():
        return None
    data = load_yaml(path)
    section = data.get("pgp") if isinstance(data, dict) else None
    if section is None:
        return None
    try:
        return PgpSettings.model_validate(section).relative_to(path.parent)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"{path}: pgp.{field}: {first['msg']}", hint="docs/pgp.md lists the pgp settings"
        ) from None
