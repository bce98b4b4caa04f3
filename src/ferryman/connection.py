"""The connection manager: one validated model per protocol, built from URLs, fields or files.

It keeps every property of the SSIS FTP Connection Manager (server, port, user -- "anonymous"
by default --, password, time-out 60 s, retries 5, chunk size, passive mode) and adds what it
lacks: TLS mode, certificate verification and pinning, client certificates, encoding, EPSV
and MLSD switches, an active-mode port range. Secrets are ``SecretStr``: no repr, str or error
message of this module ever shows one.
"""

from __future__ import annotations

import codecs
import enum
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .certs import normalize_fingerprint
from .errors import ConfigError
from .paths import check_remote_path

__all__ = [
    "FtpConnection",
    "RemoteTarget",
    "TLSMode",
    "build_connection",
    "connection_from_url",
    "format_validation_error",
    "parse_url",
    "redact_url",
    "url_fields",
]


class TLSMode(enum.StrEnum):
    """How FTP is secured: ``none`` (ftp://), ``explicit`` (AUTH TLS, ftpes://), ``implicit``
    (TLS from the first byte, ftps://, port 990)."""

    NONE = "none"
    EXPLICIT = "explicit"
    IMPLICIT = "implicit"


SCHEME_TLS = {"ftp": TLSMode.NONE, "ftpes": TLSMode.EXPLICIT, "ftps": TLSMode.IMPLICIT}
TLS_SCHEME = {mode: scheme for scheme, mode in SCHEME_TLS.items()}
SUPPORTED_SCHEMES = ("ftp", "ftpes", "ftps")

Seconds = Annotated[float, Field(gt=0, le=86400)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]

_HOST_RE = re.compile(r"^[A-Za-z0-9._:\-\[\]%]+$")


