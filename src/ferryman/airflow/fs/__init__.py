"""Airflow's ``filesystems`` entry: ``ObjectStoragePath("ftpes://CONN_ID@/path")``.

Airflow calls a module's ``get_fs(conn_id, storage_options)`` for each of its ``schemes``, and
gives it no scheme, so there is one small module per protocol (:mod:`.ftpes`, :mod:`.ftps`,
:mod:`.ftp`, :mod:`.sftp`), each reusing the fsspec filesystem of ``ferryman.fsspec`` with the
Airflow connection's settings (docs/airflow.md#objectstoragepath).
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from ...fsspec import FerrymanFileSystem

__all__ = ["filesystem_for"]


def filesystem_for(
    fs_class: type[FerrymanFileSystem], conn_id: str | None, storage_options: dict[str, Any] | None
) -> FerrymanFileSystem:
    """``fs_class`` with the settings of Airflow connection ``conn_id`` (when given), then
    ``storage_options`` on top. The connection must be of the scheme's protocol and TLS mode:
    an ``ftpes`` path never runs over a plain FTP connection."""
    options = dict(storage_options or {})
    if conn_id is not None:
        from airflow.sdk import BaseHook  # noqa: PLC0415 - Airflow only when Airflow calls

        from ..connection import connection_fields  # noqa: PLC0415

        fields = connection_fields(BaseHook.get_connection(conn_id))
        scheme = fs_class.scheme
        if fields.pop("protocol") != scheme.protocol or fields.pop("tls", None) != scheme.tls:
            raise ConfigError(
                f"Airflow connection {conn_id!r} is not a {scheme.describe()} connection",
                hint="use a path whose protocol matches the connection's type "
                "(ferryman_ftpes: ftpes://, ferryman_ftps: ftps://, ferryman_ftp: "
                "ferryman+ftp://, ferryman_sftp: ferryman+sftp://)",
            )
        options = {**fields, **options}
    return fs_class(**options)
