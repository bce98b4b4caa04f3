"""The dashboard's token: where it comes from, and how a request proves it knows it.

The token is ``$FERRYMAN_WEB_TOKEN`` when set; else it is read from a file beside the state
file (``<state>.web-token``), which the first start creates with mode ``0600`` and announces
once on stderr. The token is registered as a secret, so no log line ever shows it.

A request proves it knows the token in one of two ways:

- ``Authorization: Bearer <token>`` (scripts, monitoring): a browser never adds that header to
  a request another site makes it send, so no cross-site request can carry it;
- a browser that logged in (``/login``) has a session cookie (``HttpOnly; SameSite=Strict``)
  derived from the token; its actions must also carry the form field ``csrf`` (derived from the
  token too, put in every form of the dashboard's pages), and an ``Origin`` header, when
  present, must be the dashboard's own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from pathlib import Path

from ..errors import ConfigError
from ..redact import register_secret

__all__ = ["COOKIE", "ENV_TOKEN", "TokenGate", "load_token", "token_path"]

#: the environment variable that gives the token (instead of the token file)
ENV_TOKEN = "FERRYMAN_WEB_TOKEN"  # noqa: S105 - a variable's name, not a secret
#: the session cookie's name
COOKIE = "ferryman_session"
_MIN_LENGTH = 16


def token_path(state: Path) -> Path:
    """Where the token of the dashboard reading ``state`` is kept."""
    return state.with_name(state.name + ".web-token")


def load_token(path: Path) -> str:
    """The token: from ``$FERRYMAN_WEB_TOKEN``, else from ``path`` (created on first use)."""
    given = os.environ.get(ENV_TOKEN, "").strip()
    if given:
        if len(given) < _MIN_LENGTH:
            raise ConfigError(
                f"${ENV_TOKEN} is {len(given)} characters long; the dashboard wants at least "
                f"{_MIN_LENGTH}",
                hint=f"unset it (a random token is then made and kept in {path}), or set a long "
                "random one: `python -c 'import secrets; print(secrets.token_urlsafe())'`",
            )
        register_secret(given)
        return given
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    except (OSError, UnicodeError) as err:
        raise ConfigError(
            f"cannot read the dashboard token file {path}: {err}",
            hint=f"fix its permissions, remove it (a new token is then made), or set ${ENV_TOKEN}",
        ) from None
    if token:
        register_secret(token)
        return token
    token = secrets.token_urlsafe(24)
    register_secret(token)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as err:
        raise ConfigError(
            f"cannot create the dashboard token file {path}: {err.strerror or err}",
            hint=f"make its directory writable, or set ${ENV_TOKEN}",
        ) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)
    # shown once, on purpose, to the person who started serve (the log masks it afterwards)
    sys.stderr.write(
        f"ferryman: the dashboard's token (kept in {path}, mode 600; shown only now): {token}\n"
    )
    sys.stderr.flush()
    return token


class TokenGate:
    """Checks a request's proof of the token (see the module documentation)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8")
        self.session = self._derive("session")
        self.csrf = self._derive("csrf")

    def _derive(self, purpose: str) -> str:
        return hmac.new(self._token, purpose.encode("ascii"), hashlib.sha256).hexdigest()

    def token_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(
            hashlib.sha256(str(given).encode("utf-8")).digest(),
            hashlib.sha256(self._token).digest(),
        )

    def bearer_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        return self.token_ok(authorization[7:].strip())

    def session_ok(self, cookie: str | None) -> bool:
        return bool(cookie) and hmac.compare_digest(str(cookie), self.session)

    def csrf_ok(self, field: str | None) -> bool:
        return bool(field) and hmac.compare_digest(str(field), self.csrf)
