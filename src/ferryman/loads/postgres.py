"""Loading into PostgreSQL through psycopg 3 and COPY (``ferryman[postgres]``; exports are in
``postgres_export``).

A load is one transaction: create the table if needed, ``DELETE`` (replace: readers see the
old rows until the commit), ``COPY ... FROM STDIN``, the upsert's merge, the load marker,
``COMMIT``. The rows never sit in memory: they stream from the file to the server.

Two ways to feed ``COPY``:

- **the file's own bytes** (``FORMAT csv``, the server parses them: what ``psql \\copy``
  does, at its speed) for a CSV/TSV file whose layout PostgreSQL reads as ferryman does: a
  quote character, no escape character, one NULL string (matched quoted or not, as ferryman
  matches it: ``FORCE_NULL``), an encoding PostgreSQL knows, at least two columns (a blank
  line is then an error, never a row of NULLs). Typed columns are parsed by the server.
- **rows** ferryman reads, checks and converts (``write_row``): every other layout and format.

When COPY refuses a row, its context (``COPY t, line N``) counts records from the first one
sent, blank ones included; the file is read again up to that record (ferryman's own checks
run on the way, so a malformed record before it is reported as ferryman reports it) to name
``FILE:LINE`` -- the line where the record starts, even after quoted fields spanning lines. A
file the server reads differently (a blank line among the records: ``22P04``) is loaded again
through rows, in a new transaction.

Upsert copies into a temporary table and merges with ``INSERT ... SELECT DISTINCT ON (key)
... ON CONFLICT (key) DO UPDATE``, the last row of a key in the file winning.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg  # type: ignore[import-not-found, unused-ignore]
from psycopg import sql as pgsql  # type: ignore[import-not-found, unused-ignore]

from ..errors import LoadError
from .common import column_list, create_sql, marker_sql, no_unique
from .csvformat import ColumnType, CsvFormat
from .formats import open_source
from .markers import LoadMarker, Marked
from .opener import open_binary
from .plan import ColumnPlan, plan_columns
from .reader import CsvSource, SourceBase
from .results import FileLoad, LoadMode, LoadResult
from .sql import DatabaseURL, TableName, fold, quote

__all__ = [
    "PG_TYPES",
    "connect",
    "copy_encoding",
    "first_line",
    "literal",
    "load_postgres",
    "native_csv",
    "rollback_quietly",
]

#: seconds to wait for a connection, and for another transaction's lock
CONNECT_TIMEOUT = 60
LOCK_TIMEOUT = 600
#: bytes a raw COPY sends at a time
CHUNK = 1 << 20
PG_TYPES = {
    None: "TEXT",
    ColumnType.TEXT: "TEXT",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.REAL: "DOUBLE PRECISION",
    ColumnType.NUMERIC: "NUMERIC",
    ColumnType.DATE: "DATE",
    ColumnType.TIMESTAMP: "TIMESTAMP",
    ColumnType.BOOLEAN: "BOOLEAN",
}
#: Python codec -> PostgreSQL encoding, for the encodings COPY can read itself
_ENCODINGS = {
    "utf-8": "UTF8",
    "latin-1": "LATIN1",
    "iso8859-15": "LATIN9",
    "cp1252": "WIN1252",
    "cp1251": "WIN1251",
    "cp1250": "WIN1250",
    "ascii": "SQL_ASCII",
}
_CONTEXT_LINE = re.compile(r"^COPY .*?, line (\d+)(?:, column ([^:]*))?", re.M)
_MARKER_DDL, _MARKER_FIND, _MARKER_ADD = marker_sql("%s", {"rows": "BIGINT", "run_id": "BIGINT"})


class _Retry(Exception):
    """The server read the file differently from ferryman: load it again through rows."""


def connect(url: DatabaseURL) -> Any:
    """A psycopg connection (not autocommit); LoadError saying why when it cannot be made."""
    rest = url.url.partition("://")[2]
    conninfo = "postgresql://" + rest
    options: dict[str, Any] = {
        "application_name": "ferryman",
        # a server that vanishes mid-load is noticed, not waited for forever
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    if "connect_timeout" not in rest:
        options["connect_timeout"] = CONNECT_TIMEOUT
    try:
        return psycopg.connect(conninfo, **options)
    except psycopg.Error as err:
        raise LoadError(
            f"cannot connect to {url.describe()}: {first_line(err)}",
            hint="check the database URL, that the server is up and that this user may log in",
            retriable=True,
        ) from None
    except Exception as err:  # an invalid conninfo is a ProgrammingError, but be sure
        raise LoadError(f"cannot connect to {url.describe()}: {err}") from None


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _lost(err: psycopg.Error, conn: Any) -> bool:
    return isinstance(err, psycopg.OperationalError) and (conn.closed or conn.broken)


def native_csv(fmt: CsvFormat, width: int) -> str | None:
    """The PostgreSQL encoding to COPY ``fmt``'s files in as they are, or None when the
    server would read them differently from ferryman (then rows are sent)."""
    if width < 2 or len(fmt.null_strings) != 1:
        return None
    return copy_encoding(fmt, fmt.null_strings[0])


def copy_encoding(fmt: CsvFormat, null: str) -> str | None:
    """The PostgreSQL encoding for COPY's CSV in ``fmt`` with the NULL string ``null``; None
    when COPY would read or write it differently from ferryman."""
    if fmt.format not in ("csv", "tsv") or fmt.quotechar is None:
        return None
    if fmt.escapechar is not None or not fmt.doublequote or any(c in null for c in "\r\n\\"):
        return None
    return _ENCODINGS.get(codecs.lookup(fmt.encoding).name)


def literal(conn: Any, value: str | None) -> str:
    """``value`` as an SQL string literal for ``conn`` (COPY's options take no parameters)."""
    text: str = pgsql.Literal(value).as_string(conn)
    return text


def load_postgres(url: DatabaseURL, load: FileLoad) -> LoadResult:
    """Load one file into a table of a PostgreSQL database, in one transaction."""
    started = time.perf_counter()
    conn = connect(url)
    method: list[str] = []
    try:
        try:
            rows, created, already = _transaction(conn, url, load, method)
        except _Retry:
            rows, created, already = _transaction(conn, url, load, method, native=False)
    finally:
        conn.close()
    used = method[-1] if method else "copy rows"
    return load.result(rows, time.perf_counter() - started, created, already, used)


def _transaction(
    conn: Any, url: DatabaseURL, load: FileLoad, method: list[str], *, native: bool = True
) -> tuple[int, bool, Marked | None]:
    table, path, fmt, mode, doing = load.table, load.path, load.fmt, load.mode, load.doing
    with open_source(path, fmt) as source:
        try:
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}s'")
            found = _find_marker(conn, table, load.marker)
            if found is not None:
                conn.rollback()
                return 0, False, found
            types = _column_types(conn, table)
            existing = list(types) if types is not None else None
            plan = plan_columns(source, table, existing, load.key)
            if existing is None:
                conn.execute(create_sql(table, plan, PG_TYPES))
            elif mode is LoadMode.UPSERT and not _has_unique(conn, table, plan.key):
                raise no_unique(table, plan.key, index="CREATE UNIQUE INDEX")
            if mode is LoadMode.REPLACE:
                conn.execute(f"DELETE FROM {table.sql}")  # noqa: S608 - quoted
            target = table.sql
            if mode is LoadMode.UPSERT:
                target = _temp_table(conn, table, plan)
            encoding = native_csv(fmt, len(plan.columns)) if native else None
            if encoding is not None and not _server_checks(plan, types):
                encoding = None
            if encoding is not None and isinstance(source, CsvSource):
                method.append("copy file")
                rows = _copy_bytes(conn, target, plan, source, encoding)
            else:
                method.append("copy rows")
                rows = _copy_rows(conn, target, plan, source)
            if mode is LoadMode.UPSERT:
                _merge(conn, table, target, plan, source)
            _add_marker(conn, table, load.marker, source.path, rows)
            conn.commit()
        except psycopg.Error as err:
            rollback_quietly(conn)
            if _lost(err, conn):
                raise LoadError(
                    f"cannot {doing}: the connection to the database was lost ({first_line(err)})",
                    hint="nothing of the file was committed; run again when the server is back",
                    retriable=True,
                ) from None
            if isinstance(err, psycopg.errors.LockNotAvailable):
                raise LoadError(
                    f"cannot {doing}: another transaction kept a lock for more than "
                    f"{LOCK_TIMEOUT} s",
                    hint="another program is writing to the table; run again when it is done",
                    retriable=True,
                ) from None
            raise _row_error(err, path, fmt, source.names, native, doing, url) from None
        except BaseException:
            rollback_quietly(conn)
            raise
    return rows, existing is None, None


def rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except psycopg.Error:
        pass  # the connection is closed next: the server rolls back then all the same


def _find_marker(conn: Any, table: TableName, marker: LoadMarker | None) -> Marked | None:
    if marker is None:
        return None
    key = marker.key(table)
    conn.execute(_MARKER_DDL)
    # two loaders of one file: the second waits for the first's commit, then sees its marker
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ["\x1f".join(key)])
    row = conn.execute(_MARKER_FIND, key).fetchone()
    return Marked(row[0], row[1], row[2]) if row is not None else None


def _add_marker(
    conn: Any, table: TableName, marker: LoadMarker | None, path: Path, rows: int
) -> None:
    if marker is None:
        return
    conn.execute(_MARKER_ADD, marker.row(table, path, rows))


def _column_types(conn: Any, table: TableName) -> dict[str, str] | None:
    """The table's columns and their types, in order; None when it does not exist."""
    if conn.execute("SELECT to_regclass(%s)", [table.sql]).fetchone()[0] is None:
        return None
    rows = conn.execute(
        "SELECT attname, atttypid::regtype::text FROM pg_attribute WHERE attrelid ="
        " to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        [table.sql],
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


_TEXTUAL = ("text", "character varying", "character", "name", "citext", "bpchar")


def _server_checks(plan: ColumnPlan, types: dict[str, str] | None) -> bool:
    """Whether the server checks every typed column itself: false when a column_types
    column goes to a text column of an existing table (only ferryman's reader checks it)."""
    if types is None:
        return True  # ferryman creates the table with the declared types
    for column, kind in zip(plan.columns, plan.kinds, strict=True):
        if kind not in (None, ColumnType.TEXT) and types[column].startswith(_TEXTUAL):
            return False
    return True


def _has_unique(conn: Any, table: TableName, key: Sequence[str]) -> bool:
    rows = conn.execute(
        "SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indpred IS NULL"
        " AND i.indexprs IS NULL GROUP BY i.indexrelid",
        [table.sql],
    ).fetchall()
    want = {fold(k) for k in key}
    return any({fold(c) for c in cols} == want for (cols,) in rows)


def _temp_table(conn: Any, table: TableName, plan: ColumnPlan) -> str:
    """A temporary table with the file's columns typed as in ``table``, dropped at commit."""
    cols = ", ".join(quote(c) for c in plan.columns)
    conn.execute(
        f"CREATE TEMPORARY TABLE ferryman_upsert ON COMMIT DROP AS"  # noqa: S608 - quoted
        f" SELECT {cols} FROM {table.sql} WITH NO DATA"
    )
    return "ferryman_upsert"


def _merge(conn: Any, table: TableName, temp: str, plan: ColumnPlan, source: SourceBase) -> None:
    cols = ", ".join(quote(c) for c in plan.columns)
    keys = ", ".join(quote(k) for k in plan.key)
    folded = {fold(k) for k in plan.key}
    updates = [f"{quote(c)} = excluded.{quote(c)}" for c in plan.columns if fold(c) not in folded]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    # a fresh temporary table filled by one COPY keeps the file's order in ctid: the last
    # row of a key wins, as in every other database path
    statement = (
        f"INSERT INTO {table.sql} ({cols}) SELECT DISTINCT ON ({keys}) {cols}"  # noqa: S608
        f" FROM {temp} ORDER BY {keys}, ctid DESC ON CONFLICT ({keys}) {action}"
    )
    try:
        conn.execute(statement)
    except psycopg.errors.IntegrityError as err:
        detail = f" ({err.diag.message_detail})" if err.diag.message_detail else ""
        raise LoadError(
            f"{source.path}: the database refused a row when merging the file into {table}: "
            f"{err.diag.message_primary}{detail}",
            hint=f"nothing of {source.path} was loaded; fix the row (or the table's "
            "constraints) and load the file again",
        ) from None


def _copy_sql(target: str, plan: ColumnPlan, options: str = "") -> str:
    cols = ", ".join(quote(c) for c in plan.columns)
    return f"COPY {target} ({cols}) FROM STDIN{options}"


def _copy_bytes(conn: Any, target: str, plan: ColumnPlan, source: CsvSource, encoding: str) -> int:
    fmt = source.fmt
    options = (
        f" (FORMAT csv, DELIMITER {literal(conn, fmt.delimiter)},"
        f" QUOTE {literal(conn, fmt.quotechar or '')}, NULL {literal(conn, fmt.null_strings[0])},"
        f" FORCE_NULL ({column_list(plan.columns)}), ENCODING {literal(conn, encoding)})"
    )
    offset = source.data_offset()
    with conn.cursor() as cur, open_binary(source.path, fmt) as raw:
        if raw.seekable():
            raw.seek(offset)
        else:
            while offset > 0:
                offset -= len(raw.read(min(offset, CHUNK)))
        with cur.copy(_copy_sql(target, plan, options)) as copy:
            while chunk := raw.read(CHUNK):
                copy.write(chunk)
        return int(cur.rowcount)


def _copy_rows(conn: Any, target: str, plan: ColumnPlan, source: SourceBase) -> int:
    with conn.cursor() as cur, cur.copy(_copy_sql(target, plan)) as copy:
        write = copy.write_row
        for row in source.records(len(plan.columns), plan.kinds, native=False):
            write(row)
    return source.rows


def _row_error(
    err: psycopg.Error,
    path: Path,
    fmt: CsvFormat,
    names: list[str] | None,
    native: bool,
    doing: str,
    url: DatabaseURL,
) -> LoadError | _Retry:
    """The error to raise for a refused COPY: at the record's FILE:LINE when the server said
    which one (ferryman's own message when its reader finds the record malformed)."""
    diag = err.diag
    match = _CONTEXT_LINE.search(diag.context or "")
    if match is None:
        return LoadError(
            f"cannot {doing}: {url.describe()}: {first_line(err)}",
            hint="check the database URL, that the database is up and that this user may "
            "write the table; nothing of the file was loaded",
        )
    number = int(match.group(1))
    column = match.group(2)
    width = len(names) if names else 0
    kinds = [fmt.column_types.get(n) for n in names or []]
    with open_source(path, fmt) as again:
        line = again.locate(number, width, kinds)  # raises ferryman's error for a bad record
    if native and diag.sqlstate == "22P04":
        return _Retry()
    what = f"column {column}: " if column else ""
    where = f"{path}:{line}" if line else str(path)
    return LoadError(
        f"{where}: {what}the database refused this row: {diag.message_primary}",
        hint=f"nothing of {path} was loaded; fix the row (or the table's constraints, or "
        "declare the column's type in format.column_types) and load the file again",
    )
