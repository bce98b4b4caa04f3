"""The SQLAlchemy path (``ferryman[db]``), exercised on real SQLite files through
``sqlite+pysqlite:///`` URLs; skipped where SQLAlchemy is not installed (except the test of
the message that says to install it)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from ferryman import loads
from ferryman.errors import ConfigError, LoadError
from ferryman.loads import CsvFormat, export_query, load_csv

CSV = CsvFormat()


@pytest.fixture
def sa_url(tmp_path: Path) -> str:
    pytest.importorskip("sqlalchemy")
    return f"sqlite+pysqlite:///{tmp_path / 'w.db'}"


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def execute(tmp_path: Path, *statements: str) -> None:
    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


def test_append_creates_a_typed_table(tmp_path: Path, sa_url: str) -> None:
    fmt = CsvFormat(
        column_types={"id": "integer", "day": "date", "ok": "boolean", "at": "timestamp"}
    )
    path = write(tmp_path, "id,name,day,ok,at\n1,ann,2024-01-02,yes,2024-01-02T03:04:05\n2,,,,\n")
    result = load_csv(sa_url, "t", path, fmt)
    assert (result.rows, result.created_table) == (2, True)
    got = rows(tmp_path, "SELECT id, name, day, ok, at FROM t ORDER BY id")
    assert got == [
        (1, "ann", "2024-01-02", 1, "2024-01-02 03:04:05.000000"),
        (2, None, None, None, None),
    ]
    again = load_csv(sa_url, "t", path, fmt)
    assert (again.rows, again.created_table) == (2, False)
    assert rows(tmp_path, "SELECT count(*) FROM t") == [(4,)]


def test_numeric_and_real(tmp_path: Path, sa_url: str) -> None:
    fmt = CsvFormat(column_types={"n": "numeric", "r": "real"})
    load_csv(sa_url, "t", write(tmp_path, "n,r\n12.50,0.25\n"), fmt)
    assert rows(tmp_path, "SELECT n, r FROM t") == [(12.5, 0.25)]


def test_replace_and_a_failing_replace(tmp_path: Path, sa_url: str) -> None:
    fmt = CsvFormat(column_types={"a": "integer"})
    load_csv(sa_url, "t", write(tmp_path, "a\n1\n2\n"), fmt)
    load_csv(sa_url, "t", write(tmp_path, "a\n3\n"), fmt, mode="replace")
    assert rows(tmp_path, "SELECT a FROM t") == [(3,)]
    with pytest.raises(LoadError, match=r"in\.csv:3: column a: 'x' is not an integer"):
        load_csv(sa_url, "t", write(tmp_path, "a\n4\nx\n"), fmt, mode="replace")
    assert rows(tmp_path, "SELECT a FROM t") == [(3,)]


def test_a_refused_row_in_a_later_batch_is_found_and_nothing_is_loaded(
    tmp_path: Path, sa_url: str
) -> None:
    execute(tmp_path, "CREATE TABLE t (id INTEGER UNIQUE, v TEXT)")
    body = "".join(f"{i},v{i}\n" for i in range(1, 7001))
    path = write(tmp_path, f"id,v\n{body}6500,dup\n")
    with pytest.raises(LoadError, match=r"in\.csv:7002: the database refused this row: UNIQUE"):
        load_csv(sa_url, "t", path, CSV)
    assert rows(tmp_path, "SELECT count(*) FROM t") == [(0,)]


def test_a_failure_rolls_back_a_table_it_created(tmp_path: Path, sa_url: str) -> None:
    with pytest.raises(LoadError, match=r"in\.csv:3: 1 fields where 2"):
        load_csv(sa_url, "t", write(tmp_path, "a,b\n1,2\n3\n"), CSV)
    assert rows(tmp_path, "SELECT name FROM sqlite_master") == []


def test_an_error_that_is_not_a_rows_fault(tmp_path: Path, sa_url: str) -> None:
    execute(tmp_path, "CREATE TABLE t (a TEXT)", "CREATE VIEW v AS SELECT a FROM t")
    with pytest.raises(LoadError, match=r"cannot load .* into v: .*cannot modify v") as info:
        load_csv(sa_url, "v", write(tmp_path, "a\n1\n"), CSV)
    assert "refused this row" not in str(info.value)


def test_upsert(tmp_path: Path, sa_url: str) -> None:
    fmt = CsvFormat(column_types={"id": "integer"})
    load_csv(sa_url, "t", write(tmp_path, "id,v\n1,a\n2,b\n"), fmt, "upsert", ["id"])
    load_csv(sa_url, "t", write(tmp_path, "id,v\n2,B\n3,c\n"), fmt, "upsert", ["id"])
    assert rows(tmp_path, "SELECT id, v FROM t ORDER BY id") == [(1, "a"), (2, "B"), (3, "c")]
    load_csv(sa_url, "k", write(tmp_path, "a\nx\nx\n"), CSV, "upsert", ["a"])
    assert rows(tmp_path, "SELECT a FROM k") == [("x",)]


def test_upsert_needs_a_unique_index(tmp_path: Path, sa_url: str) -> None:
    execute(tmp_path, "CREATE TABLE t (id TEXT, v TEXT)")
    with pytest.raises(LoadError, match=r"no primary key or unique index on \(id\)"):
        load_csv(sa_url, "t", write(tmp_path, "id,v\n1,a\n"), CSV, "upsert", ["id"])
    execute(tmp_path, "CREATE UNIQUE INDEX t_id ON t (id)")
    assert load_csv(sa_url, "t", write(tmp_path, "id,v\n1,a\n"), CSV, "upsert", ["id"]).rows == 1


def test_hostile_and_odd_identifiers(tmp_path: Path, sa_url: str) -> None:
    execute(tmp_path, "CREATE TABLE y (keep TEXT)", "INSERT INTO y VALUES ('safe')")
    hostile = 'x"; drop table y; --'
    path = write(tmp_path, '"x""; drop table y; --","a b","it\'s"\n1,2,3\n')
    load_csv(sa_url, hostile, path, CSV, mode="upsert", key=[hostile])
    load_csv(sa_url, hostile, path, CSV, mode="replace")
    assert rows(tmp_path, "SELECT keep FROM y") == [("safe",)]
    assert rows(tmp_path, 'SELECT "a b", "it\'s" FROM "x""; drop table y; --"') == [("2", "3")]


def test_existing_table_with_typed_columns_takes_text_values(tmp_path: Path, sa_url: str) -> None:
    execute(tmp_path, "CREATE TABLE t (id INTEGER, day DATE)")
    load_csv(sa_url, "t", write(tmp_path, "id,day\n1,2024-05-06\n"), CSV)
    assert rows(tmp_path, "SELECT id, day FROM t") == [(1, "2024-05-06")]


def test_export_round_trip_and_rollback(tmp_path: Path, sa_url: str) -> None:
    fmt = CsvFormat(column_types={"id": "integer", "ok": "boolean"})
    text = 'id,name,ok\n1,"a,b",true\n2,,false\n'
    load_csv(sa_url, "t", write(tmp_path, text), fmt)
    out = tmp_path / "out.csv"
    result = export_query(sa_url, "SELECT id, name, ok FROM t ORDER BY id", out, CSV)
    assert result.rows == 2
    assert out.read_text(encoding="utf-8") == 'id,name,ok\n1,"a,b",1\n2,,0\n'
    nulls = CsvFormat(null_strings=["NULL"])
    export_query(sa_url, "SELECT name FROM t ORDER BY id", out, nulls)
    assert out.read_text(encoding="utf-8") == 'name\n"a,b"\nNULL\n'
    export_query(sa_url, "DELETE FROM t RETURNING id", out, CSV)
    assert rows(tmp_path, "SELECT count(*) FROM t") == [(2,)]  # rolled back


def test_export_errors_leave_no_file(tmp_path: Path, sa_url: str) -> None:
    execute(tmp_path, "CREATE TABLE t (a TEXT)")
    out = tmp_path / "out.csv"
    with pytest.raises(LoadError, match="no such table: missing"):
        export_query(sa_url, "SELECT * FROM missing", out, CSV)
    with pytest.raises(LoadError, match="returns no rows"):
        export_query(sa_url, "PRAGMA foreign_keys = ON", out, CSV)
    with pytest.raises(ConfigError, match="more than one statement"):
        export_query(sa_url, "SELECT 1; SELECT 2", out, CSV)
    assert list(tmp_path.glob("out.csv*")) == []


def test_bad_sqlalchemy_urls(tmp_path: Path, sa_url: str) -> None:
    path = write(tmp_path, "a\n1\n")
    with pytest.raises(ConfigError, match="in-memory"):
        load_csv("sqlite+pysqlite:///:memory:", "t", path, CSV)
    with pytest.raises(ConfigError, match="no dialect"):
        load_csv("nosuchdb://host/db", "t", path, CSV)
    with pytest.raises(LoadError, match="cannot load"):
        load_csv(f"sqlite+pysqlite:///{tmp_path / 'no' / 'dir.db'}", "t", path, CSV)


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [
        ("psycopg", "postgresql://etl:s3cret@localhost/dw", "postgres"),
        ("pymysql", "mysql://etl:s3cret@localhost/dw", "mysql"),
    ],
)
def test_a_missing_driver_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, url: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    backend = "postgres" if extra == "postgres" else "mysql"
    monkeypatch.delitem(sys.modules, f"ferryman.loads.{backend}", raising=False)
    path = write(tmp_path, "a\n1\n")
    with pytest.raises(ConfigError, match=f"needs {module}") as info:
        load_csv(url, "t", path, CSV)
    assert "s3cret" not in str(info.value) and f"ferryman[{extra}]" in (info.value.hint or "")


def test_without_sqlalchemy_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "ferryman.loads.sqlalchemy_backend", raising=False)
    monkeypatch.delattr(loads, "sqlalchemy_backend", raising=False)
    path = write(tmp_path, "a\n1\n")
    with pytest.raises(ConfigError, match="needs SQLAlchemy") as info:
        load_csv("mssql+pyodbc://etl@db.example/dw", "t", path, CSV)
    assert "ferryman[db]" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="needs SQLAlchemy"):
        export_query("mssql+pyodbc://etl@db.example/dw", "SELECT 1", tmp_path / "o.csv", CSV)
