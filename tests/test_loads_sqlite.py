"""load_csv into real SQLite files: modes, formats, types, errors at FILE:LINE, atomicity."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from ferryman.errors import ConfigError, ExitCode, LoadError
from ferryman.loads import CsvFormat, LoadMode, LoadResult, load_csv

CSV = CsvFormat()


def write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'w.db'}"


def rows(tmp_path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def execute(tmp_path: Path, *statements: str) -> None:
    conn = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


def test_append_creates_the_table_from_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "id,name\n1,ann\n2,bob\n")
    result = load_csv(url(tmp_path), "people", path, CSV)
    assert isinstance(result, LoadResult)
    assert (result.rows, result.table, result.created_table, result.path) == (
        2,
        "people",
        True,
        path,
    )
    assert rows(tmp_path, "SELECT * FROM people") == [("1", "ann"), ("2", "bob")]
    assert rows(tmp_path, "SELECT type FROM pragma_table_info('people')") == [("TEXT",)] * 2
    again = load_csv(url(tmp_path), "people", path, CSV, mode=LoadMode.APPEND)
    assert (again.rows, again.created_table) == (2, False)
    assert len(rows(tmp_path, "SELECT * FROM people")) == 4
    assert result.to_dict()["rows"] == 2


def test_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "a\n1\n")
    load_csv("sqlite:///w.db", "t", path, CSV)
    assert rows(tmp_path, "SELECT a FROM t") == [("1",)]


def test_replace_swaps_the_rows(tmp_path: Path) -> None:
    load_csv(url(tmp_path), "t", write(tmp_path, "a,b\n1,x\n2,y\n"), CSV)
    result = load_csv(url(tmp_path), "t", write(tmp_path, "a,b\n3,z\n", "new.csv"), CSV, "replace")
    assert result.rows == 1
    assert rows(tmp_path, "SELECT a, b FROM t") == [("3", "z")]


def test_failing_replace_leaves_the_old_rows(tmp_path: Path) -> None:
    fmt = CsvFormat(column_types={"a": "integer"})
    load_csv(url(tmp_path), "t", write(tmp_path, "a,b\n1,x\n2,y\n"), fmt)
    bad = write(tmp_path, "a,b\n3,z\n4,w\nfour,v\n", "bad.csv")
    with pytest.raises(LoadError, match=r"bad\.csv:4: column a: 'four' is not an integer"):
        load_csv(url(tmp_path), "t", bad, fmt, mode="replace")
    assert rows(tmp_path, "SELECT a, b FROM t ORDER BY a") == [(1, "x"), (2, "y")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_readers_see_the_old_rows_while_a_replace_runs(tmp_path: Path) -> None:
    """The file is a pipe: the load blocks reading it mid-way, inside its transaction."""
    load_csv(url(tmp_path), "t", write(tmp_path, "a\nold1\nold2\n"), CSV)
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    outcome: list[LoadResult | BaseException] = []

    def run() -> None:
        try:
            outcome.append(load_csv(url(tmp_path), "t", pipe, CSV, mode="replace"))
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    with open(pipe, "w", encoding="utf-8") as feed:  # opens when the loader opens it
        feed.write("a\nnew1\n")
        feed.flush()
        _wait_for_write_lock(tmp_path)  # the loader is inside BEGIN IMMEDIATE now
        assert rows(tmp_path, "SELECT a FROM t ORDER BY a") == [("old1",), ("old2",)]
        feed.write("new2\n")
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome[0], LoadResult) and outcome[0].rows == 2
    assert rows(tmp_path, "SELECT a FROM t ORDER BY a") == [("new1",), ("new2",)]


def _wait_for_write_lock(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "w.db", timeout=0, isolation_level=None)
    try:
        for _ in range(100_000):
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return  # locked by the loader
            conn.execute("ROLLBACK")
            threading.Event().wait(0.01)
        raise AssertionError("the loader never took the write lock")
    finally:
        conn.close()


def test_upsert_inserts_and_updates_on_the_key(tmp_path: Path) -> None:
    fmt = CsvFormat(column_types={"id": "integer", "qty": "integer"})
    first = write(tmp_path, "id,qty,note\n1,10,a\n2,20,b\n")
    load_csv(url(tmp_path), "stock", first, fmt, mode="upsert", key=["id"])
    second = write(tmp_path, "id,qty,note\n2,25,b2\n3,30,c\n", "2.csv")
    result = load_csv(url(tmp_path), "stock", second, fmt, mode="upsert", key=["id"])
    assert result.rows == 2
    assert rows(tmp_path, "SELECT id, qty, note FROM stock ORDER BY id") == [
        (1, 10, "a"),
        (2, 25, "b2"),
        (3, 30, "c"),
    ]


def test_upsert_with_a_composite_key_and_only_key_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b\n1,x\n1,y\n1,x\n")
    result = load_csv(url(tmp_path), "pairs", path, CSV, mode="upsert", key=["a", "b"])
    assert result.rows == 3
    assert rows(tmp_path, "SELECT a, b FROM pairs ORDER BY b") == [("1", "x"), ("1", "y")]


def test_upsert_uses_an_existing_primary_key_or_unique_index(tmp_path: Path) -> None:
    execute(
        tmp_path,
        "CREATE TABLE byid (id INTEGER PRIMARY KEY, v TEXT)",
        "CREATE TABLE bycode (code TEXT, v TEXT)",
        "CREATE UNIQUE INDEX bycode_code ON bycode (code)",
        "INSERT INTO byid VALUES (1, 'old')",
    )
    load_csv(url(tmp_path), "byid", write(tmp_path, "id,v\n1,new\n2,two\n"), CSV, "upsert", ["id"])
    assert rows(tmp_path, "SELECT id, v FROM byid ORDER BY id") == [(1, "new"), (2, "two")]
    path = write(tmp_path, "code,v\nA,1\nA,2\n", "codes.csv")
    load_csv(url(tmp_path), "bycode", path, CSV, "upsert", ["code"])
    assert rows(tmp_path, "SELECT code, v FROM bycode") == [("A", "2")]


def test_upsert_into_a_table_without_a_unique_index_is_refused(tmp_path: Path) -> None:
    execute(
        tmp_path,
        "CREATE TABLE t (id TEXT, v TEXT)",
        "CREATE UNIQUE INDEX partial ON t (id) WHERE v IS NOT NULL",
        "INSERT INTO t VALUES ('1', 'x')",
    )
    with pytest.raises(LoadError, match=r"no primary key or unique index on \(\"id\"\)") as info:
        load_csv(url(tmp_path), "t", write(tmp_path, "id,v\n1,y\n"), CSV, "upsert", ["id"])
    assert "CREATE UNIQUE INDEX" in (info.value.hint or "")
    assert rows(tmp_path, "SELECT * FROM t") == [("1", "x")]


def test_upsert_needs_a_key_and_other_modes_take_none(tmp_path: Path) -> None:
    path = write(tmp_path, "a\n1\n")
    with pytest.raises(ConfigError, match="needs a key"):
        load_csv(url(tmp_path), "t", path, CSV, mode="upsert")
    with pytest.raises(ConfigError, match="only used by mode upsert"):
        load_csv(url(tmp_path), "t", path, CSV, mode="append", key=["a"])
    with pytest.raises(ConfigError, match="unknown load mode"):
        load_csv(url(tmp_path), "t", path, CSV, mode="merge")
    with pytest.raises(LoadError, match="key column 'id' is not a column"):
        load_csv(url(tmp_path), "t", path, CSV, mode="upsert", key=["id"])


def test_upsert_key_may_not_be_null_in_a_table_ferryman_creates(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"in\.csv:3: the database refused this row: NOT NULL"):
        load_csv(url(tmp_path), "t", write(tmp_path, "id,v\n1,a\n,b\n"), CSV, "upsert", ["id"])
    assert rows(tmp_path, "SELECT name FROM sqlite_master") == []


def test_no_header_with_columns(tmp_path: Path) -> None:
    fmt = CsvFormat(header=False, columns=["x", "y"])
    result = load_csv(url(tmp_path), "t", write(tmp_path, "1,2\n3,4\n"), fmt)
    assert result.rows == 2
    assert rows(tmp_path, "SELECT x, y FROM t") == [("1", "2"), ("3", "4")]


def test_no_header_fills_an_existing_table_in_order(tmp_path: Path) -> None:
    execute(tmp_path, "CREATE TABLE t (p INTEGER, q TEXT)")
    load_csv(url(tmp_path), "t", write(tmp_path, "1,a\n"), CsvFormat(header=False))
    assert rows(tmp_path, "SELECT p, q FROM t") == [(1, "a")]


def test_no_header_and_no_table_asks_for_column_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no header and table t does not exist"):
        load_csv(url(tmp_path), "t", write(tmp_path, "1,a\n"), CsvFormat(header=False))


def test_columns_rename_the_header(tmp_path: Path) -> None:
    fmt = CsvFormat(columns=["id", "label"])
    load_csv(url(tmp_path), "t", write(tmp_path, "Identifier,Some Label\n1,a\n"), fmt)
    assert rows(tmp_path, "SELECT id, label FROM t") == [("1", "a")]
    with pytest.raises(LoadError, match=r"in\.csv:1: the header has 3 columns but"):
        load_csv(url(tmp_path), "t", write(tmp_path, "a,b,c\n1,2,3\n"), fmt)


def test_header_matches_existing_columns_ignoring_case_and_in_any_order(tmp_path: Path) -> None:
    execute(tmp_path, "CREATE TABLE t (id INTEGER, name TEXT, extra TEXT DEFAULT 'd')")
    load_csv(url(tmp_path), "t", write(tmp_path, "NAME,Id\nann,1\n"), CSV)
    assert rows(tmp_path, "SELECT id, name, extra FROM t") == [(1, "ann", "d")]


def test_header_column_missing_from_the_table(tmp_path: Path) -> None:
    execute(tmp_path, "CREATE TABLE t (id INTEGER)")
    with pytest.raises(LoadError, match=r"in\.csv:1: column 'name' of the file is not a column"):
        load_csv(url(tmp_path), "t", write(tmp_path, "id,name\n1,a\n"), CSV)


def test_tsv(tmp_path: Path) -> None:
    fmt = CsvFormat(format="tsv")
    assert fmt.delimiter == "\t"
    load_csv(url(tmp_path), "t", write(tmp_path, "a\tb\n1,5\tx y\n", "in.tsv"), fmt)
    assert rows(tmp_path, "SELECT a, b FROM t") == [("1,5", "x y")]


def test_other_delimiter_and_quotes_with_delimiters_and_newlines(tmp_path: Path) -> None:
    text = 'id;text\r\n1;"a;b"\r\n2;"line one\r\nline two"\r\n3;"say ""hi"""\r\n'
    result = load_csv(url(tmp_path), "t", write(tmp_path, text), CsvFormat(delimiter=";"))
    assert result.rows == 3
    assert rows(tmp_path, "SELECT text FROM t ORDER BY id") == [
        ("a;b",),
        ("line one\r\nline two",),
        ('say "hi"',),
    ]


