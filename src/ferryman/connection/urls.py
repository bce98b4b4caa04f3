"""Connections from URLs and fields: ``ftp://``, ``ftpes://``, ``ftps://`` and ``sftp://``.

URL schemes follow WinSCP, curl and lftp. User and password may be in the URL,
percent-encoded; the path after the host is taken as absolute (as WinSCP and lftp read it),
except that ``/~/`` at its start means the login directory (as in WinSCP): the path is then
kept as ``~/...`` and the backend resolves it against the directory the server put the user in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from ..paths import check_remote_path
from ..redact import register_secret
from .common import host_message, host_problem
from .ftp import SCHEME_TLS, FtpConnection
from .sftp import SftpConnection

__all__ = [
    "SUPPORTED_SCHEMES",
    "Connection",
    "RemoteTarget",
    "build_connection",
    "connection_from_url",
    "format_validation_error",
    "login_relative",
    "parse_url",
    "redact_url",
    "settings_table",
    "url_fields",
]

#: a validated connection of any protocol; ``connection.protocol`` tells which
Connection = FtpConnection | SftpConnection

_MODELS: dict[str, type[FtpConnection] | type[SftpConnection]] = {
    "ftp": FtpConnection,
    "sftp": SftpConnection,
}
SUPPORTED_SCHEMES = (*SCHEME_TLS, "sftp")


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """A connection plus a path on it, e.g. what ``ftpes://u@h/outbound/*.csv`` names."""

    connection: Connection
    path: str

    def describe(self) -> str:
        path = "/" + self.path if self.path == "~" or self.path.startswith("~/") else self.path
        return f"{self.connection.describe()}{path if path.startswith('/') else ''}"


def login_relative(path: str) -> str:
    """``/~/outbound`` -> ``~/outbound`` and ``/~`` -> ``~``; any other path unchanged.

    Why: a URL path is absolute, but on most servers (vsftpd for local users, ProFTPD without
    DefaultRoot, OpenSSH without chroot) a partner's files are below the login directory,
    whose absolute path the user often does not know. WinSCP reads ``/~/`` as that directory;
    the backends resolve a leading ``~`` once they know it (see ``Backend.login_path``).
    """
    if path == "/~" or path.startswith("/~/"):
        return path[1:]
    return path


def _part(part: object) -> str:
    text = str(part)
    return repr(text) if any(ord(c) < 32 or ord(c) == 127 for c in text) else text


def format_validation_error(err: ValidationError, where: str = "settings") -> str:
    """Turn pydantic's error list into lines naming each field and what is allowed."""
    lines = []
    for item in err.errors():
        # a setting's name is the user's (a YAML key "\n"): one line whatever it holds
        field = ".".join(_part(p) for p in item["loc"])
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown setting; docs/connections.md lists the allowed ones"
        lines.append(f"{field}: {msg}" if field else msg)  # a check of several settings
    return f"invalid {where}: " + "; ".join(lines)


def settings_table() -> str:
    """The Markdown table of every connection setting, from the field descriptions."""
    rows = ["| setting | protocols | default | description |", "|---|---|---|---|"]
    models: list[tuple[str, type[BaseModel]]] = [("ftp", FtpConnection), ("sftp", SftpConnection)]
    seen: list[str] = []
    for _, model in models:
        seen += [name for name in model.model_fields if name not in seen]
    for name in seen:
        owners = [(label, m.model_fields[name]) for label, m in models if name in m.model_fields]
        protocols = " ".join(label for label, _ in owners)
        descriptions = {f.description for _, f in owners}
        defaults = {repr(f.default) for _, f in owners}
        for label, field in owners:
            if len(descriptions) == 1 and len(defaults) == 1 and label != owners[0][0]:
                continue
            default = field.default
            if field.is_required():
                shown = "(required)"
            else:
                shown = "-" if default is None else f"`{getattr(default, 'value', default)}`"
            shown_protocols = protocols if len(descriptions) == 1 and len(defaults) == 1 else label
            rows.append(f"| `{name}` | {shown_protocols} | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def redact_url(url: str) -> str:
    """Mask the password of a URL: ``ftp://u:secret@h/`` -> ``ftp://u:****@h/``."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:****@", url)


def url_fields(url: str) -> tuple[dict[str, object], str]:
    """Connection fields and the path named by a URL of one of :data:`SUPPORTED_SCHEMES`."""
    shown = redact_url(url)
    if "://" not in url:
        raise ConfigError(
            f"{shown!r} is not a URL",
            hint="write ftp://, ftpes:// (explicit TLS), ftps:// (implicit TLS) or sftp:// "
            "URLs, or NAME:PATH for a connection from the connections file",
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigError(
            f"{shown!r}: unknown scheme {scheme!r}",
            hint=f"use one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ConfigError(f"{shown!r} is not a valid URL: {err}") from None
    if parts.query or parts.fragment:
        raise ConfigError(
            f"{shown!r} has a '?' or '#' part",
            hint="percent-encode '?' as %3F and '#' as %23 in file names",
        )
    if not parts.hostname:
        raise ConfigError(f"{shown!r} names no host", hint="write SCHEME://[USER@]HOST[:PORT]/PATH")
    problem = host_problem(parts.hostname)
    if problem is not None:
        raise ConfigError(
            f"invalid URL {_clip(shown)!r}: {host_message(parts.hostname, problem)}",
            hint="write SCHEME://[USER@]HOST[:PORT]/PATH with a DNS name, an IPv4 address or "
            "an IPv6 address in brackets",
        )
    fields: dict[str, object] = {"host": parts.hostname}
    if scheme == "sftp":
        fields["protocol"] = "sftp"
    else:
        fields["tls"] = SCHEME_TLS[scheme]
    if port is not None:
        fields["port"] = port
    if parts.username:
        fields["user"] = unquote(parts.username)
    if parts.password is not None:
        fields["password"] = unquote(parts.password)
        register_secret(str(fields["password"]))
    # decided on the raw path: a percent-encoded %7E stays a literal directory named "~"
    path = unquote(login_relative(parts.path))
    return fields, check_remote_path(path)


def build_connection(fields: dict[str, object], where: str = "settings") -> Connection:
    """Validate ``fields`` into a connection of the protocol they name (default ``ftp``)."""
    protocol = fields.get("protocol", "ftp")
    model = _MODELS.get(str(protocol))
    if model is None:
        raise ConfigError(f"invalid {where}: protocol: must be 'ftp' or 'sftp', not {protocol!r}")
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None


def parse_url(url: str, **overrides: object) -> RemoteTarget:
    """Parse a URL (see :func:`url_fields`); ``overrides`` are further connection fields."""
    fields, path = url_fields(url)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return RemoteTarget(build_connection(fields, f"URL {redact_url(url)!r}"), path)


def connection_from_url(url: str, **overrides: object) -> Connection:
    """The connection part of :func:`parse_url`."""
    return parse_url(url, **overrides).connection
