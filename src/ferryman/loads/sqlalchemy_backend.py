"""Loading into and exporting from any database SQLAlchemy reaches (optional: ``ferryman[db]``).

The generic path: rows go in batches through ``executemany`` (SQLAlchemy picks the driver's
fastest form), all of one file inside one transaction. Each batch runs inside a SAVEPOINT;
when the database refuses a batch, its rows are tried one by one (each in a savepoint of its
own) to find the refused row, so the error names its line like the SQLite path does -- and
then the whole transaction is rolled back. Tables are created and inspected through
SQLAlchemy's schema tools, so the types are each database's own.

Upsert uses ``INSERT ... ON CONFLICT (key) DO UPDATE`` on PostgreSQL and SQLite; other
databases take append and replace only. PostgreSQL's COPY is not used (and not tested: no
server runs in the test suite), see docs/loads.md.

SQLite through SQLAlchemy (``sqlite+pysqlite:///x.db``) gets the documented pysqlite
work-around (``BEGIN`` emitted by SQLAlchemy, not deferred by the driver), without which
savepoints and transactional DDL do not work.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

# The ignore keeps mypy clean on installs without the optional dependency (names are Any then).
import sqlalchemy as sa  # type: ignore[import-not-found, unused-ignore]
from sqlalchemy.dialects import (  # type: ignore[import-not-found, unused-ignore]
    postgresql,
    sqlite,
)

from ..errors import ConfigError, LoadError
from .common import line_batches, not_a_select, refused_batch, refused_row
from .csvformat import ColumnType
from .formats import open_source
from .markers import MARKER_COLUMNS, MARKER_TABLE, Marked
from .plan import ColumnPlan, plan_columns
from .reader import SourceBase
from .results import FileLoad, LoadMode, LoadResult
from .sql import DatabaseURL, TableName, fold

__all__ = ["BATCH", "SA_TYPES", "load_sqlalchemy", "query_sqlalchemy"]

#: rows per executemany (and per savepoint)
BATCH = 5000
#: seconds to wait for a connection (or, in SQLite, for another writer's lock)
CONNECT_TIMEOUT = 60

SA_TYPES: dict[ColumnType | None, type[sa.types.TypeEngine[Any]]] = {
    None: sa.Text,
    ColumnType.TEXT: sa.Text,
    ColumnType.INTEGER: sa.BigInteger,
    ColumnType.REAL: sa.Double,
    ColumnType.NUMERIC: sa.Numeric,
    ColumnType.DATE: sa.Date,
    ColumnType.TIMESTAMP: sa.DateTime,
    ColumnType.BOOLEAN: sa.Boolean,
}


def _engine(url: DatabaseURL, *, write: bool) -> sa.engine.Engine:
    try:
        parsed = sa.engine.make_url(url.url)
    except sa.exc.ArgumentError as err:
        raise ConfigError(f"database URL {url.describe()!r} is not valid: {err}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError(
            f"database {url.describe()!r} is not a file: a load into an in-memory database "
            "is lost when ferryman exits",
            hint="give a file, e.g. sqlite+pysqlite:///warehouse.db",
        )
    # every wait has a time-out: connecting (PostgreSQL, MySQL) or another writer's lock (SQLite)
    name = {"sqlite": "timeout", "postgresql": "connect_timeout", "mysql": "connect_timeout"}
    option = name.get(parsed.get_backend_name())
    connect_args = {option: CONNECT_TIMEOUT} if option and option not in parsed.query else {}
    try:
        engine = sa.create_engine(parsed, hide_parameters=True, connect_args=connect_args)
    except sa.exc.NoSuchModuleError as err:
        raise ConfigError(
            f"SQLAlchemy has no dialect for {url.describe()!r}: {err}",
            hint="check the URL's scheme, and install the dialect's package",
        ) from None
    except ImportError as err:
        raise ConfigError(
            f"the database driver for {url.describe()!r} is not installed ({err.name})",
            hint=f"pip install {err.name or 'the driver'}",
        ) from None
    if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
        _fix_pysqlite(engine, "BEGIN IMMEDIATE" if write else "BEGIN")
    return engine


def _fix_pysqlite(engine: sa.engine.Engine, begin: str) -> None:
    """SQLAlchemy's documented recipe: let SQLAlchemy, not pysqlite, start transactions
    (a load takes the write lock at once, as the stdlib path does)."""

    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def _begin(connection: sa.engine.Connection) -> None:
        connection.exec_driver_sql(begin)

    sa.event.listen(engine, "connect", _connect)
    sa.event.listen(engine, "begin", _begin)


def _reason(err: sa.exc.SQLAlchemyError) -> str:
    """The driver's own message, without SQLAlchemy's statement dump."""
    orig = getattr(err, "orig", None)
    return str(orig if orig is not None else err).strip().splitlines()[0]


def _translate(err: sa.exc.SQLAlchemyError, url: DatabaseURL, doing: str) -> LoadError:
    if isinstance(err, sa.exc.OperationalError | sa.exc.InterfaceError) and getattr(
        err, "connection_invalidated", False
    ):
        return LoadError(f"cannot {doing}: the connection to the database was lost", retriable=True)
    return LoadError(
        f"cannot {doing}: {url.describe()}: {_reason(err)}",
        hint="check the database URL, that the database is up and that this user may write "
        "the table",
    )


def _existing(inspector: sa.engine.Inspector, table: TableName) -> list[str] | None:
    if not inspector.has_table(table.name, schema=table.schema):
        return None
    return [str(col["name"]) for col in inspector.get_columns(table.name, schema=table.schema)]


def _has_unique(inspector: sa.engine.Inspector, table: TableName, key: Sequence[str]) -> bool:
    want = {fold(k) for k in key}
    candidates: list[Sequence[str | None]] = [
        inspector.get_pk_constraint(table.name, schema=table.schema)["constrained_columns"]
    ]
    candidates += [
        u["column_names"] for u in inspector.get_unique_constraints(table.name, table.schema)
    ]
    for index in inspector.get_indexes(table.name, schema=table.schema):
        options = index.get("dialect_options", {})
        if index["unique"] and not any(k.endswith("_where") for k in options):
            candidates.append(index["column_names"])
    return any(
        None not in cols and {fold(c) for c in cols if c is not None} == want for cols in candidates
    )


def _create(conn: sa.engine.Connection, table: TableName, plan: ColumnPlan) -> None:
    keys = {fold(k) for k in plan.key}
    columns: list[Any] = [
        sa.Column(col, SA_TYPES[kind](), nullable=fold(col) not in keys, quote=True)
        for col, kind in zip(plan.columns, plan.kinds, strict=True)
    ]
    if plan.key:
        columns.append(sa.UniqueConstraint(*plan.key))
    sa.Table(table.name, sa.MetaData(), *columns, schema=table.schema, quote=True).create(conn)


def _statement(
    conn: sa.engine.Connection, table: TableName, plan: ColumnPlan, mode: LoadMode
) -> Any:
    target = sa.table(
        table.name,
        *[
            sa.column(col, SA_TYPES[kind]() if kind is not None else None)
            for col, kind in zip(plan.columns, plan.kinds, strict=True)
        ],
        schema=table.schema,
    )
    if mode is not LoadMode.UPSERT:
        return sa.insert(target)
    dialect = conn.dialect.name
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise ConfigError(
            f"mode upsert is not supported on {dialect} (only PostgreSQL and SQLite)",
            hint="load into a staging table with mode replace and merge it with a run step",
        )
    stmt = insert(target)
    keys = {fold(k) for k in plan.key}
    updates = {c: stmt.excluded[c] for c in plan.columns if fold(c) not in keys}
    if not updates:
        return stmt.on_conflict_do_nothing(index_elements=plan.key)
    return stmt.on_conflict_do_update(index_elements=plan.key, set_=updates)


def _marker_table() -> sa.Table:
    """:data:`~ferryman.loads.markers.MARKER_TABLE` for SQLAlchemy: bounded key columns, so
    that every database (MariaDB's index length limit included) can make them its key."""
    return sa.Table(
        MARKER_TABLE,
        sa.MetaData(),
        sa.Column("job", sa.String(200), primary_key=True),
        sa.Column("step", sa.String(200), primary_key=True),
        sa.Column("target_table", sa.String(200), primary_key=True),
        sa.Column("file_key", sa.String(64), primary_key=True),
        sa.Column("identity", sa.Text, nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("loaded", sa.String(40), nullable=False),
    )


def _find_marker(conn: sa.engine.Connection, markers: sa.Table, key: dict[str, str]) -> Any:
    markers.create(conn, checkfirst=True)
    query = sa.select(markers.c.run_id, markers.c.loaded, markers.c.rows).where(
        *(markers.c[name] == value for name, value in key.items())
    )
    return conn.execute(query).first()


def load_sqlalchemy(url: DatabaseURL, load: FileLoad) -> LoadResult:
    """Load one file into a table through SQLAlchemy, in one transaction (with its marker,
    when given: a file already marked is not loaded again)."""
    started = time.perf_counter()
    with open_source(load.path, load.fmt) as source:
        engine = _engine(url, write=True)
        try:
            with engine.connect() as conn, conn.begin():
                rows, created, already = _marked_load(conn, load, source)
        except sa.exc.SQLAlchemyError as err:
            raise _translate(err, url, load.doing) from err
        finally:
            engine.dispose()
    return load.result(rows, time.perf_counter() - started, created, already)


def _marked_load(
    conn: sa.engine.Connection, load: FileLoad, source: SourceBase
) -> tuple[int, bool, Marked | None]:
    """The load, and its marker in the same transaction (see ``ferryman.loads.markers``)."""
    table, marker = load.table, load.marker
    if marker is None:
        return (*_load(conn, load, source), None)
    markers = _marker_table()
    marker_key = dict(zip(MARKER_COLUMNS[:4], marker.key(table), strict=True))
    found = _find_marker(conn, markers, marker_key)
    if found is not None:
        return 0, False, Marked(found.run_id, found.loaded, found.rows)
    rows, created = _load(conn, load, source)
    row = dict(zip(MARKER_COLUMNS, marker.row(table, source.path, rows), strict=True))
    conn.execute(sa.insert(markers), [row])
    return rows, created, None


def _load(conn: sa.engine.Connection, load: FileLoad, source: SourceBase) -> tuple[int, bool]:
    table, mode = load.table, load.mode
    inspector = sa.inspect(conn)
    existing = _existing(inspector, table)
    plan = plan_columns(source, table, existing, load.key)
    if existing is None:
        _create(conn, table, plan)
    elif mode is LoadMode.UPSERT and not _has_unique(inspector, table, plan.key):
        cols = ", ".join(plan.key)
        raise LoadError(
            f"cannot upsert into {table}: it has no primary key or unique index on ({cols}), "
            "so rows cannot be matched by that key",
            hint="create a unique index on the key columns, or correct key; nothing was loaded",
        )
    if mode is LoadMode.REPLACE:
        conn.execute(sa.delete(sa.table(table.name, schema=table.schema)))
    stmt = _statement(conn, table, plan, mode)
    names = plan.columns
    for batch, lines in line_batches(source, plan, BATCH):
        rows = [dict(zip(names, row, strict=True)) for row in batch]
        _insert(conn, stmt, rows, lines, source)
    return source.rows, existing is None


#: errors a row causes: constraint violations, values the column's type refuses
_ROW_ERRORS = (sa.exc.IntegrityError, sa.exc.DataError)


def _insert(
    conn: sa.engine.Connection,
    stmt: Any,
    batch: list[dict[str, Any]],
    lines: list[int],
    source: SourceBase,
) -> None:
    try:
        with conn.begin_nested():
            conn.execute(stmt, batch)
        return
    except _ROW_ERRORS:
        pass  # a row's fault (anything else propagates): find which row
    for row, line in zip(batch, lines, strict=True):
        try:
            with conn.begin_nested():
                conn.execute(stmt, [row])
        except _ROW_ERRORS as err:
            raise refused_row(source, line, _reason(err)) from err
    raise refused_batch(source, lines)


@contextmanager
def query_sqlalchemy(
    url: DatabaseURL, query: str, batch: int
) -> Iterator[tuple[list[str], Iterator[Sequence[Any]]]]:
    """Run ``query`` as given in a transaction that is rolled back at the end (so a write in
    it does not last, where the database can roll it back); yields the column names and the
    rows, ``batch`` at a time, from a server-side cursor where the driver has one."""
    engine = _engine(url, write=False)
    doing = "run the export query"
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            try:
                result = conn.execution_options(stream_results=True).exec_driver_sql(query)
                if not result.returns_rows:
                    raise not_a_select(doing)
                names = list(map(str, result.keys()))

                def batches() -> Iterator[Sequence[Any]]:
                    try:
                        while chunk := result.fetchmany(batch):
                            yield [[_cell(v) for v in row] for row in chunk]
                    except sa.exc.SQLAlchemyError as err:
                        raise LoadError(f"cannot {doing}: {_reason(err)}") from err

                yield names, batches()
            finally:
                trans.rollback()
    except sa.exc.SQLAlchemyError as err:
        raise LoadError(f"cannot {doing}: {_reason(err)}", hint="correct the query") from err
    finally:
        engine.dispose()


def _cell(value: Any) -> Any:
    """A value as CSV writes it: booleans as true/false, bytes in hexadecimal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value
