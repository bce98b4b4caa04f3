"""SFTP settings: the shared connection settings plus SSH keys, the agent and host keys.

Host keys are verified by default against known_hosts, or against a pinned fingerprint as
OpenSSH prints it (``SHA256:...``); there is no silent trust on first use.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from .common import ConnectionBase, PortNumber

__all__ = ["SftpConnection", "normalize_ssh_fingerprint"]

_SHA256_B64_LEN = 43  # 32 bytes in unpadded base64, as OpenSSH prints them


def normalize_ssh_fingerprint(value: str) -> str:
    """``SHA256:<base64>`` from what OpenSSH prints, with or without the prefix or padding."""
    text = value.strip()
    body = re.sub(r"^sha256:", "", text, flags=re.IGNORECASE).rstrip("=")
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(body) != _SHA256_B64_LEN or len(raw) != 32:
        raise ValueError(
            f"{value!r} is not an SSH host key fingerprint; write it as OpenSSH prints it, "
            "e.g. SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU (ssh-keygen -lf KEYFILE)"
        )
    return f"SHA256:{body}"


class SftpConnection(ConnectionBase):
    """Settings of one SFTP server (SSH file transfer)."""

    protocol: Literal["sftp"] = Field(
        "sftp", description="Protocol family: 'ftp' (FTP and FTPS) or 'sftp'."
    )
    port: PortNumber = Field(22, description="Server port; default 22.")
    user: str | None = Field(
        None,
        description="User name; when not given, the login from ~/.netrc for this host, "
        "else the local user name (as ssh does).",
    )
    private_key: Path | None = Field(
        None,
        description="Private key file (OpenSSH or PEM) for public-key authentication; "
        "default: the ssh-agent's keys and ~/.ssh/id_*, as ssh does.",
    )
    private_key_passphrase_env: str | None = Field(
        None, description="Name of an environment variable holding the private key's passphrase."
    )
    private_key_passphrase_file: Path | None = Field(
        None, description="File whose first line is the private key's passphrase."
    )
    use_agent: bool = Field(True, description="Offer the keys of a running ssh-agent.")
    known_hosts: Path | None = Field(
        None,
        description="known_hosts file to verify the host key against "
        "(default: ~/.ssh/known_hosts).",
    )
    fingerprint: str | None = Field(
        None,
        description="Pinned host key fingerprint as OpenSSH prints it (SHA256:...); when set, "
        "exactly that key is trusted.",
    )
    accept_new_host_key: bool = Field(
        False,
        description="Accept a host key not yet in known_hosts and record it there (ssh's "
        "StrictHostKeyChecking=accept-new); a changed key is still refused.",
    )
    insecure: bool = Field(
        False,
        description="Accept any host key. Logs a warning on every connection; for tests only.",
    )
    keepalive_interval: Annotated[float, Field(ge=0, le=86400)] = Field(
        30.0,
        description="Seconds between SSH keepalives while the connection is idle; 0 turns "
        "them off.",
    )
    keepalive_count_max: int = Field(
        3, ge=1, le=100, description="Unanswered keepalives after which the connection is dead."
    )
    requests_in_flight: int = Field(
        64,
        ge=1,
        le=1024,
        description="SFTP read or write requests kept in flight per file (pipelining).",
    )
    exec_hash: bool = Field(
        False,
        description="Verify copies with a server-side SHA-256 by running sha256sum over SSH "
        "(needs a shell account on the server).",
    )

    @field_validator("fingerprint")
    @classmethod
    def _normalize_fingerprint(cls, value: str | None) -> str | None:
        return None if value is None else normalize_ssh_fingerprint(value)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.private_key_passphrase_env and self.private_key_passphrase_file:
            raise ValueError(
                "give one passphrase source, not private_key_passphrase_env and "
                "private_key_passphrase_file"
            )
        if self.private_key is None and (
            self.private_key_passphrase_env or self.private_key_passphrase_file
        ):
            raise ValueError("a private key passphrase needs private_key")
        return self

    @property
    def scheme(self) -> str:
        return "sftp"
