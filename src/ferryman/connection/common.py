"""What every connection has, whatever the protocol: server, user, password sources, time-outs.

These are the SSIS FTP Connection Manager's properties that are not about FTP itself (server,
port, user, password, time-out 60 s, retries 5, chunk size). Secrets are ``SecretStr``: no
repr, str or error message ever shows one.
"""

from __future__ import annotations

import codecs
import ipaddress
import re
import stringprep
import unicodedata
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ..redact import register_secret

__all__ = [
    "ConnectionBase",
    "PortNumber",
    "Seconds",
    "host_message",
    "host_problem",
    "user_problem",
]

Seconds = Annotated[float, Field(gt=0, le=86400)]
PortNumber = Annotated[int, Field(ge=1, le=65535)]

_HOST_RE = re.compile(r"^[A-Za-z0-9._:\-\[\]%]+$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_HOST, _MAX_LABEL = 253, 63  # RFC 1035; longer names fail to resolve (IDNA "label too long")


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a valid host name or IP address, or None when it is.

    An IPv6 address (with an optional ``%zone``) or a DNS name: labels of 1 to 63 letters,
    digits, ``-`` and ``_``, 253 characters in all (a trailing dot allowed).
    """
    if not host:
        return "is empty"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return "is not a valid IPv6 address"
        return None
    name = host[:-1] if host.endswith(".") else host
    if len(name) > _MAX_HOST:
        return f"is {len(name)} characters long (at most {_MAX_HOST})"
    for label in name.split("."):
        if not label:
            return "has an empty label (two dots, or a leading dot)"
        if len(label) > _MAX_LABEL:
            return f"has a label of {len(label)} characters (at most {_MAX_LABEL})"
        if not _LABEL_RE.match(label):
            return "may contain only letters, digits, '-', '_' and '.'"
    return None


_SASLPREP_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def user_problem(user: str, protocol: str) -> str | None:
    """Why ``user`` cannot be sent as a user name, or None: never a control character (it
    would end an FTP command line), and for SSH nothing that SASLprep (RFC 4013) refuses."""
    for char in user:
        if unicodedata.category(char) == "Cc":
            return f"contains the control character {char!r}"
    if protocol == "sftp":
        for char in user:
            if stringprep.in_table_a1(char):
                return f"contains {char!r}, which SSH does not allow in user names (unassigned)"
        prepared = unicodedata.normalize(
            "NFKC", "".join(c for c in user if not stringprep.in_table_b1(c))
        )
        for char in prepared:
            if any(lookup(char) for lookup in _SASLPREP_PROHIBITED):
                return f"contains {char!r}, which SSH does not allow in user names"
        rtl = [stringprep.in_table_d1(c) for c in prepared]
        if any(rtl) and (
            any(stringprep.in_table_d2(c) for c in prepared) or not (rtl[0] and rtl[-1])
        ):
            return "mixes right-to-left and left-to-right text, which SSH does not allow"
    return None


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def host_message(host: str, problem: str) -> str:
    """``host name 'H' PROBLEM``, with a long name shortened: one readable line."""
    return f"host name {_clip(host)!r} {problem}"


class ConnectionBase(BaseModel):
    """Settings shared by every protocol; subclasses add their own and a ``protocol`` tag."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    protocol: str = Field(description="Protocol family: 'ftp' (FTP and FTPS) or 'sftp'.")
    host: str = Field(description="Server host name or IP address.")
    port: PortNumber = Field(description="Server port.")
    user: str | None = Field(None, description="User name.")
    password: SecretStr | None = Field(
        None, description="Password. Prefer password_env or password_file in files and jobs."
    )
    password_env: str | None = Field(
        None, description="Name of an environment variable that holds the password."
    )
    password_file: Path | None = Field(
        None, description="File whose first line is the password (keep it mode 0600)."
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
        None, description="Time-out for connecting and the handshake (default: timeout)."
    )
    retries: int = Field(5, ge=0, le=100, description="How often a retriable failure is retried.")
    retry_delay: Annotated[float, Field(ge=0, le=600)] = Field(
        1.0, description="First back-off delay in seconds; doubles on each retry, with jitter."
    )
    chunk_size: int = Field(
        256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Bytes per read or write (on FTP data connections; per SFTP request).",
    )
    encoding: str = Field(
        "utf-8",
        description="Encoding of file names; for FTP, UTF-8 turns on OPTS UTF8 when offered.",
    )

    @model_validator(mode="after")
    def _check_common(self) -> Self:
        if not self.host or not _HOST_RE.match(self.host):
            raise ValueError(f"host {_clip(self.host)!r} is not a valid host name or IP address")
        problem = host_problem(self.host)
        if problem is not None:
            raise ValueError(host_message(self.host, problem))
        if self.password_env is not None and not _ENV_NAME_RE.match(self.password_env):
            raise ValueError(
                f"password_env {_clip(self.password_env)!r} is not an environment variable name"
                " (letters, digits and _, not starting with a digit)"
            )
        problem = None if self.user is None else user_problem(self.user, self.protocol)
        if self.user is not None and problem is not None:
            raise ValueError(f"user name {_clip(self.user)!r} {problem}")
        if self.password is not None:  # masked wherever ferryman writes text from now on
            register_secret(self.password.get_secret_value())
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
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {self.encoding!r} (try utf-8 or latin-1)") from None
        return self

    @property
    def scheme(self) -> str:
        raise NotImplementedError

    @property
    def effective_connect_timeout(self) -> float:
        return self.connect_timeout or self.timeout

    def describe(self, user: str | None = None) -> str:
        """A secret-free name such as ``ftpes://orders@host:21``."""
        who = user or self.user
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{who + '@' if who else ''}{host}:{self.port}"
