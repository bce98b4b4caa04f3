"""``load_csv``: one CSV/TSV file into one table, in one transaction, whatever the database.

``sqlite:///`` URLs go through the stdlib ``sqlite3`` (the fast path, always available);
``postgresql://`` through psycopg and COPY (``ferryman[postgres]``), ``mysql://`` and
``mariadb://`` through PyMySQL and LOAD DATA (``ferryman[mysql]``); every other URL through
SQLAlchemy (``ferryman[db]``). The optional drivers are imported only when such a URL is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from ..errors import ConfigError
from .csvformat import CsvFormat
from .markers import LoadMarker
from .plan import check_mode
from .results import FileLoad, LoadMode, LoadResult
from .sql import parse_database, parse_table
from .sqlite import load_sqlite

__all__ = ["load_csv", "load_file", "mysql_backend", "postgres_backend", "sqlalchemy_backend"]


def _optional(module: str, needs: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(f"ferryman.loads.{module}")
    except ModuleNotFoundError as err:
        if err.name != needs:
            raise
        raise ConfigError(
            f"this database URL needs {needs}, which is not installed",
            hint=f"pip install 'ferryman[{extra}]'; sqlite:/// URLs work without it",
        ) from None


def postgres_backend(*, export: bool = False) -> ModuleType:
    """The PostgreSQL backend (psycopg): its loader, or with ``export`` its exporter;
    ConfigError saying what to install when missing."""
    return _optional("postgres_export" if export else "postgres", "psycopg", "postgres")


def mysql_backend(*, export: bool = False) -> ModuleType:
    """The MySQL/MariaDB backend (PyMySQL): its loader, or with ``export`` its exporter;
    ConfigError saying what to install when missing."""
    return _optional("mysql_export" if export else "mysql", "pymysql", "mysql")


def sqlalchemy_backend() -> ModuleType:
    """The SQLAlchemy backend module; ConfigError saying what to install when it is missing."""
    try:
        from . import sqlalchemy_backend as backend  # noqa: PLC0415 - optional dependency
    except ModuleNotFoundError as err:
        if err.name != "sqlalchemy":
            raise
        raise ConfigError(
            "this database URL needs SQLAlchemy, which is not installed",
            hint="pip install 'ferryman[db]' (and the database's driver, e.g. psycopg for "
            "PostgreSQL); sqlite:/// URLs work without it",
        ) from None
    return backend


def load_csv(
    database: str,
    table: str,
    path: Path,
    fmt: CsvFormat,
    mode: LoadMode | str = LoadMode.APPEND,
    key: Sequence[str] = (),
    marker: LoadMarker | None = None,
) -> LoadResult:
    """Load the file ``path`` into ``table`` of ``database`` (a URL), in one transaction.

    The file is read as ``fmt`` says: CSV/TSV, or ``fmt.format`` xlsx, fixed, jsonl, parquet,
    gzip- or zip-compressed (:mod:`ferryman.loads.formats`).

    The table is created from the file's columns when it does not exist (typed as
    ``fmt.column_types`` says, TEXT otherwise). ``mode``: append, replace (the table's rows
    replaced by the file's in the same transaction) or upsert on the ``key`` columns.
    Any bad row fails the whole file with a :class:`~ferryman.errors.LoadError` that says
    ``FILE:LINE: what is wrong`` and leaves nothing of the file in the table.

    With a ``marker`` the load is exactly-once (:mod:`ferryman.loads.markers`): the marker is
    committed with the rows, and a file whose marker is already there is not loaded again
    (the result's ``already`` says when it was).
    """
    url = parse_database(database)
    name = parse_table(table)
    checked, keys = check_mode(mode, key)
    load = FileLoad(name, Path(path), fmt, checked, keys, marker)
    if url.sqlite_path is not None:
        return load_sqlite(url.sqlite_path, load)
    result: LoadResult
    if url.kind == "postgresql":
        result = postgres_backend().load_postgres(url, load)
    elif url.kind == "mysql":
        result = mysql_backend().load_mysql(url, load)
    else:
        result = sqlalchemy_backend().load_sqlalchemy(url, load)
    return result


#: ``load_csv`` loads every format ``fmt.format`` names (xlsx, fixed, jsonl, parquet too)
load_file = load_csv
