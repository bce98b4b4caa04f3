"""Loading into MySQL and MariaDB through PyMySQL (``ferryman[mysql]``; exports are in
``mysql_export``).

PyMySQL is pure Python: it installs everywhere without a C client library, and it speaks
``LOAD DATA LOCAL INFILE`` (the client streams the file to the server in packets, so memory
stays flat). The session runs with ``ANSI_QUOTES`` (identifiers are double-quoted as in every
other ferryman path) and ``STRICT_ALL_TABLES`` (a bad value is an error, never a warning and
a silent 0).

Two ways in, each inside one transaction:

- **LOAD DATA LOCAL INFILE** with the file itself, when the server allows it and the file's
  layout is one it reads as ferryman does (uncompressed CSV/TSV, a quote character, no escape
  character, the header on the first line, an encoding it knows); NULL strings map through
  ``NULLIF``. Any warning (a short or long record, a truncated value) or refused row rolls it
  back and the file is loaded again the second way, which names the line.
- **Batched multi-row INSERTs** of the rows ferryman reads, checks and converts, each batch
  in a SAVEPOINT: when the server refuses a batch, its rows are tried one by one to name the
  refused row's ``FILE:LINE``.

Upsert: ``INSERT ... ON DUPLICATE KEY UPDATE`` (through a temporary table for LOAD DATA);
it matches on any unique key of the table, as MySQL does. MySQL commits DDL at once: a table
ferryman creates exists from the start of the load, and is dropped again if the load fails.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql  # type: ignore[import-not-found, import-untyped, unused-ignore]
import pymysql.cursors  # type: ignore[import-not-found, import-untyped, unused-ignore]

from ..errors import ConfigError, LoadError
from .common import (
    create_sql,
    line_batches,
    marker_sql,
    no_unique,
    refused_batch,
    refused_row,
)
from .csvformat import ColumnType, CsvFormat
from .formats import open_source
from .markers import LoadMarker, Marked
from .plan import ColumnPlan, plan_columns
from .reader import CsvSource, SourceBase
from .results import FileLoad, LoadMode, LoadResult
from .sql import DatabaseURL, TableName, fold, quote

__all__ = [
    "BATCH",
    "MYSQL_TYPES",
    "close_quietly",
    "connect",
    "load_mysql",
    "reason",
    "rollback_quietly",
]

BATCH = 2000
CONNECT_TIMEOUT = 60
#: seconds one statement may take (a LOAD DATA of a big file is one statement)
STATEMENT_TIMEOUT = 3600
LOCK_TIMEOUT = 600
MYSQL_TYPES = {
    None: "LONGTEXT",
    ColumnType.TEXT: "LONGTEXT",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.REAL: "DOUBLE",
    ColumnType.NUMERIC: "DECIMAL(38, 10)",
    ColumnType.DATE: "DATE",
    ColumnType.TIMESTAMP: "DATETIME(6)",
    ColumnType.BOOLEAN: "BOOLEAN",
}
#: an indexed column needs a bounded type
_KEY_TYPES = {"LONGTEXT": "VARCHAR(255)"}
_ENGINE = " ENGINE=InnoDB"
#: Python codec -> character set LOAD DATA reads (MySQL's latin1 is Windows-1252)
_CHARSETS = {"utf-8": "utf8mb4", "cp1252": "latin1", "ascii": "ascii"}
#: errors saying the connection is gone (server gone away, lost during query, ...)
_LOST = {2006, 2013, 2014, 2055, 2003}
#: LOAD DATA LOCAL refused by the server or the client
_NO_LOCAL = {1148, 3948, 4166, 2068}
_ROW_ERRORS = (pymysql.err.DataError, pymysql.err.IntegrityError)
#: the marker's key columns bounded, for InnoDB's index length limit
_MARKER_TYPES = {
    "job": "VARCHAR(200)",
    "step": "VARCHAR(200)",
    "target_table": "VARCHAR(200)",
    "file_key": "CHAR(64)",
    "rows": "BIGINT",
    "run_id": "BIGINT",
    "loaded": "VARCHAR(40)",
}
_MARKER_DDL, _MARKER_FIND, _MARKER_ADD = marker_sql("%s", _MARKER_TYPES, options=_ENGINE)


class _Again(Exception):
    """LOAD DATA could not load the file as ferryman reads it: load it through INSERTs."""


def connect(url: DatabaseURL) -> Any:
    """A PyMySQL connection (not autocommit, strict, ANSI quotes); LoadError when it fails."""
    parts = urlsplit(url.url)
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError(
            f"database URL {url.describe()!r} names no database",
            hint="give mysql://user:password@host/DATABASE",
        )
    try:
        conn = pymysql.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=database,
            charset="utf8mb4",
            local_infile=True,
            autocommit=False,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=STATEMENT_TIMEOUT,
            write_timeout=STATEMENT_TIMEOUT,
        )
    except pymysql.err.MySQLError as err:
        raise LoadError(
            f"cannot connect to {url.describe()}: {reason(err)}",
            hint="check the database URL, that the server is up and that this user may log in",
            retriable=True,
        ) from None
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,ANSI_QUOTES'")
        cur.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT}")
    return conn


def reason(err: BaseException) -> str:
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    if len(args) >= 2:
        return f"{args[1]} ({args[0]})"
    return str(err) or type(err).__name__


def _lost(err: BaseException) -> bool:
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    return isinstance(err, pymysql.err.InterfaceError) or (
        isinstance(err, pymysql.err.OperationalError) and bool(args) and args[0] in _LOST
    )


def load_mysql(url: DatabaseURL, load: FileLoad) -> LoadResult:
    """Load one file into a table of a MySQL/MariaDB database, in one transaction."""
    started = time.perf_counter()
    table, marker = load.table, load.marker
    conn = connect(url)
    missing = False
    try:
        try:
            with conn.cursor() as cur:
                if marker is not None:
                    cur.execute(_MARKER_DDL)
                    found = _find_marker(cur, table, marker, lock=False)
                    if found is not None:
                        conn.rollback()
                        return load.result(0, 0.0, False, found)
                missing = _columns(cur, table) is None
                method = ["load data"]
                try:
                    rows, found = _load(conn, cur, load, method)
                except _Again:
                    method = ["insert"]
                    rows, found = _load(conn, cur, load, method, fast=False)
        except BaseException as err:
            rollback_quietly(conn)
            if missing:
                _drop(conn, table)
            if isinstance(err, pymysql.err.MySQLError):
                raise _translate(err, url, load.doing) from None
            raise
    finally:
        close_quietly(conn)
    return load.result(rows, time.perf_counter() - started, missing, found, method[0])


def _translate(err: pymysql.err.MySQLError, url: DatabaseURL, doing: str) -> LoadError:
    if _lost(err):
        return LoadError(
            f"cannot {doing}: the connection to the database was lost ({reason(err)})",
            hint="nothing of the file was committed; run again when the server is back",
            retriable=True,
        )
    if getattr(err, "args", (None,))[0] == 1205:
        return LoadError(
            f"cannot {doing}: another transaction kept a lock for more than {LOCK_TIMEOUT} s",
            hint="another program is writing to the table; run again when it is done",
            retriable=True,
        )
    return LoadError(
        f"cannot {doing}: {url.describe()}: {reason(err)}",
        hint="check the database URL, that the database is up and that this user may write "
        "the table; nothing of the file was loaded",
    )


def rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except pymysql.err.MySQLError:
        pass  # the connection is closed next: the server rolls back then all the same


def close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except pymysql.err.MySQLError:
        pass  # already gone


def _drop(conn: Any, table: TableName) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table.sql}")
    except pymysql.err.MySQLError:
        pass  # the load's error is the one to report


def _find_marker(
    cur: Any, table: TableName, marker: LoadMarker | None, *, lock: bool
) -> Marked | None:
    if marker is None:
        return None
    cur.execute(_MARKER_FIND + (" FOR UPDATE" if lock else ""), marker.key(table))
    row = cur.fetchone()
    return Marked(row[0], row[1], row[2]) if row is not None else None


def _load(
    conn: Any, cur: Any, load: FileLoad, method: list[str], *, fast: bool = True
) -> tuple[int, Marked | None]:
    table, fmt, mode, marker = load.table, load.fmt, load.mode, load.marker
    with open_source(load.path, fmt) as source:
        existing = _columns(cur, table)
        plan = plan_columns(source, table, existing, load.key)
        if existing is None:
            # MySQL commits DDL at once
            cur.execute(create_sql(table, plan, MYSQL_TYPES, key_types=_KEY_TYPES, options=_ENGINE))
        elif mode is LoadMode.UPSERT and not _has_unique(cur, table, plan.key):
            raise no_unique(table, plan.key)
        charset = _charset(fmt, source, len(plan.columns)) if fast else None
        cur.execute("START TRANSACTION")
        found = _find_marker(cur, table, marker, lock=True)
        if found is not None:
            conn.rollback()
            return 0, found
        if mode is LoadMode.REPLACE:
            cur.execute(f"DELETE FROM {table.sql}")  # noqa: S608 - quoted
        if charset is not None and isinstance(source, CsvSource):
            try:
                rows = _load_data(cur, table, plan, source, mode, charset)
            except (_Again, *_ROW_ERRORS) as err:
                conn.rollback()
                raise _Again from err
            except pymysql.err.MySQLError as err:
                if _lost(err) or getattr(err, "args", (None,))[0] not in _NO_LOCAL:
                    raise
                conn.rollback()
                raise _Again from err
        else:
            method[0] = "insert"
            rows = _insert_rows(cur, table, plan, source, mode)
        if marker is not None:
            cur.execute(_MARKER_ADD, marker.row(table, load.path, rows))
        conn.commit()
    return rows, None


def _columns(cur: Any, table: TableName) -> list[str] | None:
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema ="
        " COALESCE(%s, DATABASE()) AND table_name = %s ORDER BY ordinal_position",
        (table.schema, table.name),
    )
    names = [str(r[0]) for r in cur.fetchall()]
    return names or None


def _has_unique(cur: Any, table: TableName, key: Sequence[str]) -> bool:
    cur.execute(
        "SELECT index_name, column_name FROM information_schema.statistics WHERE"
        " table_schema = COALESCE(%s, DATABASE()) AND table_name = %s AND non_unique = 0",
        (table.schema, table.name),
    )
    indexes: dict[str, set[str]] = {}
    for index, column in cur.fetchall():
        indexes.setdefault(str(index), set()).add(fold(str(column)))
    want = {fold(k) for k in key}
    return any(cols == want for cols in indexes.values())


def _upsert_clause(plan: ColumnPlan) -> str:
    keys = {fold(k) for k in plan.key}
    updates = [f"{quote(c)} = VALUES({quote(c)})" for c in plan.columns if fold(c) not in keys]
    if not updates:
        first = quote(plan.key[0])
        updates = [f"{first} = {first}"]  # nothing to update: keep the row
    return " ON DUPLICATE KEY UPDATE " + ", ".join(updates)


def _charset(fmt: CsvFormat, source: SourceBase, width: int) -> str | None:
    """The character set to LOAD DATA ``fmt``'s file in as it is, or None when the server
    would read it differently from ferryman."""
    if fmt.format not in ("csv", "tsv") or width < 2 or fmt.skip_rows:
        return None
    if fmt.compression_of(source.path.name) != "none":
        return None
    if fmt.quotechar is None or fmt.escapechar is not None or not fmt.doublequote:
        return None
    if len(fmt.null_strings) > 1 or source.header_line not in (0, 1):
        return None
    return _CHARSETS.get(codecs.lookup(fmt.encoding).name)


def _line_end(path: Path) -> str:
    with open(path, "rb") as raw:
        head = raw.read(1 << 16)
    newline = head.find(b"\n")
    if newline > 0 and head[newline - 1 : newline] == b"\r":
        return "\r\n"
    if newline < 0 and b"\r" in head:
        return "\r"
    return "\n"


def _load_data(
    cur: Any, table: TableName, plan: ColumnPlan, source: CsvSource, mode: LoadMode, charset: str
) -> int:
    fmt = source.fmt
    variables = [f"@v{i}" for i in range(len(plan.columns))]
    null = fmt.null_strings[0] if fmt.null_strings else None
    sets = [
        f"{quote(col)} = " + (f"NULLIF({var}, %s)" if null is not None else var)
        for col, var in zip(plan.columns, variables, strict=True)
    ]
    # A record with fewer fields leaves variables NULL, one with more fills @extra, and the
    # unquoted word NULL is NULL to LOAD DATA (text to ferryman): any of them is counted in
    # @ferryman_odd, and the file is then loaded the exact way. No warning says so.
    odd = " + ".join([f"({var} IS NULL)" for var in variables] + ["(@extra IS NOT NULL)"])
    sets[0] = sets[0].replace(" = ", f" = IF((@ferryman_odd := @ferryman_odd + {odd}) >= 0, ", 1)
    sets[0] += ", NULL)"
    cur.execute("SET @ferryman_odd = 0")
    target = table.sql
    if mode is LoadMode.UPSERT:
        cols = ", ".join(quote(c) for c in plan.columns)
        cur.execute("DROP TEMPORARY TABLE IF EXISTS ferryman_upsert")
        cur.execute(
            "CREATE TEMPORARY TABLE ferryman_upsert (ferryman_row BIGINT AUTO_INCREMENT"  # noqa: S608
            f" PRIMARY KEY) ENGINE=InnoDB SELECT {cols} FROM {table.sql} LIMIT 0"
        )
        target = "ferryman_upsert"
    header = 1 if fmt.header else 0
    if not fmt.header:
        with open(source.path, "rb") as raw:
            if raw.read(3) == codecs.BOM_UTF8:
                raise _Again  # the BOM would be part of the first value
    statement = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {target} CHARACTER SET {charset}"
        " FIELDS TERMINATED BY %s OPTIONALLY ENCLOSED BY %s ESCAPED BY ''"
        f" LINES TERMINATED BY %s IGNORE {header} LINES ({', '.join(variables)}, @extra)"
        f" SET {', '.join(sets)}"
    )
    params = [str(source.path), fmt.delimiter, fmt.quotechar, _line_end(source.path)]
    params += [null] * len(sets) if null is not None else []
    rows = int(cur.execute(statement, params))
    cur.execute("SELECT @ferryman_odd, @@warning_count")
    odd_rows, warnings = cur.fetchone()
    if odd_rows or warnings:
        raise _Again  # a short or long record, a truncated value: read it as ferryman does
    if mode is LoadMode.UPSERT:
        cols = ", ".join(quote(c) for c in plan.columns)
        cur.execute(
            f"INSERT INTO {table.sql} ({cols}) SELECT {cols} FROM ferryman_upsert"  # noqa: S608
            " ORDER BY ferryman_row" + _upsert_clause(plan)
        )
        cur.execute("DROP TEMPORARY TABLE ferryman_upsert")
    return rows


def _insert_rows(
    cur: Any, table: TableName, plan: ColumnPlan, source: SourceBase, mode: LoadMode
) -> int:
    cols = ", ".join(quote(c) for c in plan.columns)
    marks = ", ".join("%s" for _ in plan.columns)
    statement = f"INSERT INTO {table.sql} ({cols}) VALUES ({marks})"  # noqa: S608 - quoted
    if mode is LoadMode.UPSERT:
        statement += _upsert_clause(plan)
    for batch, lines in line_batches(source, plan, BATCH):
        _insert(cur, statement, batch, lines, source)
    return source.rows


def _insert(
    cur: Any, statement: str, batch: list[list[Any]], lines: list[int], source: SourceBase
) -> None:
    cur.execute("SAVEPOINT ferryman_batch")
    try:
        cur.executemany(statement, batch)
        return
    except _ROW_ERRORS:
        cur.execute("ROLLBACK TO SAVEPOINT ferryman_batch")
    for row, line in zip(batch, lines, strict=True):
        try:
            cur.execute(statement, row)
        except _ROW_ERRORS as err:
            raise refused_row(source, line, reason(err)) from None
    raise refused_batch(source, lines)
