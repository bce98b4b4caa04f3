"""Load markers: each loaded file is recorded in the target database, in the load's own
transaction, so that a file is loaded exactly once across crashes (issue 11).

The only-new ledger lives in ferryman's state file and is written when a run succeeds; a
load commits in the warehouse long before that. Were the two committed apart, a crash
between them would load the same rows again on the re-run. So the record that a file was
loaded lives beside the rows, in a small table ferryman owns in the target database,
:data:`MARKER_TABLE`, and is written by the same transaction as the rows: either both are
there or neither. A load with a :class:`LoadMarker` first looks for its marker (inside that
transaction, so two loaders of one file cannot both pass) and skips the file when it is
there.

A marker is keyed by (job, step, table, file key); the file key is the SHA-256 of the file's
identity (kept beside it in readable form). The identity of a file an only-new step took is
the ledger's (connection, remote path, size, modification time: :func:`ledger_file_key`); of
any other file, its name, size and SHA-256 (:func:`content_key`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..filehash import sha256_of_file
from .sql import TableName

__all__ = [
    "MARKER_COLUMNS",
    "MARKER_TABLE",
    "LoadMarker",
    "Marked",
    "content_key",
    "ledger_file_key",
]

#: the table ferryman keeps in a load's target database (schema: ``MARKER_COLUMNS``)
MARKER_TABLE = "ferryman_loaded_files"
#: its columns, in order; the first four are the primary key
MARKER_COLUMNS = (
    "job",
    "step",
    "target_table",
    "file_key",
    "identity",
    "file",
    "rows",
    "run_id",
    "loaded",
)


@dataclass(frozen=True, slots=True)
class LoadMarker:
    """What a load records (and first looks for) in :data:`MARKER_TABLE`."""

    job: str
    step: str
    identity: str  #: the file's identity (:func:`ledger_file_key`, :func:`content_key`)
    run_id: int | None = None

    @property
    def file_key(self) -> str:
        """The identity's SHA-256: a fixed-length key every database can index."""
        return hashlib.sha256(self.identity.encode("utf-8")).hexdigest()

    def key(self, table: TableName) -> tuple[str, str, str, str]:
        """The first four of ``MARKER_COLUMNS`` (the primary key) for a load into ``table``."""
        return (self.job, self.step, str(table), self.file_key)

    def row(self, table: TableName, path: Path, rows: int) -> tuple[Any, ...]:
        """All of ``MARKER_COLUMNS`` for the load of ``path`` into ``table``, loaded now."""
        loaded = datetime.now(UTC).isoformat(timespec="milliseconds")
        return (*self.key(table), self.identity, str(path), rows, self.run_id, loaded)


@dataclass(frozen=True, slots=True)
class Marked:
    """A marker found: the file was loaded before, by this run, at this time."""

    run_id: int | None
    loaded: str
    rows: int

    def describe(self) -> str:
        by = f"run {self.run_id}" if self.run_id is not None else "an earlier run"
        return f"already loaded by {by} at {self.loaded} ({self.rows} rows)"


def ledger_file_key(
    connection: str, path: str, size: int | None, mtime: datetime | str | None
) -> str:
    """The file key of a file an only-new step took: the ledger's identity of it."""
    stamp = mtime.isoformat() if isinstance(mtime, datetime) else mtime
    return json.dumps(["taken", connection, path, size, stamp], ensure_ascii=False)


def content_key(path: Path) -> str:
    """The file key of a local file by its content: name, size and SHA-256."""
    size, sha256 = sha256_of_file(path)
    return json.dumps(["content", path.name, size, sha256], ensure_ascii=False)
