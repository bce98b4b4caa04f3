"""export_query from real SQLite files: streaming, formats, round trips, whole files only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ferryman.errors import ConfigError, LoadError
from ferryman.loads import CsvFormat, ExportResult, export_query, load_csv

CSV = CsvFormat()


def make_db(tmp_path: Path, *statements: str) -> str:
    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()
    return f"sqlite:///{tmp_path / 'w.db'}"


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if "ferryman-part" in p.name)


def test_export_writes_header_rows_and_nulls(tmp_path: Path) -> None:
    db = make_db(
        tmp_path,
        "CREATE TABLE t (id INTEGER, name TEXT, amount REAL)",
        "INSERT INTO t VALUES (1, 'ann', 1.5), (2, NULL, 0.1), (3, 'a,b \"c\"', NULL)",
    )
    out = tmp_path / "out.csv"
    result = export_query(db, "SELECT * FROM t ORDER BY id;", out, CSV)
    assert isinstance(result, ExportResult)
    assert (result.rows, result.path) == (3, out)
    assert out.read_bytes() == b'id,name,amount\n1,ann,1.5\n2,,0.1\n3,"a,b ""c""",\n'
    assert result.to_dict()["rows"] == 3
    assert leftovers(tmp_path) == []


def test_export_formats(tmp_path: Path) -> None:
    db = make_db(
        tmp_path,
        "CREATE TABLE t (a TEXT, b TEXT)",
        "INSERT INTO t VALUES ('x\ty', NULL), ('é', 'two\nlines')",
    )
    out = tmp_path / "out.tsv"
    fmt = CsvFormat(format="tsv", null_strings=["\\N", ""], header=False, line_terminator="\r\n")
    export_query(db, "SELECT a, b FROM t ORDER BY rowid", out, fmt)
    assert out.read_bytes().decode() == '"x\ty"\t\\N\r\né\t"two\nlines"\r\n'
    bom = tmp_path / "bom.csv"
    export_query(db, "SELECT a FROM t WHERE a = 'é'", bom, CsvFormat(encoding="utf-8-sig"))
    assert bom.read_bytes() == "\ufeffa\né\n".encode()


def test_round_trip_through_load_and_export(tmp_path: Path) -> None:
    text = 'id,name,when,flag\n1,"multi\nline, with comma",2024-01-02,true\n2,,2024-03-04,no\n'
    source = tmp_path / "in.csv"
    source.write_text(text, encoding="utf-8", newline="")
    db = f"sqlite:///{tmp_path / 'w.db'}"
    fmt = CsvFormat(column_types={"id": "integer", "when": "date", "flag": "boolean"})
    load_csv(db, "t", source, fmt)
    out = tmp_path / "out.csv"
    export_query(db, "SELECT * FROM t ORDER BY id", out, CSV)
    assert out.read_bytes().decode() == text.replace("true", "1").replace("no", "0")
    load_csv(db, "copy", out, fmt)
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        same = conn.execute("SELECT * FROM t EXCEPT SELECT * FROM copy").fetchall()
        assert same == [] and conn.execute("SELECT count(*) FROM copy").fetchone() == (2,)
    finally:
        conn.close()


def test_export_replaces_an_existing_file_only_when_complete(tmp_path: Path) -> None:
    db = make_db(tmp_path, "CREATE TABLE t (a TEXT)", "INSERT INTO t VALUES ('ok'), ('ü')")
    out = tmp_path / "out.csv"
    out.write_text("previous export\n", encoding="utf-8")
    with pytest.raises(LoadError, match=r"row 2 of the result holds a character that ascii"):
        export_query(db, "SELECT a FROM t ORDER BY rowid", out, CsvFormat(encoding="ascii"))
    assert out.read_text(encoding="utf-8") == "previous export\n"
    assert leftovers(tmp_path) == []
    export_query(db, "SELECT a FROM t ORDER BY rowid", out, CSV)
    assert out.read_text(encoding="utf-8") == "a\nok\nü\n"


