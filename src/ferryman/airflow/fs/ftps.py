"""``ftps://`` paths in Airflow's ``ObjectStoragePath`` (see :mod:`ferryman.airflow.fs`)."""

from __future__ import annotations

from typing import Any

from ...fsspec import FtpsFileSystem
from . import filesystem_for

__all__ = ["get_fs", "schemes"]

schemes = ["ftps"]


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> FtpsFileSystem:
    fs = filesystem_for(FtpsFileSystem, conn_id, storage_options)
    assert isinstance(fs, FtpsFileSystem)
    return fs
