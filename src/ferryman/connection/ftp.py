"""FTP and FTPS settings: the SSIS FTP Connection Manager, grown up.

Beyond SSIS: TLS mode, certificate verification and pinning, client certificates, encoding,
EPSV and MLSD switches, an active-mode port range.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from ..fingerprints import normalize_fingerprint
from .common import ConnectionBase, PortNumber, Seconds

__all__ = ["SCHEME_TLS", "TLS_SCHEME", "FtpConnection", "TLSMode"]


class TLSMode(enum.StrEnum):
    """How FTP is secured: ``none`` (ftp://), ``explicit`` (AUTH TLS, ftpes://), ``implicit``
    (TLS from the first byte, ftps://, port 990)."""

    NONE = "none"
    EXPLICIT = "explicit"
    IMPLICIT = "implicit"


SCHEME_TLS = {"ftp": TLSMode.NONE, "ftpes": TLSMode.EXPLICIT, "ftps": TLSMode.IMPLICIT}
TLS_SCHEME = {mode: scheme for scheme, mode in SCHEME_TLS.items()}


class FtpConnection(ConnectionBase):
    """Settings of one FTP or FTPS server."""

    protocol: Literal["ftp"] = Field(
        "ftp", description="Protocol family: 'ftp' (FTP and FTPS) or 'sftp'."
    )
    port: PortNumber = Field(
        21, description="Server port; default 21, or 990 for implicit TLS (ftps://)."
    )
    user: str | None = Field(
        None,
        description="User name; when not given, the login from ~/.netrc for this host, "
        "else 'anonymous'.",
    )
    anonymous_password: str = Field(
        "ferryman@", description="Password sent for anonymous logins (an e-mail-like string)."
    )
    data_timeout: Seconds | None = Field(
        None,
        description="Longest silence on a data connection before it is given up "
        "(default: timeout).",
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
        return self

    @property
    def scheme(self) -> str:
        return TLS_SCHEME[self.tls]

    @property
    def effective_data_timeout(self) -> float:
        return self.data_timeout or self.timeout
