"""Load markers (issue 11): a file's marker commits with its rows in the target database, so
a load with a marker happens once; on the stdlib SQLite path and through SQLAlchemy."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from ferryman.errors import LoadError
from ferryman.loads import CsvFormat, LoadMode, load_csv
from ferryman.loads.markers import MARKER_TABLE, LoadMarker, content_key, ledger_file_key

CSV = CsvFormat()


@pytest.fixture(params=["sqlite", "sqlalchemy"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlalchemy":
        pytest.importorskip("sqlalchemy")
        return f"sqlite+pysqlite:///{tmp_path / 'w.db'}"
    return f"sqlite:///{tmp_path / 'w.db'}"


def rows(tmp_path: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(tmp_path / "w.db")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def marker(identity: str = "a", step: str = "load", run_id: int = 7) -> LoadMarker:
    return LoadMarker("nightly", step, identity, run_id)


def test_a_marked_file_loads_once(tmp_path: Path, url: str) -> None:
    assert MARKER_TABLE == "ferryman_loaded_files"  # a name documented in docs/loads.md
    path = write(tmp_path, "id,name\n1,a\n2,b\n")
    first = load_csv(url, "t", path, CSV, marker=marker())
    assert first.rows == 2 and first.already is None
    second = load_csv(url, "t", path, CSV, marker=marker(run_id=8))
    assert second.rows == 0 and second.already is not None
    assert second.already.run_id == 7 and second.already.rows == 2
    assert "already loaded by run 7" in second.already.describe()
    assert second.to_dict()["already_loaded"] == second.already.describe()
    assert rows(tmp_path, "SELECT count(*) FROM t") == [(2,)]
    (stored,) = rows(
        tmp_path, "SELECT job, step, target_table, identity, file FROM ferryman_loaded_files"
    )
    assert stored == ("nightly", "load", "t", "a", str(path))


def test_another_step_table_or_file_is_another_marker(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, "id\n1\n")
    load_csv(url, "t", path, CSV, marker=marker())
    assert load_csv(url, "t", path, CSV, marker=marker(step="other")).already is None
    assert load_csv(url, "u", path, CSV, marker=marker()).already is None
    assert load_csv(url, "t", path, CSV, marker=marker("b")).already is None
    assert load_csv(url, "t", path, CSV).already is None  # no marker: loads as asked
    assert rows(tmp_path, "SELECT count(*) FROM t") == [(4,)]


def test_a_failed_load_leaves_no_marker(tmp_path: Path, url: str) -> None:
    write(tmp_path, "id\n1\n", "ok.csv")
    load_csv(url, "t", tmp_path / "ok.csv", CSV, mode=LoadMode.UPSERT, key=["id"])
    bad = write(tmp_path, "id\n2\n2\nx\n")
    with pytest.raises(LoadError):  # id 2 twice: the unique key refuses the second
        load_csv(url, "t", bad, CSV, mode="append", marker=marker())
    # the marker table itself was made in the failed transaction: rolled back with it
    found = rows(
        tmp_path, "SELECT count(*) FROM sqlite_master WHERE name = 'ferryman_loaded_files'"
    )
    assert found == [(0,)]
    good = write(tmp_path, "id\n2\n3\n")
    assert load_csv(url, "t", good, CSV, marker=marker()).rows == 2


def test_two_loaders_of_one_marked_file_load_it_once(tmp_path: Path, url: str) -> None:
    path = write(tmp_path, "id\n" + "".join(f"{i}\n" for i in range(2000)))
    results: list[Any] = []

    def load() -> None:
        results.append(load_csv(url, "t", path, CSV, marker=marker()))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.already is None for r in results) == [False, False, True]
    assert rows(tmp_path, "SELECT count(*) FROM t") == [(2000,)]


def test_file_keys(tmp_path: Path) -> None:
    key = ledger_file_key("ftpes://u@h:21", "/out/a.csv", 10, "2026-01-01T00:00:00+00:00")
    assert key == ledger_file_key("ftpes://u@h:21", "/out/a.csv", 10, "2026-01-01T00:00:00+00:00")
    assert key != ledger_file_key("ftpes://u@h:21", "/out/a.csv", 11, "2026-01-01T00:00:00+00:00")
    one, two = write(tmp_path, "id\n1\n", "a.csv"), write(tmp_path, "id\n2\n", "b.csv")
    assert content_key(one) != content_key(two)
    same = write(tmp_path, "id\n1\n", "sub.csv")
    assert content_key(one) != content_key(same)  # the name is part of it
    assert len(LoadMarker("j", "s", key).file_key) == 64
