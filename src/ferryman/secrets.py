"""Where passwords come from: the settings, an environment variable, a file, ~/.netrc, keyring.

Resolved at connect time, never stored in a model's repr, never passed on a command line.
"""

from __future__ import annotations

import getpass
import logging
import netrc
import os
from dataclasses import dataclass, field
from pathlib import Path

from .connection import Connection
from .errors import AuthenticationError, ConfigError
from .redact import register_secret

__all__ = [
    "Credentials",
    "login_credentials",
    "no_password_hint",
    "password_from",
    "resolve_credentials",
]

log = logging.getLogger("ferryman.secrets")

ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user and its password; the password is hidden from repr."""

    user: str
    password: str = field(repr=False)
    source: str  #: where the password came from, for diagnostics ("password_env X", "netrc")

    @property
    def anonymous(self) -> bool:
        return self.source == "anonymous"


def _from_env(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(
            f"environment variable {name} (password_env) is not set",
            hint=f"export {name}=... before running, or choose another password source",
        )
    return value


def _from_file(path: Path) -> str:
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"cannot read password_file {path}: {err.strerror}",
            hint="check the path and that this user may read it",
        ) from None
    lines = text.splitlines()
    return lines[0] if lines else ""


def password_from(env: str | None = None, file: Path | None = None) -> str | None:
    """A password from an environment variable or a file's first line, as connections read
    them (notifications' SMTP logins, webhook tokens); registered as a secret. None when
    neither is given; ConfigError when the one given cannot be read."""
    value = _from_env(env) if env else _from_file(file) if file else None
    if value:
        register_secret(value)
    return value


def _from_netrc(conn: Connection) -> tuple[str | None, str | None]:
    """(login, password) of the host's ~/.netrc entry, when its login fits ``conn.user``."""
    path = (conn.netrc_file or Path("~/.netrc")).expanduser()
    if not path.is_file():
        return None, None
    try:
        entries = netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError) as err:
        raise ConfigError(
            f"cannot read netrc file {path}: {err}", hint="fix the file or set use_netrc: false"
        ) from None
    found = entries.authenticators(conn.host)
    if found is None:
        return None, None
    login, _account, password = found
    if conn.user is not None and login and login != conn.user:
        return None, None
    return login or None, password or None


def _from_keyring(user: str, host: str) -> str | None:
    try:
        import keyring  # noqa: PLC0415 - optional dependency, imported only when asked
    except ImportError:
        return None
    try:
        value = keyring.get_password("ferryman", f"{user}@{host}")
    except Exception as err:
        log.debug("keyring lookup failed: %s", type(err).__name__)
        return None
    return value if isinstance(value, str) else None


def _default_user(conn: Connection) -> str:
    """FTP logs in anonymously by default; SSH, like ssh, as the local user."""
    if conn.protocol == "ftp":
        return ANONYMOUS
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME: a container, typically
        raise ConfigError(
            f"no user name for {conn.describe()}: none given and no local user name found",
            hint="write the user in the URL (sftp://USER@host/) or set user:",
        ) from None


def resolve_credentials(conn: Connection) -> Credentials:
    """The user and password to log in with, from the first source that has them; the
    password (but not an anonymous one) is registered as a secret (:mod:`ferryman.redact`).
    """
    creds = _resolve(conn)
    if creds.source not in ("anonymous", "none"):
        register_secret(creds.password)
    return creds


def _resolve(conn: Connection) -> Credentials:
    """The user and password to log in with, from the first source that has them.

    Order: ``password`` (settings or URL), ``password_env``, ``password_file``, ~/.netrc,
    keyring; an anonymous FTP user gets ``anonymous_password``. A named user without any
    password gets an empty one with source ``none``: FTP logins refuse it (login_credentials), and
    SFTP goes on with keys and the agent.
    """
    if conn.password is not None:
        return Credentials(
            conn.user or _default_user(conn), conn.password.get_secret_value(), "password"
        )
    if conn.password_env is not None:
        return Credentials(
            conn.user or _default_user(conn),
            _from_env(conn.password_env),
            f"env {conn.password_env}",
        )
    if conn.password_file is not None:
        return Credentials(
            conn.user or _default_user(conn),
            _from_file(conn.password_file),
            f"file {conn.password_file}",
        )
    user = conn.user
    if conn.use_netrc:
        login, password = _from_netrc(conn)
        user = user or login
        if password is not None and user is not None:
            return Credentials(user, password, "netrc")
    user = user or _default_user(conn)
    if conn.protocol == "ftp" and user.lower() in (ANONYMOUS, "ftp"):
        return Credentials(user, conn.anonymous_password, "anonymous")
    if conn.use_keyring:
        password = _from_keyring(user, conn.host)
        if password is not None:
            return Credentials(user, password, "keyring")
    return Credentials(user, "", "none")


def no_password_hint(conn: Connection) -> str:
    """Where a password can come from, for a login that has none."""
    places = ["pass one (--password-env NAME, --password-file FILE, password_env:, password_file:)"]
    if conn.use_netrc:
        places.append(f"add it to {conn.netrc_file or '~/.netrc'} (machine {conn.host})")
    if conn.use_keyring:
        places.append(
            f"store it in the system keyring (service 'ferryman', user '{conn.user or 'USER'}@"
            f"{conn.host}', with the keyring package)"
        )
    if conn.protocol == "ftp":
        places.append("or leave out the user name to log in anonymously")
    return "no password was given: " + "; ".join(places)


def login_credentials(conn: Connection) -> Credentials:
    """:func:`resolve_credentials` for a login that needs a password now (FTP, FTPS).

    A named FTP user without a password from any source is an :class:`AuthenticationError`
    raised before connecting, saying where a password can come from, instead of an empty
    ``PASS`` and the server's 530. Anonymous logins are unchanged; SFTP, which may log in with
    keys or the agent, keeps using :func:`resolve_credentials`.
    """
    creds = resolve_credentials(conn)
    if conn.protocol == "ftp" and creds.source == "none":
        looked = ["the settings", "password_env", "password_file"]
        if conn.use_netrc:
            looked.append(str(conn.netrc_file or "~/.netrc"))
        if conn.use_keyring:
            looked.append("the keyring")
        raise AuthenticationError(
            f"login as {creds.user} on {conn.describe(creds.user)} not tried: no password in "
            f"{', '.join(looked[:-1])} or {looked[-1]}",
            hint=no_password_hint(conn),
        )
    return creds
