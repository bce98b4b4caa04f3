"""Airflow connections -> ferryman connections (no Airflow import: duck-typed on the fields).

An Airflow connection has ``conn_type``, ``host``, ``port``, ``login``, ``password`` and a JSON
``extra``. ferryman's own types say the protocol and TLS mode (``ferryman_ftp``,
``ferryman_ftpes``, ``ferryman_ftps``, ``ferryman_sftp``) and take ferryman's connection
settings as extras, named as in the connections file (``ca_file``, ``fingerprint``,
``known_hosts``, ``private_key``, ``passive``, ``timeout``, ...; docs/connections.md).

The official providers' ``ftp`` and ``sftp`` connections are read too, so a DAG can switch to
ferryman without re-entering secrets: their extras are translated (``key_file`` ->
``private_key``, ``host_key`` -> a pinned ``fingerprint``, ``passive``) and what ferryman would
only do less safely is refused with a hint (``no_host_key_check``: ferryman verifies host
keys; pin the key instead).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any, Protocol

from ..connection import Connection, TLSMode, build_connection
from ..errors import ConfigError
from ..redact import register_secret

__all__ = [
    "CONN_TYPES",
    "AirflowConnectionLike",
    "connection_fields",
    "ferryman_connection",
]

#: ferryman's Airflow connection types -> the protocol fields they stand for
CONN_TYPES: dict[str, dict[str, object]] = {
    "ferryman_ftp": {"protocol": "ftp", "tls": TLSMode.NONE},
    "ferryman_ftpes": {"protocol": "ftp", "tls": TLSMode.EXPLICIT},
    "ferryman_ftps": {"protocol": "ftp", "tls": TLSMode.IMPLICIT},
    "ferryman_sftp": {"protocol": "sftp"},
    # the official providers' types, read for migration
    "ftp": {"protocol": "ftp", "tls": TLSMode.NONE},
    "sftp": {"protocol": "sftp"},
    "ssh": {"protocol": "sftp"},
}

#: extras of the official SFTP/SSH connection that mean nothing to ferryman (paramiko's
#: tuning): ignored, never an error, so an existing connection works unchanged
_IGNORED_SSH = frozenset(
    {"compress", "look_for_keys", "allow_host_key_change", "disabled_algorithms", "ciphers"}
)


class AirflowConnectionLike(Protocol):
    """What is read of an Airflow ``Connection``."""

    conn_id: str | None
    conn_type: str | None
    host: str | None
    port: int | None
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def _host_key_fingerprint(host_key: str) -> str:
    """``ssh-ed25519 AAAA...`` (or the base64 alone) -> ``SHA256:...`` as ssh-keygen shows it."""
    parts = host_key.split() or [""]
    blob = parts[1] if len(parts) > 1 else parts[0]  # "TYPE BASE64 [comment]" or BASE64
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError:
        raise ConfigError(
            "the connection's host_key extra is not a base64 SSH public key",
            hint="give the key as in known_hosts (ssh-ed25519 AAAA...), or a fingerprint "
            "extra such as SHA256:...",
        ) from None
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def _official_extras(conn_type: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Translate the official ``ftp``/``sftp``/``ssh`` connection extras."""
    fields: dict[str, Any] = {}
    for key, value in extra.items():
        if conn_type == "ftp":
            if key == "passive":
                fields["passive"] = value
                continue
        elif key in _IGNORED_SSH:
            continue
        elif key == "key_file":
            fields["private_key"] = value
            continue
        elif key == "host_key":
            fields["fingerprint"] = _host_key_fingerprint(str(value))
            continue
        elif key in ("conn_timeout", "timeout"):
            fields["connect_timeout" if key == "conn_timeout" else "timeout"] = value
            continue
        elif key == "no_host_key_check":
            if str(value).lower() in ("true", "1", "yes"):
                raise ConfigError(
                    "the connection sets no_host_key_check, but ferryman always verifies "
                    "SSH host keys",
                    hint="remove no_host_key_check and set host_key (the server's public key) "
                    "or a fingerprint extra; or give a known_hosts file",
                )
            continue
        elif key == "private_key":
            raise ConfigError(
                "the connection carries the private key's text in its private_key extra",
                hint="store the key in a file readable by the workers and name it in key_file "
                "(ferryman reads keys from files only)",
            )
        elif key == "private_key_passphrase":
            raise ConfigError(
                "the connection carries a key passphrase in its extras",
                hint="set private_key_passphrase_env (an environment variable's name) instead",
            )
        fields[key] = value
    return fields


def connection_fields(conn: AirflowConnectionLike) -> dict[str, Any]:
    """The ferryman connection settings an Airflow connection stands for (unvalidated).

    The password is registered with ``ferryman.redact`` so that nothing ferryman writes shows
    it."""
    conn_type = (conn.conn_type or "").lower()
    protocol = CONN_TYPES.get(conn_type)
    if protocol is None:
        raise ConfigError(
            f"connection {conn.conn_id!r} is of type {conn.conn_type!r}, which ferryman does "
            "not read",
            hint=f"use one of {', '.join(sorted(CONN_TYPES))}",
        )
    # form fields may be stored as extra__<type>__<name> (Airflow's older convention)
    prefix = f"extra__{conn_type}__"
    extra = {
        k.removeprefix(prefix): v
        for k, v in (conn.extra_dejson or {}).items()
        if v not in (None, "")
    }
    if conn_type.startswith("ferryman_"):
        fields: dict[str, Any] = dict(extra)
        for forced in ("protocol", "tls"):
            if forced in fields:
                raise ConfigError(
                    f"connection {conn.conn_id!r}: the {forced!r} extra is not allowed",
                    hint="the connection type decides the protocol and TLS mode",
                )
    else:
        fields = _official_extras(conn_type, extra)
    fields.update(protocol)
    if not conn.host:
        raise ConfigError(f"connection {conn.conn_id!r} names no host", hint="set its host")
    fields["host"] = conn.host
    if conn.port:
        fields["port"] = int(conn.port)
    if conn.login:
        fields["user"] = conn.login
    if conn.password:
        register_secret(conn.password)
        fields["password"] = conn.password
    return fields


def ferryman_connection(conn: AirflowConnectionLike) -> Connection:
    """The validated ferryman connection for an Airflow connection."""
    return build_connection(connection_fields(conn), f"Airflow connection {conn.conn_id!r}")
