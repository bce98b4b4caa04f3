"""Matching a file's columns to a table, before a single row is read: the same rules for
every database.

- A file with a header (or ``columns``) names its columns; when the table exists each must be
  one of the table's (an exact match first, else the only one equal ignoring case, as SQLite
  and unquoted SQL compare names). Table columns the file lacks get their defaults.
- A file without header and without ``columns`` fills an existing table's columns in order.
- ``column_types`` and ``key`` name the file's columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from .csvformat import ColumnType, CsvFormat
from .reader import SourceBase
from .results import LoadMode
from .sql import TableName, check_identifier, fold

__all__ = ["ColumnPlan", "check_mode", "plan_columns"]


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """The table's columns the file's fields go to, in the file's order, with the declared
    type of each (None: TEXT, not converted) and the upsert key (table names)."""

    columns: list[str]
    kinds: list[ColumnType | None]
    key: list[str]


def check_mode(mode: LoadMode | str, key: Sequence[str]) -> tuple[LoadMode, list[str]]:
    """The mode and key, checked: ``upsert`` needs a key, the other modes take none."""
    try:
        checked = LoadMode(mode)
    except ValueError:
        raise ConfigError(
            f"unknown load mode {mode!r}", hint="give append, replace or upsert"
        ) from None
    if isinstance(key, str):
        raise ConfigError("key must be a list of column names, not a string")
    keys = [check_identifier(k, "a key column") for k in key]
    if checked is LoadMode.UPSERT and not keys:
        raise ConfigError(
            "mode upsert needs a key", hint="name the column(s) that identify a row in key"
        )
    if checked is not LoadMode.UPSERT and keys:
        raise ConfigError(
            f"key is only used by mode upsert, not {checked.value}",
            hint="remove key, or set mode to upsert",
        )
    if len(set(keys)) != len(keys):
        raise ConfigError("key names a column twice")
    return checked, keys


def _match(name: str, existing: list[str]) -> str | None:
    if name in existing:
        return name
    found = [col for col in existing if fold(col) == fold(name)]
    return found[0] if len(found) == 1 else None


def plan_columns(
    source: SourceBase, table: TableName, existing: list[str] | None, key: list[str]
) -> ColumnPlan:
    """The plan for loading ``source`` into ``table`` (``existing``: its columns, None when
    the table does not exist and will be created from the file's names)."""
    fmt: CsvFormat = source.fmt
    names = source.names
    line = source.header_line or None
    if names is None:
        if existing is None:
            raise ConfigError(
                f"{source.path}: the file has no header and table {table} does not exist, so "
                "its columns have no names",
                hint="name them in format.columns (or create the table first)",
            )
        names = list(existing)
        source.names = names
    for name in fmt.column_types:
        if name not in names:
            raise source.error(
                line,
                f"format.column_types names {name!r}, which is not a column of the file "
                f"(its columns: {', '.join(names)})",
                "correct the name in column_types, or rename the file's columns with "
                "format.columns",
            )
    for name in key:
        if name not in names:
            raise source.error(
                line,
                f"key column {name!r} is not a column of the file (its columns: "
                f"{', '.join(names)})",
                "load a file that has it, or correct key",
            )
    kinds = [fmt.column_types.get(name) for name in names]
    if existing is None:
        folded: dict[str, str] = {}
        for name in names:
            other = folded.setdefault(fold(name), name)
            if other != name:
                raise source.error(
                    line,
                    f"columns {other!r} and {name!r} differ only in case, and SQL treats "
                    "them as one column",
                    "rename one of them with format.columns",
                )
        return ColumnPlan(list(names), kinds, list(key))
    columns: list[str] = []
    for name in names:
        found = _match(name, existing)
        if found is None:
            raise source.error(
                line,
                f"column {name!r} of the file is not a column of table {table} (its columns: "
                f"{', '.join(existing)})",
                "add the column to the table, rename the file's columns with format.columns, "
                "or load into a new table",
            )
        columns.append(found)
    if len({fold(c) for c in columns}) != len(columns):
        raise source.error(line, f"two columns of the file go to the same column of {table}")
    keys = [columns[names.index(k)] for k in key]
    return ColumnPlan(columns, kinds, keys)
