"""Loads into and exports from a real PostgreSQL server (tests/servers/postgres.py): COPY of
the file itself and of checked rows, every mode, every format, errors at FILE:LINE, nothing
half-loaded, exactly-once markers, a server that dies mid-load."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest

from ferryman.errors import LoadError
from ferryman.loads import CsvFormat, export_query, load_csv
from ferryman.loads.markers import LoadMarker
from tests.loads_support import ROWS, write_formats
from tests.servers.postgres import start_postgres

TYPES = {"id": "integer", "amount": "real", "day": "date"}
FORMATS: dict[str, dict[str, Any]] = {
    "csv": {},
    "gzip": {},
    "zip": {"member": "data/rows.csv"},
    "xlsx": {"format": "xlsx", "sheet": "Orders"},
    "fixed": {"format": "fixed", "widths": [4, 20, 10, 10]},
    "jsonl": {"format": "jsonl"},
    "parquet": {"format": "parquet"},
}


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(sql).fetchall()


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(FORMATS))
def test_every_format_loads(tmp_path: Path, postgres_db: str, kind: str) -> None:
    path = write_formats(tmp_path)[kind]
    fmt = CsvFormat(column_types=TYPES, **FORMATS[kind])
    result = load_csv(postgres_db, "orders", path, fmt)
    assert result.rows == 3 and result.created_table
    assert result.method == ("copy file" if kind in ("csv", "gzip", "zip") else "copy rows")
    expected = [(i, n, a, date.fromisoformat(d)) for i, n, a, d in ROWS]
    assert rows(postgres_db, "SELECT id, name, amount, day FROM orders ORDER BY id") == expected


def test_append_replace_upsert(tmp_path: Path, postgres_db: str) -> None:
    fmt = CsvFormat(column_types={"id": "integer"})
    first = write(tmp_path, "id,v\n1,a\n2,b\n")
    load_csv(postgres_db, "t", first, fmt)
    load_csv(postgres_db, "t", write(tmp_path, "id,v\n3,c\n", "b.csv"), fmt)
    assert rows(postgres_db, "SELECT count(*) FROM t") == [(3,)]
    load_csv(postgres_db, "t", first, fmt, mode="replace")
    assert rows(postgres_db, "SELECT id, v FROM t ORDER BY id") == [(1, "a"), (2, "b")]
    load_csv(postgres_db, "u", first, fmt, mode="upsert", key=["id"])
    changes = write(tmp_path, "id,v\n2,old\n2,new\n4,d\n", "c.csv")
    result = load_csv(postgres_db, "u", changes, fmt, mode="upsert", key=["id"])
    assert result.rows == 3 and result.method == "copy file"
    assert rows(postgres_db, "SELECT id, v FROM u ORDER BY id") == [(1, "a"), (2, "new"), (4, "d")]


def test_upsert_needs_a_unique_index(tmp_path: Path, postgres_db: str) -> None:
    load_csv(postgres_db, "t", write(tmp_path, "id,v\n1,a\n"), CsvFormat())
    with pytest.raises(LoadError, match="no primary key or unique index"):
        load_csv(postgres_db, "t", write(tmp_path, "id,v\n1,b\n"), CsvFormat(), "upsert", ["id"])


def test_a_bad_value_names_its_line_after_a_multi_line_field(
    tmp_path: Path, postgres_db: str
) -> None:
    load_csv(postgres_db, "t", write(tmp_path, "id,note\n1,x\n"), CsvFormat())
    text = 'id,note\n2,"two\nlines"\n3,"three\n\nlines"\n4,ok\nfive,bad\n6,never\n'
    fmt = CsvFormat(column_types={"id": "integer"})
    with pytest.raises(LoadError) as caught:
        load_csv(postgres_db, "t", write(tmp_path, text, "bad.csv"), fmt)
    assert f"{tmp_path / 'bad.csv'}:8: column id: 'five' is not an integer" in str(caught.value)
    assert rows(postgres_db, "SELECT id FROM t") == [("1",)]  # nothing of bad.csv


def test_a_value_the_table_refuses_is_named_at_its_line(tmp_path: Path, postgres_db: str) -> None:
    with psycopg.connect(postgres_db) as conn:
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, day date)")
    text = 'id,day\n1,2024-01-01\n2,"2024-02-30"\n'
    with pytest.raises(LoadError) as caught:
        load_csv(postgres_db, "t", write(tmp_path, text), CsvFormat())
    message = str(caught.value)
    assert f"{tmp_path / 'in.csv'}:3: column day: the database refused this row" in message
    assert "out of range" in message
    with pytest.raises(LoadError, match=r"in\.csv:4: the database refused this row: duplicate"):
        load_csv(postgres_db, "t", write(tmp_path, "id,day\n1,\n2,\n1,\n"), CsvFormat())
    assert rows(postgres_db, "SELECT count(*) FROM t") == [(0,)]


def test_a_blank_line_loads_as_ferryman_reads_it(tmp_path: Path, postgres_db: str) -> None:
    result = load_csv(postgres_db, "t", write(tmp_path, "a,b\n1,2\n\n3,4\n"), CsvFormat())
    assert result.rows == 2 and result.method == "copy rows"  # sent again as rows
    assert rows(postgres_db, "SELECT a, b FROM t ORDER BY a") == [("1", "2"), ("3", "4")]


def test_quoted_empty_and_null_strings(tmp_path: Path, postgres_db: str) -> None:
    load_csv(postgres_db, "t", write(tmp_path, 'a,b\n"",x\n,y\n'), CsvFormat())
    assert rows(postgres_db, "SELECT a, b FROM t ORDER BY b") == [(None, "x"), (None, "y")]
    fmt = CsvFormat(null_strings=["NULL"], encoding="cp1252", delimiter=";")
    path = tmp_path / "w.csv"
    path.write_bytes(b'a;b\nNULL;caf\xe9\n"";\x80\n')
    result = load_csv(postgres_db, "w", path, fmt)
    assert result.method == "copy file"
    assert rows(postgres_db, "SELECT a, b FROM w ORDER BY b") == [(None, "café"), ("", "€")]


def test_a_failed_file_leaves_no_table_and_no_marker(tmp_path: Path, postgres_db: str) -> None:
    marker = LoadMarker("job", "load", '["content", "x"]', 7)
    bad = write(tmp_path, "a,b\n1,2\n3\n")
    with pytest.raises(LoadError, match=r"in\.csv:3: 1 fields where 2 are expected"):
        load_csv(postgres_db, "t", bad, CsvFormat(), marker=marker)
    assert rows(postgres_db, "SELECT to_regclass('t')") == [(None,)]
    good = write(tmp_path, "a,b\n1,2\n", "good.csv")
    assert load_csv(postgres_db, "t", good, CsvFormat(), marker=marker).already is None
    again = load_csv(postgres_db, "t", good, CsvFormat(), marker=marker)
    assert again.already is not None and again.already.rows == 1 and again.already.run_id == 7
    assert rows(postgres_db, "SELECT count(*) FROM t") == [(1,)]
    assert rows(postgres_db, "SELECT rows, run_id FROM ferryman_loaded_files") == [(1, 7)]


def test_exports_csv_jsonl_parquet(tmp_path: Path, postgres_db: str) -> None:
    load_csv(postgres_db, "orders", write_formats(tmp_path)["csv"], CsvFormat(column_types=TYPES))
    query = "SELECT id, name, amount, day FROM orders ORDER BY id"
    out = tmp_path / "out.csv"
    assert export_query(postgres_db, query, out, CsvFormat()).rows == 3
    assert out.read_text().splitlines()[:3] == [
        "id,name,amount,day",
        "1,alpha,10.5,2024-01-31",
        '2,"beta, with comma",,2024-02-29',
    ]
    jsonl = tmp_path / "out.jsonl"
    export_query(postgres_db, query, jsonl, CsvFormat(format="jsonl"))
    assert jsonl.read_text().splitlines()[0] == (
        '{"id": 1, "name": "alpha", "amount": 10.5, "day": "2024-01-31"}'
    )
    parquet = tmp_path / "out.parquet"
    export_query(postgres_db, query, parquet, CsvFormat(format="parquet"))
    table = pq.read_table(parquet)
    assert table.column("name").to_pylist() == [r[1] for r in ROWS]
    assert table.column("day").to_pylist()[0] == date(2024, 1, 31)
    with pytest.raises(LoadError, match="read-only transaction"):
        export_query(postgres_db, "DELETE FROM orders RETURNING id", out, CsvFormat())
    with pytest.raises(LoadError, match="cannot run the export query"):
        export_query(
            postgres_db, "DELETE FROM orders RETURNING id", jsonl, CsvFormat(format="jsonl")
        )
    assert rows(postgres_db, "SELECT count(*) FROM orders") == [(3,)]


def test_a_server_that_dies_mid_load(tmp_path: Path) -> None:
    server = start_postgres()
    try:
        url = server.url(server.create_database())
        big = tmp_path / "big.csv"
        with open(big, "w") as out:
            out.write("id,payload\n")
            out.writelines(f"{i},{'x' * 60}\n" for i in range(1_000_000))
        errors: list[BaseException] = []

        def load() -> None:
            try:
                # two NULL strings: rows are read and sent by ferryman (the slower way)
                fmt = CsvFormat(column_types={"id": "integer"}, null_strings=["", "NULL"])
                load_csv(url, "t", big, fmt)
            except BaseException as err:
                errors.append(err)

        worker = threading.Thread(target=load)
        worker.start()
        deadline = time.monotonic() + 30
        while not any(  # the COPY has started: the table exists in the catalogue
            "COPY" in line for line in _activity(server.dsn())
        ):
            # a load that ended before its COPY was seen says why, instead of a 30 s wait
            assert worker.is_alive(), f"the load ended before the server was killed: {errors}"
            assert time.monotonic() < deadline, "the load never started"
            time.sleep(0.01)
        # stopped at once, then killed: a COPY that was nearly done when it was seen cannot
        # finish in between (the server we started, all its processes)
        os.killpg(server.proc.pid, signal.SIGSTOP)
        os.killpg(server.proc.pid, signal.SIGKILL)
        worker.join(60)
        assert not worker.is_alive()
        assert errors and isinstance(errors[0], LoadError), errors
        assert errors[0].retriable and "connection to the database was lost" in str(errors[0])
    finally:
        server.stop()


def _activity(dsn: str) -> list[str]:
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            found = conn.execute("SELECT query FROM pg_stat_activity WHERE query LIKE 'COPY%'")
            return [str(r[0]) for r in found.fetchall()]
    except psycopg.Error:
        return []