def test_escapechar(tmp_path: Path) -> None:
    fmt = CsvFormat(escapechar="\\", doublequote=False)
    load_csv(url(tmp_path), "t", write(tmp_path, 'a\n"x\\"y"\nc\\,d\n'), fmt)
    assert rows(tmp_path, "SELECT a FROM t") == [('x"y',), ("c,d",)]


def test_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffid,name\n1,Zoë\n".encode())
    load_csv(url(tmp_path), "t", path, CSV)
    assert rows(tmp_path, "SELECT id, name FROM t") == [("1", "Zoë")]


def test_other_encodings(tmp_path: Path) -> None:
    path = write(tmp_path, "name\nZoë\n".encode("cp1252"))
    load_csv(url(tmp_path), "t", path, CsvFormat(encoding="cp1252"))
    path16 = write(tmp_path, "name\nJosé\n".encode("utf-16"), "u16.csv")
    load_csv(url(tmp_path), "t", path16, CsvFormat(encoding="utf-16"))
    assert rows(tmp_path, "SELECT name FROM t") == [("Zoë",), ("José",)]


def test_encoding_error_names_the_line_and_loads_nothing(tmp_path: Path) -> None:
    body = b"id,name\n" + b"".join(b"%d,name\n" % i for i in range(5000)) + b"9,Zo\xeb\n"
    path = write(tmp_path, body)
    with pytest.raises(LoadError, match=r"in\.csv:5002: bytes that are not valid utf-8") as info:
        load_csv(url(tmp_path), "t", path, CSV)
    assert "format.encoding" in (info.value.hint or "")
    assert info.value.exit_code is ExitCode.LOAD
    assert rows(tmp_path, "SELECT name FROM sqlite_master") == []