class FtpConnection(BaseModel):
    """Settings of one FTP or FTPS server (the SSIS FTP Connection Manager, grown up)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    protocol: Literal["ftp"] = Field("ftp", description="Protocol family: always 'ftp' here.")
    host: str = Field(description="Server host name or IP address.")
    port: PortNumber = Field(
        21, description="Server port; default 21, or 990 for implicit TLS (ftps://)."
    )
    user: str | None = Field(
        None,
        description="User name; when not given, the login from ~/.netrc for this host, "
        "else 'anonymous'.",
    )
    password: SecretStr | None = Field(
        None, description="Password. Prefer password_env or password_file in files and jobs."
    )
    password_env: str | None = Field(
        None, description="Name of an environment variable that holds the password."
    )
    password_file: Path | None = Field(
        None, description="File whose first line is the password (keep it mode 0600)."
    )
    anonymous_password: str = Field(
        "ferryman@", description="Password sent for anonymous logins (an e-mail-like string)."
    )
    use_netrc: bool = Field(True, description="Look up missing credentials in ~/.netrc.")
    netrc_file: Path | None = Field(None, description="Use this netrc file instead of ~/.netrc.")
    use_keyring: bool = Field(
        True,
        description="Look up a missing password in the system keyring (service 'ferryman', "
        "user 'USER@HOST') when the keyring package is installed.",
    )
    timeout: Seconds = Field(60.0, description="Time-out in seconds for every wait.")
    connect_timeout: Seconds | None = Field(
        None, description="Time-out for connecting and the TLS handshake (default: timeout)."
    )
    data_timeout: Seconds | None = Field(
        None,
        description="Longest silence on a data connection before it is given up "
        "(default: timeout).",
    )
    retries: int = Field(5, ge=0, le=100, description="How often a retriable failure is retried.")
    retry_delay: Annotated[float, Field(ge=0, le=600)] = Field(
        1.0, description="First back-off delay in seconds; doubles on each retry, with jitter."
    )
    chunk_size: int = Field(
        256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Bytes per read or write on data connections.",
    )
    passive: bool = Field(True, description="Passive mode (EPSV/PASV); false for active mode.")
    active_port_range: tuple[PortNumber, PortNumber] | None = Field(
        None, description="Ports to listen on in active mode, as [low, high]."
    )
    tls: TLSMode = Field(TLSMode.NONE, description="TLS mode: none, explicit or implicit.")
    verify: bool = Field(
        True,
        description="Verify the server certificate and host name. Turning it off needs a "
        "pinned fingerprint, or insecure: true.",
    )
    ca_file: Path | None = Field(
        None, description="PEM file of CA certificates to trust instead of the system ones."
    )
    fingerprint: str | None = Field(
        None,
        description="Pinned SHA-256 fingerprint of the server certificate (AB:CD:...); when "
        "set, exactly that certificate is trusted.",
    )
    client_cert: Path | None = Field(None, description="PEM client certificate, for mutual TLS.")
    client_key: Path | None = Field(
        None, description="PEM private key of the client certificate (if not in client_cert)."
    )
    insecure: bool = Field(
        False,
        description="Accept any certificate. Logs a warning on every connection; for tests only.",
    )
    tls_min_version: Literal["1.2", "1.3"] = Field("1.2", description="Lowest TLS version.")
    tls_max_version: Literal["1.2", "1.3"] | None = Field(
        None, description="Highest TLS version (default: the newest available)."
    )
    encoding: str = Field(
        "utf-8", description="Encoding of file names; UTF-8 turns on OPTS UTF8 when offered."
    )
    use_epsv: bool = Field(True, description="Try EPSV before PASV for passive data connections.")
    use_mlsd: bool = Field(True, description="Try MLSD before LIST for directory listings.")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        if isinstance(data, dict):
            if data.get("port") is None:
                tls = data.get("tls", TLSMode.NONE)
                data = {**data, "port": 990 if str(tls) == TLSMode.IMPLICIT else 21}
            if data.get("insecure") is True:
                data = {**data, "verify": False}
        return data

    @field_validator("fingerprint")
    @classmethod
    def _normalize_fingerprint(cls, value: str | None) -> str | None:
        return None if value is None else normalize_fingerprint(value)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.host or not _HOST_RE.match(self.host):
            raise ValueError(f"host {self.host!r} is not a valid host name or IP address")
        sources = [
            n
            for n, v in (
                ("password", self.password),
                ("password_env", self.password_env),
                ("password_file", self.password_file),
            )
            if v is not None
        ]
        if len(sources) > 1:
            raise ValueError(f"give one password source, not {' and '.join(sources)}")
        tls_only = [
            n
            for n in ("ca_file", "fingerprint", "client_cert", "client_key")
            if getattr(self, n) is not None
        ]
        if self.tls is TLSMode.NONE and (tls_only or self.insecure):
            names = ", ".join(tls_only or ["insecure"])
            raise ValueError(
                f"{names} only apply to TLS; use tls: explicit (ftpes://) or implicit (ftps://)"
            )
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        if not self.verify and not self.insecure and self.fingerprint is None:
            raise ValueError(
                "verify: false would accept any certificate; pin the certificate with "
                "fingerprint, or set insecure: true to accept any certificate knowingly"
            )
        if self.active_port_range and self.active_port_range[0] > self.active_port_range[1]:
            raise ValueError("active_port_range must be [low, high] with low <= high")
        if self.tls_max_version == "1.2" and self.tls_min_version == "1.3":
            raise ValueError("tls_max_version 1.2 is below tls_min_version 1.3")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {self.encoding!r} (try utf-8 or latin-1)") from None
        return self

    @property
    def scheme(self) -> str:
        return TLS_SCHEME[self.tls]

    @property
    def effective_connect_timeout(self) -> float:
        return self.connect_timeout or self.timeout

    @property
    def effective_data_timeout(self) -> float:
        return self.data_timeout or self.timeout

    def describe(self, user: str | None = None) -> str:
        """A secret-free name such as ``ftpes://orders@host:21``."""
        who = user or self.user
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{who + '@' if who else ''}{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RemoteTarget:
    """A connection plus a path on it, e.g. what ``ftpes://u@h/outbound/*.csv`` names."""

    connection: FtpConnection
    path: str

    def describe(self) -> str:
        return f"{self.connection.describe()}{self.path if self.path.startswith('/') else ''}"


def format_validation_error(err: ValidationError, where: str = "settings") -> str:
    """Turn pydantic's error list into lines naming each field and what is allowed."""
    lines = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(settings)"
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown setting; docs/connections.md lists the allowed ones"
        lines.append(f"{field}: {msg}")
    return f"invalid {where}: " + "; ".join(lines)


def settings_table() -> str:
    """The Markdown table of every connection setting, from the field descriptions."""
    rows = ["| setting | default | description |", "|---|---|---|"]
    for name, field in FtpConnection.model_fields.items():
        default = field.default
        shown = "-" if default is None else f"`{getattr(default, 'value', default)}`"
        rows.append(f"| `{name}` | {shown} | {field.description} |")
    return "\n".join(rows) + "\n"


def redact_url(url: str) -> str:
    """Mask the password of a URL: ``ftp://u:secret@h/`` -> ``ftp://u:****@h/``."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@", r"\1:****@", url)


def url_fields(url: str) -> tuple[dict[str, object], str]:
    """Connection fields and the path named by an ``ftp://``, ``ftpes://`` or ``ftps://`` URL.

    User and password may be in the URL, percent-encoded. The path after the host is taken as
    absolute (as WinSCP and lftp read it).
    """
    shown = redact_url(url)
    if "://" not in url:
        raise ConfigError(
            f"{shown!r} is not a URL",
            hint="write ftp://, ftpes:// (explicit TLS), ftps:// (implicit TLS) URLs, "
            "or NAME:PATH for a connection from the connections file",
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sftp":
        raise ConfigError(
            f"{shown!r}: SFTP is not available in this version of ferryman",
            hint="use ftp://, ftpes:// or ftps://",
        )
    if scheme not in SCHEME_TLS:
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
    fields: dict[str, object] = {"host": parts.hostname, "tls": SCHEME_TLS[scheme]}
    if port is not None:
        fields["port"] = port
    if parts.username:
        fields["user"] = unquote(parts.username)
    if parts.password is not None:
        fields["password"] = unquote(parts.password)
    return fields, check_remote_path(unquote(parts.path))


def build_connection(fields: dict[str, object], where: str = "settings") -> FtpConnection:
    """Validate ``fields`` into a connection; errors name each field and what is allowed."""
    try:
        return FtpConnection.model_validate(fields)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where)) from None


def parse_url(url: str, **overrides: object) -> RemoteTarget:
    """Parse a URL (see :func:`url_fields`); ``overrides`` are further connection fields."""
    fields, path = url_fields(url)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return RemoteTarget(build_connection(fields, f"URL {redact_url(url)!r}"), path)


def connection_from_url(url: str, **overrides: object) -> FtpConnection:
    """The connection part of :func:`parse_url`."""
    return parse_url(url, **overrides).connection
