"""``ferryman+ftp://`` paths in Airflow's ``ObjectStoragePath`` (see :mod:`ferryman.airflow.fs`)."""

from __future__ import annotations

from typing import Any

from ...fsspec import FerrymanFtpFileSystem
from . import filesystem_for

__all__ = ["get_fs", "schemes"]

schemes = ["ferryman+ftp"]


def get_fs(
    conn_id: str | None, storage_options: dict[str, Any] | None = None
) -> FerrymanFtpFileSystem:
    fs = filesystem_for(FerrymanFtpFileSystem, conn_id, storage_options)
    assert isinstance(fs, FerrymanFtpFileSystem)
    return fs