def test_errors_in_the_header(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"in\.csv:2: bytes that are not valid utf-8"):
        load_csv(
            url(tmp_path), "t", write(tmp_path, b"title\nn\xe4me,b\n1,2\n"), CsvFormat(skip_rows=1)
        )
    with pytest.raises(LoadError, match=r"in\.csv:1: a quote is followed by other characters"):
        load_csv(url(tmp_path), "t", write(tmp_path, '"a"b,c\n1,2\n'), CSV)


def test_null_strings(tmp_path: Path) -> None:
    text = "a,b,c\n,x,NULL\n\\N,,y\n"
    load_csv(url(tmp_path), "t", write(tmp_path, text), CSV)
    assert rows(tmp_path, "SELECT a, b, c FROM t") == [(None, "x", "NULL"), ("\\N", None, "y")]
    fmt = CsvFormat(null_strings=["NULL", "\\N"])
    load_csv(url(tmp_path), "u", write(tmp_path, text, "2.csv"), fmt)
    assert rows(tmp_path, "SELECT a, b, c FROM u") == [("", "x", None), (None, "", "y")]


def test_declared_types_are_converted_and_declared(tmp_path: Path) -> None:
    fmt = CsvFormat(
        column_types={
            "i": "integer",
            "r": "real",
            "n": "numeric",
            "d": "date",
            "ts": "timestamp",
            "b": "boolean",
            "t": "text",
        }
    )
    text = (
        "i,r,n,d,ts,b,t\n"
        " 42 ,1.5,12.50,2024-02-29,2024-02-29T13:45:00,Yes,007\n"
        "-7,1e3,3,20240301,2024-03-01 00:00:00.250000+01:00,f,\n"
    )
    load_csv(url(tmp_path), "typed", write(tmp_path, text), fmt)
    assert rows(tmp_path, "SELECT * FROM typed ORDER BY i DESC") == [
        (42, 1.5, 12.5, "2024-02-29", "2024-02-29 13:45:00", 1, "007"),
        (-7, 1000.0, 3, "2024-03-01", "2024-03-01 00:00:00.250000+01:00", 0, None),
    ]
    declared = rows(tmp_path, "SELECT name, type FROM pragma_table_info('typed')")
    assert declared == [
        ("i", "INTEGER"),
        ("r", "REAL"),
        ("n", "NUMERIC"),
        ("d", "DATE"),
        ("ts", "TIMESTAMP"),
        ("b", "BOOLEAN"),
        ("t", "TEXT"),
    ]


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("integer", "12.5", r"'12\.5' is not an integer"),
        ("integer", "1_000", r"'1_000' is not an integer \(underscores are not allowed\)"),
        ("integer", "99999999999999999999", r"'9+' is not an integer \(out of the 64-bit range\)"),
        ("real", "nan", r"'nan' is not a number \(not a finite number\)"),
        ("real", "abc", r"'abc' is not a number"),
        ("numeric", "1.2.3", r"'1\.2\.3' is not a decimal number"),
        ("date", "2024-02-30", r"'2024-02-30' is not a date \(YYYY-MM-DD\)"),
        ("timestamp", "yesterday", r"'yesterday' is not a timestamp \(YYYY-MM-DD HH:MM"),
        ("boolean", "maybe", r"'maybe' is not a boolean"),
    ],
)
def test_a_bad_value_fails_the_file_at_its_line(
    tmp_path: Path, kind: str, value: str, message: str
) -> None:
    fmt = CsvFormat(column_types={"v": kind})
    good = {"integer": "1", "real": "1", "numeric": "1", "date": "2024-01-01"}.get(kind, "")
    good = good or {"timestamp": "2024-01-01 00:00:00", "boolean": "true"}[kind]
    path = write(tmp_path, f"id,v\n1,{good}\n2,{good}\n3,{value}\n4,{good}\n")
    with pytest.raises(LoadError, match=rf"in\.csv:4: column v: {message}"):
        load_csv(url(tmp_path), "t", path, fmt)
    assert rows(tmp_path, "SELECT name FROM sqlite_master") == []


