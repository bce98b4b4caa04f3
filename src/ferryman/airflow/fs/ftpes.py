"""``ftpes://`` paths in Airflow's ``ObjectStoragePath`` (see :mod:`ferryman.airflow.fs`)."""

from __future__ import annotations

from typing import Any

from ...fsspec import FtpesFileSystem
from . import filesystem_for

__all__ = ["get_fs", "schemes"]

schemes = ["ftpes"]


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> FtpesFileSystem:
    fs = filesystem_for(FtpesFileSystem, conn_id, storage_options)
    assert isinstance(fs, FtpesFileSystem)
    return fs
