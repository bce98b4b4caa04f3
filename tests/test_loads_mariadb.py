"""Loads into and exports from a real MariaDB server (tests/servers/mariadb.py): LOAD DATA
LOCAL INFILE of the file itself and batched INSERTs, every mode, every format, errors at
FILE:LINE, nothing half-loaded, markers, a server that dies mid-load."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ferryman.errors import LoadError
from ferryman.loads import CsvFormat, export_query, load_csv
from ferryman.loads.markers import LoadMarker
from tests.loads_support import ROWS, write_formats
from tests.servers.mariadb import MariaDBServer, start_mariadb
from tests.test_loads_postgres import FORMATS, TYPES


def rows(server: MariaDBServer, url: str, sql: str) -> list[list[str]]:
    out = server.sql(sql, url.rsplit("/", 1)[1])
    return [line.split("\t") for line in out.splitlines()]


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", list(FORMATS))
def test_every_format_loads(
    tmp_path: Path, mariadb: MariaDBServer, mariadb_db: str, kind: str
) -> None:
    path = write_formats(tmp_path)[kind]
    result = load_csv(mariadb_db, "orders", path, CsvFormat(column_types=TYPES, **FORMATS[kind]))
    assert result.rows == 3 and result.created_table
    assert result.method == ("load data" if kind == "csv" else "insert")
    got = rows(mariadb, mariadb_db, "SELECT id, name, amount, day FROM orders ORDER BY id")
    expected = [[str(i), n, "NULL" if a is None else f"{a:g}", d] for i, n, a, d in ROWS]
    assert got == expected


def test_append_replace_upsert(tmp_path: Path, mariadb: MariaDBServer, mariadb_db: str) -> None:
    fmt = CsvFormat(column_types={"id": "integer"})
    first = write(tmp_path, "id,v\n1,a\n2,b\n")
    assert load_csv(mariadb_db, "t", first, fmt).method == "load data"
    load_csv(mariadb_db, "t", write(tmp_path, "id,v\n3,c\n", "b.csv"), fmt)
    assert rows(mariadb, mariadb_db, "SELECT count(*) FROM t") == [["3"]]
    load_csv(mariadb_db, "t", first, fmt, mode="replace")
    assert rows(mariadb, mariadb_db, "SELECT id, v FROM t ORDER BY id") == [["1", "a"], ["2", "b"]]
    load_csv(mariadb_db, "u", first, fmt, mode="upsert", key=["id"])
    changes = write(tmp_path, "id,v\n2,old\n2,new\n4,d\n", "c.csv")
    assert load_csv(mariadb_db, "u", changes, fmt, mode="upsert", key=["id"]).method == "load data"
    assert rows(mariadb, mariadb_db, "SELECT id, v FROM u ORDER BY id") == [
        ["1", "a"],
        ["2", "new"],
        ["4", "d"],
    ]
    jsonl = write(tmp_path, '{"id": 4, "v": "e"}\n{"id": 5, "v": "f"}\n', "d.jsonl")
    load_csv(mariadb_db, "u", jsonl, CsvFormat(format="jsonl"), mode="upsert", key=["id"])
    assert rows(mariadb, mariadb_db, "SELECT v FROM u ORDER BY id") == [
        ["a"],
        ["new"],
        ["e"],
        ["f"],
    ]


def test_bad_rows_name_their_line_and_load_nothing(
    tmp_path: Path, mariadb: MariaDBServer, mariadb_db: str
) -> None:
    marker = LoadMarker("job", "load", '["content", "m"]', 3)
    load_csv(
        mariadb_db,
        "t",
        write(tmp_path, "id,note\n1,x\n"),
        CsvFormat(column_types={"id": "integer"}),
    )
    text = 'id,note\n2,"two\nlines"\n\n4,ok\nfive,bad\n'
    with pytest.raises(LoadError, match=r"bad\.csv:6: column id: 'five' is not an integer"):
        load_csv(
            mariadb_db,
            "t",
            write(tmp_path, text, "bad.csv"),
            CsvFormat(column_types={"id": "integer"}),
            marker=marker,
        )
    dup = write(tmp_path, "id,note\n7,a\n1,dup\n", "dup.csv")
    mariadb.sql("CREATE UNIQUE INDEX ux ON t (id)", mariadb_db.rsplit("/", 1)[1])
    with pytest.raises(LoadError, match=r"dup\.csv:3: the database refused this row: Duplicate"):
        load_csv(mariadb_db, "t", dup, CsvFormat(), marker=marker)
    assert rows(mariadb, mariadb_db, "SELECT id FROM t") == [["1"]]
    assert rows(mariadb, mariadb_db, "SELECT count(*) FROM ferryman_loaded_files") == [["0"]]
    with pytest.raises(LoadError, match=r"new\.csv:3: 1 fields where 2 are expected"):
        load_csv(mariadb_db, "fresh", write(tmp_path, "a,b\n1,2\n3\n", "new.csv"), CsvFormat())
    assert rows(mariadb, mariadb_db, "SHOW TABLES LIKE 'fresh'") == []  # dropped again
    good = write(tmp_path, "id,note\n8,fine\n", "good.csv")
    assert load_csv(mariadb_db, "t", good, CsvFormat(), marker=marker).already is None
    assert load_csv(mariadb_db, "t", good, CsvFormat(), marker=marker).already is not None


def test_exports(tmp_path: Path, mariadb_db: str) -> None:
    fmt = CsvFormat(column_types={**TYPES, "amount": "numeric"})
    load_csv(mariadb_db, "orders", write_formats(tmp_path)["csv"], fmt)
    query = "SELECT id, name, amount, day FROM orders ORDER BY id"
    out = tmp_path / "out.csv"
    assert export_query(mariadb_db, query, out, CsvFormat()).rows == 3
    assert out.read_text().splitlines()[1] == "1,alpha,10.5000000000,2024-01-31"
    jsonl = tmp_path / "out.jsonl"
    export_query(mariadb_db, query, jsonl, CsvFormat(format="jsonl"))
    assert '"day": "2024-01-31"' in jsonl.read_text().splitlines()[0]
    import pyarrow.parquet as pq

    parquet = tmp_path / "out.parquet"
    export_query(mariadb_db, query, parquet, CsvFormat(format="parquet"))
    table = pq.read_table(parquet)
    assert table.column("amount").to_pylist()[0] == Decimal("10.5000000000")
    assert table.column("day").to_pylist()[1] == date(2024, 2, 29)


def test_a_server_that_dies_mid_load(tmp_path: Path) -> None:
    server = start_mariadb()
    try:
        url = server.url(server.create_database())
        big = tmp_path / "big.jsonl"
        with open(big, "w") as out:
            for i in range(200_000):
                out.write(f'{{"id": {i}, "payload": "{"x" * 60}"}}\n')
        errors: list[BaseException] = []

        def load() -> None:
            try:
                load_csv(url, "t", big, CsvFormat(format="jsonl"))
            except BaseException as err:
                errors.append(err)

        worker = threading.Thread(target=load)
        worker.start()
        deadline = time.monotonic() + 30
        while "INSERT" not in _processes(server):
            assert time.monotonic() < deadline, "the load never started"
            time.sleep(0.01)
        os.killpg(server.proc.pid, signal.SIGKILL)  # the server we started
        worker.join(60)
        assert not worker.is_alive()
        assert errors and isinstance(errors[0], LoadError), errors
        assert errors[0].retriable and "connection to the database was lost" in str(errors[0])
    finally:
        server.stop()


def _processes(server: MariaDBServer) -> str:
    try:
        return server.sql("SELECT info FROM information_schema.processlist")
    except Exception:
        return ""
