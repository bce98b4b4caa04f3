"""``ferryman+sftp://`` paths in Airflow's ``ObjectStoragePath`` (:mod:`ferryman.airflow.fs`)."""

from __future__ import annotations

from typing import Any

from ...fsspec import FerrymanSftpFileSystem
from . import filesystem_for

__all__ = ["get_fs", "schemes"]

schemes = ["ferryman+sftp"]


def get_fs(
    conn_id: str | None, storage_options: dict[str, Any] | None = None
) -> FerrymanSftpFileSystem:
    fs = filesystem_for(FerrymanSftpFileSystem, conn_id, storage_options)
    assert isinstance(fs, FerrymanSftpFileSystem)
    return fs
