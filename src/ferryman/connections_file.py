"""Named connections in a YAML file, and ``NAME:PATH`` targets that refer to them.

```yaml
partner:
  url: ftpes://orders@ftp.partner.example/
  password_env: PARTNER_FTP_PASSWORD
  ca_file: certs/partner.pem          # relative paths are relative to this file
```

The file is ``--connections PATH``, else ``$FERRYMAN_CONNECTIONS``, else
``$XDG_CONFIG_HOME/ferryman/connections.yaml`` (``~/.config/ferryman/connections.yaml``).
Fields given next to ``url`` override what the URL says.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .connection import (
    Connection,
    FtpConnection,
    RemoteTarget,
    SftpConnection,
    build_connection,
    format_validation_error,
    login_relative,
    parse_url,
    url_fields,
)
from .errors import ConfigError
from .paths import check_remote_path

__all__ = [
    "connections_from_mapping",
    "default_connections_path",
    "load_connections",
    "resolve_target",
]

_PATH_FIELDS = (
    "ca_file",
    "password_file",
    "client_cert",
    "client_key",
    "netrc_file",
    "private_key",
    "private_key_passphrase_file",
    "known_hosts",
)
_NAME_TARGET = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?::(?P<path>.*))?$", re.S)


def default_connections_path() -> Path:
    env = os.environ.get("FERRYMAN_CONNECTIONS")
    if env:
        return Path(env).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "ferryman" / "connections.yaml"


def _check_text(value: object, where: str) -> None:
    """A YAML ``"\\ud800"`` escape loads as a lone surrogate, which no name or path can hold."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(
                f"{where} holds an unpaired surrogate (a \\uD800-\\uDFFF escape)",
                hint="write the character itself, or \\U0001XXXX for one beyond U+FFFF",
            ) from None


def _entry_fields(name: str, entry: Any, base: Path, where: str) -> dict[str, object]:
    _check_text(name, f"{where}: a connection name")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: connection {name!r} must be a mapping of settings")
    for key, value in entry.items():
        _check_text(key, f"{where}: connection {name!r}: a setting name")
        _check_text(value, f"{where}: connection {name!r}: {str(key)!r}")
    fields: dict[str, object] = {}
    if "url" in entry:
        url_part, path = url_fields(str(entry["url"]))
        if path not in ("", "/", "~", "~/"):  # the login directory is where a session starts
            raise ConfigError(f"{where}: connection {name!r}: its url may not name a path")
        fields.update(url_part)
    for key, value in entry.items():
        if key == "url":
            continue
        if key in _PATH_FIELDS and isinstance(value, str):
            fields[str(key)] = str((base / Path(value).expanduser()).resolve())
        else:
            fields[str(key)] = value
    return fields


def load_connections(path: Path) -> dict[str, Connection]:
    """All connections of a connections file; errors say file:line:column."""
    from .yamlfile import load_yaml  # noqa: PLC0415 (ruamel.yaml only when a file is read)

    try:
        data = load_yaml(path)
    except ConfigError as err:  # one readable line, also for the YAML reader's own errors
        if "\n" not in err.message:
            raise
        raise ConfigError(" ".join(err.message.split()), hint=err.hint) from None
    if data is None:
        return {}
    if isinstance(data, dict) and isinstance(data.get("connections"), dict):
        data = data["connections"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of connection names to settings")
    return connections_from_mapping(data, path)


def connections_from_mapping(
    data: Any, path: Path, skip: Collection[str] = (), problems: list[str] | None = None
) -> dict[str, Connection]:
    """Validate a mapping of names to settings loaded by ``load_yaml`` from ``path`` (a
    connections file, or a job's ``connections:``, whose databases are in ``skip``);
    relative paths are relative to ``path``. With a ``problems`` list, the error of every
    invalid connection is appended to it (that connection left out) instead of raised."""
    result: dict[str, Connection] = {}
    for name, entry in data.items():
        if name in skip:
            continue
        try:
            result[str(name)] = _connection(data, name, entry, path)
        except ConfigError as err:
            if problems is None:
                raise
            problems.append(err.message)
    return result


def _connection(data: Any, name: Any, entry: Any, path: Path) -> Connection:
    """One connection of the mapping, or ConfigError at its file:line:column."""
    from .yamlfile import position  # noqa: PLC0415 (the mapping came from load_yaml)

    line_col = position(data, [name])
    where = f"{path}:{line_col[0]}:{line_col[1]}" if line_col else str(path)
    fields = _entry_fields(str(name), entry, path.parent, where)
    protocol = fields.get("protocol", "ftp")
    if protocol not in ("ftp", "sftp"):
        line_col = position(data, [name, "protocol"])
        where = f"{path}:{line_col[0]}:{line_col[1]}" if line_col else where
        raise ConfigError(
            f"{where}: connection {name!r}: protocol must be 'ftp' or 'sftp', not {protocol!r}"
        )
    model = SftpConnection if protocol == "sftp" else FtpConnection
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]["loc"]
        line_col = position(data, [name, *[str(p) for p in first[:1]]])
        where = f"{path}:{line_col[0]}:{line_col[1]}" if line_col else str(path)
        raise ConfigError(
            f"{where}: " + format_validation_error(err, f"connection {name!r}")
        ) from None


def resolve_target(spec: str, connections: Path | None = None, **overrides: object) -> RemoteTarget:
    """A URL (``ftpes://u@h/p``) or ``NAME:PATH`` naming a connection from the file."""
    if "://" in spec:
        return parse_url(spec, **overrides)
    match = _NAME_TARGET.match(spec)
    if not match:
        raise ConfigError(
            f"{spec!r} is neither a URL nor NAME:PATH",
            hint="write e.g. ftpes://user@host/dir/ or partner:/dir/ (a named connection)",
        )
    file = connections or default_connections_path()
    if not file.is_file():
        raise ConfigError(
            f"{spec!r} names connection {match['name']!r}, but there is no connections file {file}",
            hint="write a URL instead, or create the file (see docs/connections.md)",
        )
    known = load_connections(file)
    conn = known.get(match["name"])
    if conn is None:
        raise ConfigError(
            f"no connection named {match['name']!r} in {file}",
            hint=f"known: {', '.join(sorted(known)) or '(none)'}",
        )
    extra = {k: v for k, v in overrides.items() if v is not None}
    if extra:
        merged = {**conn.model_dump(exclude_unset=True), **extra}
        conn = build_connection(merged, f"connection {match['name']!r} with options")
    # NAME:~/dir and NAME:dir are relative to the login directory; NAME:/~/dir as in URLs
    return RemoteTarget(conn, check_remote_path(login_relative(match["path"] or "")))