def test_failed_query_leaves_no_file(tmp_path: Path) -> None:
    db = make_db(tmp_path, "CREATE TABLE t (a TEXT)")
    out = tmp_path / "out.csv"
    with pytest.raises(LoadError, match="no such table: missing"):
        export_query(db, "SELECT * FROM missing", out, CSV)
    with pytest.raises(LoadError, match=r"row 1 of the result|the result cannot be written"):
        make_db(tmp_path, "INSERT INTO t VALUES ('a,b')")
        export_query(db, "SELECT a FROM t", out, CsvFormat(quotechar=None))
    assert not out.exists() and leftovers(tmp_path) == []


def test_a_failure_mid_stream_leaves_no_file(tmp_path: Path) -> None:
    """abs() of the smallest integer overflows on the 3rd row, after rows were written."""
    db = make_db(
        tmp_path,
        "CREATE TABLE t (v INTEGER)",
        "INSERT INTO t VALUES (1), (2), (-9223372036854775808)",
    )
    out = tmp_path / "out.csv"
    with pytest.raises(LoadError, match="integer overflow"):
        export_query(db, "SELECT abs(v) FROM t ORDER BY rowid", out, CSV)
    assert not out.exists() and leftovers(tmp_path) == []


def test_export_opens_the_database_read_only(tmp_path: Path) -> None:
    db = make_db(tmp_path, "CREATE TABLE t (a TEXT)", "INSERT INTO t VALUES ('keep')")
    out = tmp_path / "out.csv"
    with pytest.raises(LoadError, match="exports open the database read-only"):
        export_query(db, "DELETE FROM t RETURNING a", out, CSV)
    with pytest.raises(LoadError, match="returns no rows"):
        export_query(db, "PRAGMA foreign_keys = ON", out, CSV)
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        assert conn.execute("SELECT a FROM t").fetchall() == [("keep",)]
    finally:
        conn.close()
    assert not out.exists()


def test_one_statement_only(tmp_path: Path) -> None:
    db = make_db(tmp_path, "CREATE TABLE t (a TEXT)", "INSERT INTO t VALUES ('x;y')")
    out = tmp_path / "out.csv"
    with pytest.raises(ConfigError, match="more than one statement"):
        export_query(db, "SELECT * FROM t; DROP TABLE t", out, CSV)
    with pytest.raises(ConfigError, match="empty"):
        export_query(db, " ; -- nothing", out, CSV)
    result = export_query(db, "SELECT a, ';' AS \"x;\" FROM t -- a ; comment\n;", out, CSV)
    assert result.rows == 1
    assert out.read_text(encoding="utf-8") == "a,x;\nx;y,;\n"


def test_empty_result_writes_the_header(tmp_path: Path) -> None:
    db = make_db(tmp_path, "CREATE TABLE t (a TEXT, b TEXT)")
    out = tmp_path / "out.csv"
    assert export_query(db, "SELECT * FROM t", out, CSV).rows == 0
    assert out.read_text(encoding="utf-8") == "a,b\n"


def test_missing_or_unreadable_database(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    with pytest.raises(LoadError, match="no such database file"):
        export_query(f"sqlite:///{tmp_path / 'none.db'}", "SELECT 1", out, CSV)
    assert not (tmp_path / "none.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(LoadError, match="is not an SQLite database"):
        export_query(f"sqlite:///{junk}", "SELECT 1", out, CSV)
    assert not out.exists()


def test_bad_destination(tmp_path: Path) -> None:
    db = make_db(tmp_path, "CREATE TABLE t (a TEXT)")
    with pytest.raises(LoadError, match="does not exist"):
        export_query(db, "SELECT * FROM t", tmp_path / "no" / "out.csv", CSV)
    with pytest.raises(LoadError, match="is a directory"):
        export_query(db, "SELECT * FROM t", tmp_path, CSV)


def test_large_export_is_streamed(tmp_path: Path) -> None:
    db = make_db(
        tmp_path,
        "CREATE TABLE t (i INTEGER)",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25000) "
        "INSERT INTO t SELECT i FROM n",
    )
    out = tmp_path / "out.csv"
    assert export_query(db, "SELECT i FROM t ORDER BY i", out, CSV).rows == 25000
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "i" and lines[-1] == "25000" and len(lines) == 25001
