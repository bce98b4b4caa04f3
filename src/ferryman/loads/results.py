"""What a load is asked to do (:class:`FileLoad`), and what a load or an export reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from .csvformat import CsvFormat
from .markers import LoadMarker, Marked
from .sql import TableName

__all__ = ["ExportResult", "FileLoad", "LoadMode", "LoadResult"]


class LoadMode(enum.StrEnum):
    """What a load does with the rows already in the table. Every mode runs one transaction
    per file: all of the file's rows are committed, or none."""

    APPEND = "append"  #: add the file's rows
    #: delete the table's rows and add the file's, in the same transaction: readers see the
    #: old rows until the commit, then the new ones, never an empty table
    REPLACE = "replace"
    #: insert each row, or update the row with the same key (needs a unique index on it)
    UPSERT = "upsert"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One file loaded: how many rows, how long, whether ferryman created the table."""

    path: Path
    table: str
    rows: int
    seconds: float
    created_table: bool
    #: the file's marker was found: it was loaded before and was not loaded again
    already: Marked | None = None
    #: how the rows went in: "copy file" (PostgreSQL parsed the file itself), "copy rows",
    #: "load data" (MySQL/MariaDB read the file itself) or "insert"
    method: str = "insert"

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "table": self.table,
            "rows": self.rows,
            "seconds": round(self.seconds, 6),
            "created_table": self.created_table,
            "already_loaded": self.already.describe() if self.already else None,
        }


@dataclass(frozen=True, slots=True)
class FileLoad:
    """One load, as every database's loader takes it: ``path`` read as ``fmt`` into
    ``table`` in ``mode`` (upsert: on ``key``), exactly once when a ``marker`` is given."""

    table: TableName
    path: Path
    fmt: CsvFormat
    mode: LoadMode
    key: list[str]
    marker: LoadMarker | None = None

    @property
    def doing(self) -> str:
        """What it does, for messages: ``load PATH into TABLE``."""
        return f"load {self.path} into {self.table}"

    def result(
        self,
        rows: int,
        seconds: float,
        created: bool,
        already: Marked | None = None,
        method: str = "insert",
    ) -> LoadResult:
        """What it did."""
        return LoadResult(self.path, str(self.table), rows, seconds, created, already, method)


@dataclass(frozen=True, slots=True)
class ExportResult:
    """One query exported: the file (complete, under its final name) and its row count."""

    path: Path
    rows: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "rows": self.rows, "seconds": round(self.seconds, 6)}
