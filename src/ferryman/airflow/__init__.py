"""ferryman's Apache Airflow provider (``pip install ferryman[airflow]``; docs/airflow.md).

Airflow finds it through the ``apache_airflow_provider`` entry point, which calls
:func:`get_provider_info`. This module imports nothing of Airflow: ``import ferryman`` and
``import ferryman.airflow`` work without it; the hooks, operators, sensors and triggers
(``ferryman.airflow.hooks.ferryman`` and so on) import Airflow when they are imported.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONNECTION_TYPES", "get_provider_info"]

_INTEGRATION = "ferryman"
_HOOK = "ferryman.airflow.hooks.ferryman"

#: connection type -> (hook class, name shown in the UI, default port)
CONNECTION_TYPES: dict[str, tuple[str, str, int]] = {
    "ferryman_ftp": ("FerrymanFtpHook", "ferryman FTP (plain)", 21),
    "ferryman_ftpes": ("FerrymanFtpesHook", "ferryman FTPS (explicit TLS)", 21),
    "ferryman_ftps": ("FerrymanFtpsHook", "ferryman FTPS (implicit TLS)", 990),
    "ferryman_sftp": ("FerrymanSftpHook", "ferryman SFTP", 22),
}


def _field(label: str, kind: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": [kind, "null"]}}


def _conn_fields(conn_type: str) -> dict[str, Any]:
    """The extras shown as form fields (any other ferryman setting goes in Extra as JSON)."""
    if conn_type == "ferryman_sftp":
        return {
            "known_hosts": _field(
                "Known hosts file",
                "string",
                "OpenSSH known_hosts file (default ~/.ssh/known_hosts)",
            ),
            "fingerprint": _field(
                "Host key fingerprint", "string", "Pin the host key: SHA256:... as ssh-keygen -l"
            ),
            "private_key": _field("Private key file", "string", "Path of the client's key file"),
        }
    fields = {
        "passive": {
            "label": "Passive mode",
            "description": "EPSV/PASV data connections (off: active mode)",
            "schema": {"type": ["boolean", "null"], "default": True},
        },
    }
    if conn_type != "ferryman_ftp":
        fields["ca_file"] = _field(
            "CA file", "string", "PEM CA bundle that signed the server's certificate"
        )
        fields["fingerprint"] = _field(
            "Certificate fingerprint", "string", "Pin the certificate: SHA256 fingerprint"
        )
    return fields


def _connection_type(conn_type: str) -> dict[str, Any]:
    hook, name, port = CONNECTION_TYPES[conn_type]
    return {
        "connection-type": conn_type,
        "hook-class-name": f"{_HOOK}.{hook}",
        "hook-name": name,
        "conn-fields": _conn_fields(conn_type),
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {"host": "Server", "login": "User"},
            "placeholders": {
                "host": "ftp.partner.example",
                "port": str(port),
                "extra": '{"timeout": 60, "retries": 5, "password_env": "PARTNER_PW"}',
            },
        },
    }


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads (the ``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "ferryman",
        "name": "ferryman",
        "description": "FTP, FTPS (explicit and implicit) and SFTP transfers, jobs and file "
        "sensors on ferryman: verified TLS and host keys, temporary-name publish, resume.",
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://pypi.org/project/ferryman/",
                "tags": ["protocol"],
            }
        ],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": [_HOOK]}],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["ferryman.airflow.operators.ferryman"],
            }
        ],
        "sensors": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["ferryman.airflow.sensors.ferryman"],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["ferryman.airflow.triggers.ferryman"],
            }
        ],
        "connection-types": [_connection_type(t) for t in CONNECTION_TYPES],
        "filesystems": [f"ferryman.airflow.fs.{m}" for m in ("ftpes", "ftps", "ftp", "sftp")],
    }
