"""URLs and storage options of the fsspec filesystems -> one validated ferryman connection.

fsspec hands a filesystem the keyword arguments a user passed as ``storage_options`` plus what
:func:`url_options` read from the URL (host, port, user, password). They are named as in the
connections file (``password_env``, ``ca_file``, ``fingerprint``, ``known_hosts``,
``private_key``, ``timeout``, ``passive``, ...; docs/connections.md), so the same settings
work everywhere; ``connection="partner"`` takes a named connection from the connections file
instead. The protocol of the filesystem decides the protocol and TLS mode: an ``ftpes``
filesystem never speaks plain FTP, whatever the options say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..connection import Connection, TLSMode, build_connection, login_relative, url_fields
from ..connections_file import default_connections_path, load_connections
from ..errors import ConfigError

__all__ = [
    "FSSPEC_OPTIONS",
    "Scheme",
    "connection_for",
    "strip_url",
    "url_options",
]

#: options AbstractFileSystem itself takes (listings cache, instance cache): not connection
#: settings; passed on to fsspec
FSSPEC_OPTIONS = frozenset(
    {"use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache"}
)

#: fsspec's own FTP and SFTP filesystems call the user ``username``; accepted as ``user``
_ALIASES = {"username": "user"}


class Scheme:
    """What a URL scheme means: the protocol family and, for FTP, the TLS mode."""

    def __init__(self, url_scheme: str, protocol: str, tls: TLSMode | None) -> None:
        self.url_scheme = url_scheme  #: the scheme ferryman's URL parser knows
        self.protocol = protocol
        self.tls = tls

    def fields(self) -> dict[str, object]:
        if self.protocol == "sftp":
            return {"protocol": "sftp"}
        return {"protocol": "ftp", "tls": self.tls}

    def describe(self) -> str:
        return f"{self.url_scheme}://"


def _ferryman_url(url: str) -> str:
    """``ferryman+ftp://h/x`` -> ``ftp://h/x``: the parser knows the plain scheme names."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower().startswith("ferryman+"):
        return scheme[len("ferryman+") :] + sep + rest
    return url


def strip_url(path: str) -> str:
    """The path a URL or path names, as the backends take it: ``/~/x`` -> ``~/x`` (below the
    login directory, as in the CLI), no trailing ``/`` except for the root."""
    if "://" in path:
        _, path = url_fields(_ferryman_url(path))
    else:
        path = login_relative(path)
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path


def url_options(url: str) -> dict[str, Any]:
    """The connection settings a URL carries (host, port, user, password)."""
    if "://" not in url:
        return {}
    fields, _ = url_fields(_ferryman_url(url))
    fields.pop("protocol", None)
    fields.pop("tls", None)
    return fields


def _named(name: str, file: str | Path | None) -> Connection:
    path = Path(file) if file is not None else default_connections_path()
    if not path.is_file():
        raise ConfigError(
            f"connection={name!r} names a connection, but there is no connections file {path}",
            hint="create it (docs/connections.md), pass connections_file=..., or give the "
            "settings as storage options",
        )
    known = load_connections(path)
    if name not in known:
        raise ConfigError(
            f"no connection named {name!r} in {path}",
            hint=f"known: {', '.join(sorted(known)) or '(none)'}",
        )
    return known[name]


def _check_scheme(conn: Connection, scheme: Scheme, name: str) -> None:
    """A named connection must be what the filesystem's protocol says: never a downgrade."""
    tls = getattr(conn, "tls", None)
    if conn.protocol != scheme.protocol or (scheme.tls is not None and tls != scheme.tls):
        raise ConfigError(
            f"connection {name!r} is {conn.scheme}://, not {scheme.describe()}",
            hint=f"open it with the {conn.scheme} protocol (fsspec.filesystem(...) or a URL "
            f"starting {conn.scheme}://; plain FTP and SFTP are ferryman+ftp and ferryman+sftp)",
        )


def connection_for(
    scheme: Scheme,
    options: dict[str, Any],
    *,
    connection: str | None = None,
    connections_file: str | Path | None = None,
) -> Connection:
    """Validate ``options`` (connection settings; see the module docstring) into a connection
    of ``scheme``'s protocol; with ``connection``, a named one with ``options`` on top."""
    fields = {_ALIASES.get(k, k): v for k, v in options.items() if v is not None}
    if connection is not None:
        conn = _named(connection, connections_file)
        _check_scheme(conn, scheme, connection)
        if not fields:
            return conn
        merged = {**conn.model_dump(exclude_unset=True), **fields}
        return build_connection(merged, f"connection {connection!r} with storage options")
    if "host" not in fields:
        raise ConfigError(
            f"no host: open a URL such as {scheme.describe()}user@host/path, or pass host=...",
            hint="or connection='NAME' for a connection from the connections file",
        )
    for key in ("protocol", "tls"):
        if key in fields:
            raise ConfigError(
                f"storage option {key!r} is set by the protocol ({scheme.describe()})",
                hint="use ftpes:// (explicit TLS), ftps:// (implicit TLS), ferryman+ftp:// "
                "(plain FTP) or ferryman+sftp://",
            )
    fields.update(scheme.fields())
    return build_connection(fields, f"{scheme.describe()} storage options")
