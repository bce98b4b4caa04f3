"""Loading into and exporting from SQLite through the stdlib ``sqlite3``: the fast path.

A load is one ``BEGIN IMMEDIATE`` ... ``COMMIT``: creating the table, emptying it (replace)
and every row of the file, so a failure anywhere rolls all of it back. The rows stream from
the CSV reader straight into ``executemany`` (a generator, not a list), so memory stays flat
and there is no per-batch Python work at all.

Speed without giving up safety: the database is put in WAL mode, so readers keep reading
the committed rows while a load runs (a replace never shows them an empty table, and pages a
big transaction spills from the cache go to the WAL without locking readers out).
``synchronous`` stays as it is (FULL by default): in WAL mode that costs one fsync per
commit, i.e. per file, and a committed load survives a power loss. The page cache keeps its
default size (2 MiB): a bigger one measured no faster, and memory stays flat.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

from ..errors import LoadError
from .common import create_sql, marker_sql, no_unique, refused_row
from .csvformat import ColumnType
from .formats import open_source
from .markers import Marked
from .plan import ColumnPlan, plan_columns
from .reader import SourceBase
from .results import FileLoad, LoadMode, LoadResult
from .sql import TableName, fold, quote

__all__ = ["BUSY_TIMEOUT", "SQLITE_TYPES", "load_sqlite", "query_sqlite"]

#: seconds a load or export waits for another process's lock before it fails
BUSY_TIMEOUT = 60.0
#: declared types of the columns of a table ferryman creates
SQLITE_TYPES = {
    None: "TEXT",
    ColumnType.TEXT: "TEXT",
    ColumnType.INTEGER: "INTEGER",
    ColumnType.REAL: "REAL",
    ColumnType.NUMERIC: "NUMERIC",
    ColumnType.DATE: "DATE",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.BOOLEAN: "BOOLEAN",
}


def translate(err: sqlite3.Error, db: Path, doing: str) -> LoadError:
    """A LoadError that says what went wrong with ``db`` and what to do."""
    name = getattr(err, "sqlite_errorname", "") or ""
    if name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT"):
        return LoadError(
            f"cannot {doing}: {db} is not an SQLite database or is damaged ({err})",
            hint="check the database URL; restore the file from a backup if it is damaged",
        )
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
        return LoadError(
            f"cannot {doing}: {db} cannot be opened or written ({err})",
            hint="check that its directory exists and that the file, its -wal and -shm "
            "companions and the directory are writable by this user",
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return LoadError(
            f"cannot {doing}: another process kept {db} locked for more than {BUSY_TIMEOUT:g} s",
            hint="another program is writing to it; run again when it is done",
            retriable=True,
        )
    if name.startswith("SQLITE_FULL"):
        return LoadError(
            f"cannot {doing}: the disk holding {db} is full", hint="free space and run again"
        )
    return LoadError(f"cannot {doing}: {db}: {err}")


def _connect(db: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        target = "file:" + url_quote(str(db.resolve())) + "?mode=ro"
        return sqlite3.connect(target, timeout=BUSY_TIMEOUT, isolation_level=None, uri=True)
    return sqlite3.connect(str(db), timeout=BUSY_TIMEOUT, isolation_level=None)


def _pragma(conn: sqlite3.Connection, pragma: str, arg: str, schema: str | None) -> list[Any]:
    """Rows of a table-valued pragma (``pragma_table_info(?)``), arguments as parameters."""
    if schema is None:
        return conn.execute(f"SELECT * FROM pragma_{pragma}(?)", (arg,)).fetchall()  # noqa: S608
    sql = f"SELECT * FROM pragma_{pragma}(?, ?)"  # noqa: S608 - pragma is one of ours
    return conn.execute(sql, (arg, schema)).fetchall()


def _columns(conn: sqlite3.Connection, table: TableName) -> list[str] | None:
    rows = _pragma(conn, "table_info", table.name, table.schema)
    return [row[1] for row in rows] or None


def _has_unique(conn: sqlite3.Connection, table: TableName, key: Sequence[str]) -> bool:
    """Whether a primary key or a unique, non-partial index covers exactly ``key``."""
    want = {fold(k) for k in key}
    primary = {fold(r[1]) for r in _pragma(conn, "table_info", table.name, table.schema) if r[5]}
    if primary == want:
        return True
    for _seq, index, unique, _origin, partial in _pragma(
        conn, "index_list", table.name, table.schema
    ):
        if unique and not partial:
            cols = [r[2] for r in _pragma(conn, "index_info", index, table.schema)]
            if None not in cols and {fold(c) for c in cols} == want:
                return True
    return False


def insert_sql(table: TableName, plan: ColumnPlan, mode: LoadMode) -> str:
    """``INSERT`` with ``?`` placeholders, and for upsert its ``ON CONFLICT`` clause."""
    cols = ", ".join(quote(c) for c in plan.columns)
    marks = ", ".join("?" for _ in plan.columns)
    sql = f"INSERT INTO {table.sql} ({cols}) VALUES ({marks})"  # noqa: S608 - all quoted
    if mode is LoadMode.UPSERT:
        keys = {fold(k) for k in plan.key}
        updates = [f"{quote(c)} = excluded.{quote(c)}" for c in plan.columns if fold(c) not in keys]
        action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
        sql += f" ON CONFLICT ({', '.join(quote(k) for k in plan.key)}) {action}"
    return sql


_MARKER_DDL, _MARKER_FIND, _MARKER_ADD = marker_sql(
    "?", {"rows": "INTEGER", "run_id": "INTEGER"}, loaded="strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
)


def load_sqlite(db: Path, load: FileLoad) -> LoadResult:
    """Load one file into a table of the SQLite file ``db``, in one transaction (with its
    marker, when given: a file already marked is not loaded again)."""
    started = time.perf_counter()
    with open_source(load.path, load.fmt) as source:
        try:
            conn = _connect(db)
        except sqlite3.Error as err:
            raise translate(err, db, f"open the database to {load.doing}") from err
        try:
            rows, created, already = _load(conn, db, load, source)
        finally:
            conn.close()
    return load.result(rows, time.perf_counter() - started, created, already)


def _load(
    conn: sqlite3.Connection, db: Path, load: FileLoad, source: SourceBase
) -> tuple[int, bool, Marked | None]:
    table, mode, marker, doing = load.table, load.mode, load.marker, load.doing
    try:
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as err:
        raise translate(err, db, doing) from err
    inserting = False
    try:
        marker_key = marker.key(table) if marker else None
        if marker_key is not None:
            conn.execute(_MARKER_DDL)
            found = conn.execute(_MARKER_FIND, marker_key).fetchone()
            if found is not None:
                _rollback(conn)
                return 0, False, Marked(found[0], found[1], found[2])
        existing = _columns(conn, table)
        plan = plan_columns(source, table, existing, load.key)
        if existing is None:
            conn.execute(create_sql(table, plan, SQLITE_TYPES))
        elif mode is LoadMode.UPSERT and not _has_unique(conn, table, plan.key):
            raise no_unique(table, plan.key)
        if mode is LoadMode.REPLACE:
            conn.execute(f"DELETE FROM {table.sql}")  # noqa: S608 - quoted
        sql = insert_sql(table, plan, mode)
        records = source.records(len(plan.columns), plan.kinds, native=True)
        inserting = True
        conn.executemany(sql, records)
        inserting = False
        if marker_key is not None and marker is not None:
            added = (*marker_key, marker.identity, str(source.path), source.rows, marker.run_id)
            conn.execute(_MARKER_ADD, added)
        conn.execute("COMMIT")
    except sqlite3.Error as err:
        _rollback(conn)
        # constraints, type mismatches, oversized values: the row's fault, so its line
        if (
            inserting
            and source.line
            and isinstance(err, sqlite3.IntegrityError | sqlite3.DataError)
        ):
            raise refused_row(source, source.line, str(err)) from err
        raise translate(err, db, doing) from err
    except BaseException:
        _rollback(conn)
        raise
    return source.rows, existing is None, None


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is closed next: SQLite rolls back then all the same


@contextmanager
def query_sqlite(
    db: Path, query: str, batch: int
) -> Iterator[tuple[list[str], Iterator[Sequence[Any]]]]:
    """Run ``query`` on ``db`` opened read-only (``mode=ro``: a write in the query fails)
    in one read transaction; yields the column names and the rows, ``batch`` at a time."""
    if not db.is_file():
        raise LoadError(
            f"cannot export from {db}: no such database file",
            hint="check the database URL (sqlite:///relative.db, sqlite:////absolute.db)",
        )
    doing = f"run the export query on {db}"
    try:
        conn = _connect(db, read_only=True)
    except sqlite3.Error as err:
        raise translate(err, db, doing) from err
    try:
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # is it a database?
        except sqlite3.Error as err:
            raise translate(err, db, doing) from err
        try:
            cursor = conn.execute(query)
        except sqlite3.Error as err:
            raise _query_error(err, db, doing) from err
        if cursor.description is None:
            raise LoadError(
                f"cannot export from {db}: the query returns no rows (it is not a SELECT)",
                hint="give a SELECT (or WITH ... SELECT)",
            )
        names = [str(d[0]) for d in cursor.description]

        def batches() -> Iterator[Sequence[Any]]:
            try:
                while chunk := cursor.fetchmany(batch):
                    yield chunk
            except sqlite3.Error as err:
                raise _query_error(err, db, doing) from err

        yield names, batches()
    finally:
        _rollback(conn)
        conn.close()


def _query_error(err: sqlite3.Error, db: Path, doing: str) -> LoadError:
    if isinstance(err, sqlite3.OperationalError) and "readonly" in str(err):
        return LoadError(
            f"cannot {doing}: the query tries to write, and exports open the database read-only",
            hint="give a SELECT; run statements that change data in a step of their own",
        )
    if isinstance(err, sqlite3.OperationalError | sqlite3.ProgrammingError) and not getattr(
        err, "sqlite_errorname", ""
    ).startswith(("SQLITE_BUSY", "SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return LoadError(f"cannot {doing}: {err}", hint="correct the query")
    return translate(err, db, doing)