def test_a_bad_value_after_a_multi_line_record_is_reported_at_its_start(tmp_path: Path) -> None:
    text = 'id,note\n1,"two\nlines"\n2,"three\nmore\nlines"\nx,ok\n'
    fmt = CsvFormat(column_types={"id": "integer"})
    with pytest.raises(LoadError, match=r"in\.csv:7: column id: 'x' is not an integer"):
        load_csv(url(tmp_path), "t", write(tmp_path, text), fmt)
    text2 = 'id,note\n1,ok\nx,"spans\ntwo"\n'
    with pytest.raises(LoadError, match=r"in\.csv:3: column id"):
        load_csv(url(tmp_path), "t", write(tmp_path, text2), fmt)


def test_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(LoadError, match=r"in\.csv:3: 2 fields where 3 are expected \(a, b, c\)"):
        load_csv(url(tmp_path), "t", path, CSV)
    assert rows(tmp_path, "SELECT name FROM sqlite_master") == []


def test_unclosed_quote(tmp_path: Path) -> None:
    path = write(tmp_path, 'a,b\n1,2\n3,"open\n4,5\n')
    with pytest.raises(LoadError, match=r"in\.csv:3: a quoted field is not closed"):
        load_csv(url(tmp_path), "t", path, CSV)


def test_constraint_violation_names_the_line_and_rolls_back(tmp_path: Path) -> None:
    execute(tmp_path, "CREATE TABLE t (id INTEGER UNIQUE, v TEXT CHECK (v <> 'bad'))")
    lines = "".join(f"{i},ok\n" for i in range(1, 2001))
    path = write(tmp_path, f"id,v\n{lines}2001,bad\n")
    with pytest.raises(LoadError, match=r"in\.csv:2002: the database refused this row: CHECK"):
        load_csv(url(tmp_path), "t", path, CSV)
    path2 = write(tmp_path, 'id,v\n1,a\n2,"multi\nline"\n2,dup\n', "dup.csv")
    with pytest.raises(LoadError, match=r"dup\.csv:5: the database refused this row: UNIQUE"):
        load_csv(url(tmp_path), "t", path2, CSV)
    assert rows(tmp_path, "SELECT count(*) FROM t") == [(0,)]


