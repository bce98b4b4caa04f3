"""What the database loaders share: the CREATE TABLE they write, the rows they send in
batches, and the errors they report in the same words whatever the database.

Only plain text and the stdlib here: each loader's driver (psycopg, PyMySQL, SQLAlchemy) stays
in its own module, imported when its URL is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import LoadError
from .csvformat import ColumnType
from .markers import MARKER_COLUMNS, MARKER_TABLE
from .plan import ColumnPlan
from .reader import SourceBase
from .sql import TableName, fold, quote

__all__ = [
    "column_list",
    "create_sql",
    "line_batches",
    "marker_sql",
    "no_unique",
    "not_a_select",
    "refused_batch",
    "refused_row",
]


def column_list(names: Iterable[str]) -> str:
    """``"a", "b"``: the names quoted, for a column list in SQL text."""
    return ", ".join(quote(name) for name in names)


def create_sql(
    table: TableName,
    plan: ColumnPlan,
    types: Mapping[ColumnType | None, str],
    *,
    key_types: Mapping[str, str] | None = None,
    options: str = "",
) -> str:
    """``CREATE TABLE`` for the plan's columns typed by ``types``; the key's columns NOT NULL
    (their type replaced as ``key_types`` says: an index may need a bounded type) and UNIQUE."""
    keys = {fold(k) for k in plan.key}
    defs = []
    for col, kind in zip(plan.columns, plan.kinds, strict=True):
        sql_type = types[kind]
        if fold(col) in keys:
            sql_type = (key_types or {}).get(sql_type, sql_type) + " NOT NULL"
        defs.append(f"{quote(col)} {sql_type}")
    if plan.key:
        defs.append(f"UNIQUE ({column_list(plan.key)})")
    return f"CREATE TABLE {table.sql} ({', '.join(defs)}){options}"


def marker_sql(
    param: str, types: Mapping[str, str], *, options: str = "", loaded: str | None = None
) -> tuple[str, str, str]:
    """The CREATE TABLE IF NOT EXISTS of ``MARKER_TABLE`` (its columns typed as ``types``
    says, TEXT otherwise), the SELECT that finds a marker by its key and the INSERT that adds
    one; ``param`` is the driver's placeholder (``%s``, ``?``), ``loaded`` an SQL expression
    for the time of the load in place of its parameter."""
    defs = [
        f"{quote(col)} {types.get(col, 'TEXT')}" + ("" if col == "run_id" else " NOT NULL")
        for col in MARKER_COLUMNS
    ]
    ddl = (
        f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} ({', '.join(defs)},"
        f" PRIMARY KEY ({column_list(MARKER_COLUMNS[:4])})){options}"
    )
    find = (
        f'SELECT run_id, loaded, "rows" FROM {MARKER_TABLE} WHERE job = {param}'  # noqa: S608 - constants
        f" AND step = {param} AND target_table = {param} AND file_key = {param}"
    )
    values = [param] * len(MARKER_COLUMNS)
    if loaded is not None:
        values[-1] = loaded
    add = (
        f"INSERT INTO {MARKER_TABLE} ({column_list(MARKER_COLUMNS)})"  # noqa: S608 - constants
        f" VALUES ({', '.join(values)})"
    )
    return ddl, find, add


def no_unique(
    table: TableName, key: list[str], *, index: str = "CREATE UNIQUE INDEX ..."
) -> LoadError:
    """An upsert into a table without a unique key on ``key`` (``index``: how the hint's
    example starts, PostgreSQL needing no index name)."""
    cols = column_list(key)
    return LoadError(
        f"cannot upsert into {table}: it has no primary key or unique index on ({cols}), "
        "so rows cannot be matched by that key",
        hint=f"create one, e.g. {index} ON {table.sql} ({cols}), or correct key; nothing was "
        "loaded",
    )


def line_batches(
    source: SourceBase, plan: ColumnPlan, size: int
) -> Iterator[tuple[list[list[Any]], list[int]]]:
    """The file's rows ``size`` at a time, each with the line it starts at (for the error
    that names a refused row)."""
    batch: list[list[Any]] = []
    lines: list[int] = []
    for row in source.records(len(plan.columns), plan.kinds, native=False):
        batch.append(row)
        lines.append(source.line)
        if len(batch) >= size:
            yield batch, lines
            batch, lines = [], []
    if batch:
        yield batch, lines


def refused_row(source: SourceBase, line: int, reason: str) -> LoadError:
    """The database refused the row at ``line``, saying ``reason``."""
    return source.error(
        line,
        f"the database refused this row: {reason}",
        f"nothing of {source.path} was loaded; fix the row (or the table's constraints) and "
        "load the file again",
    )


def refused_batch(source: SourceBase, lines: list[int]) -> LoadError:
    """The database refused a batch, but none of its rows alone."""
    return source.error(
        lines[0],
        "the database refused a batch of rows starting here, but each of them alone",
        "nothing was loaded; load the file again",
    )


def not_a_select(doing: str) -> LoadError:
    """The export query gives no result set."""
    return LoadError(
        f"cannot {doing}: it returns no rows (it is not a SELECT)",
        hint="give a SELECT (or WITH ... SELECT)",
    )