def test_errors_that_are_not_a_rows_fault_are_not_blamed_on_a_row(tmp_path: Path) -> None:
    execute(tmp_path, "CREATE TABLE t (a TEXT)", "CREATE VIEW v AS SELECT a FROM t")
    with pytest.raises(LoadError, match=r"cannot load .* into v: .*cannot modify v") as info:
        load_csv(url(tmp_path), "v", write(tmp_path, "a\n1\n"), CSV)
    assert "refused this row" not in str(info.value)


def test_columns_differing_only_in_case(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"in\.csv:1: columns 'id' and 'ID' differ only in case"):
        load_csv(url(tmp_path), "t", write(tmp_path, "id,ID\n1,2\n"), CSV)


def test_skip_rows_and_blank_lines(tmp_path: Path) -> None:
    text = 'Report of "today\nexported by X\n\nid,v\n1,a\n\n2,b\nbad\n'
    fmt = CsvFormat(skip_rows=2)
    with pytest.raises(LoadError, match=r"in\.csv:8: 1 fields where 2"):
        load_csv(url(tmp_path), "t", write(tmp_path, text), fmt)
    load_csv(url(tmp_path), "t", write(tmp_path, text.replace("bad\n", "")), fmt)
    assert rows(tmp_path, "SELECT id, v FROM t") == [("1", "a"), ("2", "b")]


def test_header_only_file_loads_zero_rows(tmp_path: Path) -> None:
    result = load_csv(url(tmp_path), "t", write(tmp_path, "a,b\n"), CSV)
    assert (result.rows, result.created_table) == (0, True)
    assert rows(tmp_path, "SELECT count(*) FROM t") == [(0,)]
    load_csv(url(tmp_path), "t", write(tmp_path, "a,b\n1,2\n"), CSV)
    replaced = load_csv(url(tmp_path), "t", write(tmp_path, "a,b\n"), CSV, mode="replace")
    assert replaced.rows == 0 and rows(tmp_path, "SELECT count(*) FROM t") == [(0,)]


def test_an_empty_file_without_its_header_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"in\.csv: the file is empty: it has no header"):
        load_csv(url(tmp_path), "t", write(tmp_path, ""), CSV)
    execute(tmp_path, "CREATE TABLE t (a TEXT)")
    result = load_csv(url(tmp_path), "t", write(tmp_path, ""), CsvFormat(header=False))
    assert result.rows == 0


def test_header_problems(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"in\.csv:1: column 'a' appears twice"):
        load_csv(url(tmp_path), "t", write(tmp_path, "a,b,a\n1,2,3\n"), CSV)
    with pytest.raises(LoadError, match=r"in\.csv:1: column 2 of the header is empty"):
        load_csv(url(tmp_path), "t", write(tmp_path, "a,,c\n1,2,3\n"), CSV)
    with pytest.raises(LoadError, match=r"column_types names 'x', which is not a column"):
        load_csv(
            url(tmp_path), "t", write(tmp_path, "a\n1\n"), CsvFormat(column_types={"x": "real"})
        )


def test_names_with_spaces_and_quotes(tmp_path: Path) -> None:
    path = write(tmp_path, '"first name","it\'s ""quoted"""\nann,1\n')
    load_csv(url(tmp_path), 'my "odd" table', path, CSV)
    got = rows(tmp_path, 'SELECT "first name", "it\'s ""quoted""" FROM "my ""odd"" table"')
    assert got == [("ann", "1")]
    load_csv(url(tmp_path), "other", path, CSV, mode="upsert", key=["first name"])
    load_csv(url(tmp_path), "other", path, CSV, mode="upsert", key=["first name"])
    assert rows(tmp_path, 'SELECT count(*) FROM "other"') == [(1,)]


def test_hostile_identifiers_are_never_executed(tmp_path: Path) -> None:
    execute(tmp_path, "CREATE TABLE y (keep TEXT)", "INSERT INTO y VALUES ('safe')")
    hostile = 'x"; drop table y; --'
    path = write(tmp_path, f'"{hostile.replace(chr(34), chr(34) * 2)}",b\n1,2\n')
    load_csv(url(tmp_path), hostile, path, CSV, mode="upsert", key=[hostile])
    load_csv(url(tmp_path), hostile, path, CSV, mode="replace")
    assert rows(tmp_path, "SELECT keep FROM y") == [("safe",)]
    tables = {r[0] for r in rows(tmp_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"y", hostile}
    assert rows(tmp_path, 'SELECT * FROM "x""; drop table y; --"') == [("1", "2")]


def test_identifiers_with_control_characters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="control character"):
        load_csv(url(tmp_path), "a\nb", write(tmp_path, "a\n1\n"), CSV)
    with pytest.raises(LoadError, match=r"in\.csv:1: column 1 of the header .* control"):
        load_csv(url(tmp_path), "t", write(tmp_path, '"a\tb"\n1\n'), CSV)


def test_schema_qualified_table(tmp_path: Path) -> None:
    load_csv(url(tmp_path), "main.t", write(tmp_path, "a\n1\n"), CSV)
    assert rows(tmp_path, "SELECT a FROM t") == [("1",)]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"nope\.csv: no such file"):
        load_csv(url(tmp_path), "t", tmp_path / "nope.csv", CSV)
    with pytest.raises(LoadError, match="is a directory"):
        load_csv(url(tmp_path), "t", tmp_path, CSV)
    assert not (tmp_path / "w.db").exists()


def test_unreadable_or_unreachable_database(tmp_path: Path) -> None:
    path = write(tmp_path, "a\n1\n")
    (tmp_path / "w.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LoadError, match="is not an SQLite database or is damaged"):
        load_csv(url(tmp_path), "t", path, CSV)
    missing_dir = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    with pytest.raises(LoadError, match="cannot be opened or written") as info:
        load_csv(missing_dir, "t", path, CSV)
    assert "directory exists" in (info.value.hint or "")


def test_database_urls_that_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a\n1\n")
    for bad in ("sqlite:///:memory:", "sqlite://", "sqlite:///", "warehouse.db"):
        with pytest.raises(ConfigError):
            load_csv(bad, "t", path, CSV)
    with pytest.raises(ConfigError, match="query parameters"):
        load_csv(url(tmp_path) + "?mode=ro", "t", path, CSV)


def test_the_database_is_left_in_wal_mode(tmp_path: Path) -> None:
    load_csv(url(tmp_path), "t", write(tmp_path, "a\n1\n"), CSV)
    assert rows(tmp_path, "PRAGMA journal_mode") == [("wal",)]


def test_memory_stays_flat(tmp_path: Path) -> None:
    """Peak Python allocations do not grow with the file (streamed, not collected)."""
    import tracemalloc

    def peak(count: int, name: str) -> int:
        path = tmp_path / f"{name}.csv"
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write("id,name,amount\n")
            out.writelines(f"{i},name {i},{i * 0.5}\n" for i in range(count))
        fmt = CsvFormat(column_types={"id": "integer", "amount": "real"})
        tracemalloc.start()
        try:
            load_csv(url(tmp_path), name, path, fmt)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(2_000, "small"), peak(100_000, "large")
    assert large < small + 1_000_000, (small, large)
