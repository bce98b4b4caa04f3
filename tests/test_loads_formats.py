"""The formats besides CSV (xlsx, fixed-width, JSON Lines, Parquet) and compressed inputs,
loaded into SQLite: the same rows from every format, conversion errors naming the row and
the column, and clear errors for a wrong sheet, member or layout."""

from __future__ import annotations

import gzip
import sqlite3
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from ferryman.errors import LoadError
from ferryman.loads import CsvFormat, load_csv
from tests.loads_support import ROWS, write_formats
from tests.test_loads_postgres import FORMATS, TYPES


def table(db: Path, sql: str = "SELECT id, name, amount, day FROM t ORDER BY id") -> list[Any]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("kind", list(FORMATS))
def test_every_format_gives_the_same_rows(tmp_path: Path, kind: str) -> None:
    path = write_formats(tmp_path)[kind]
    db = tmp_path / "w.db"
    result = load_csv(f"sqlite:///{db}", "t", path, CsvFormat(column_types=TYPES, **FORMATS[kind]))
    assert result.rows == 3
    assert table(db) == [tuple(r) for r in ROWS]


def test_sheet_by_index_and_errors_name_row_and_column(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"
    sheet.append(["title row"])
    sheet.append(["id", "amount"])
    sheet.append([1, 2.5])
    sheet.append([2, "n/a"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    fmt = CsvFormat(format="xlsx", sheet=0, skip_rows=1, column_types={"amount": "real"})
    with pytest.raises(LoadError, match=r"book\.xlsx:4: column amount: 'n/a' is not a number"):
        load_csv(db, "t", path, fmt)
    with pytest.raises(LoadError, match=r"has no sheet 'Orders' \(its sheets: Data\)"):
        load_csv(db, "t", path, CsvFormat(format="xlsx", sheet="Orders"))
    fmt = CsvFormat(format="xlsx", skip_rows=1, column_types={"id": "date"})
    with pytest.raises(LoadError, match=r"book\.xlsx:3: column id: '1' is not a date"):
        load_csv(db, "t", path, fmt)


def test_fixed_width_and_jsonl_errors(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    fixed = tmp_path / "f.txt"
    fixed.write_text("ab   12\ncd   34xyz\n")
    fmt = CsvFormat(format="fixed", widths=[5, 2], header=False, columns=["code", "n"])
    with pytest.raises(LoadError, match=r"f\.txt:2: the line is 10 characters long.*'xyz'"):
        load_csv(db, "t", fixed, fmt)
    jsonl = tmp_path / "j.jsonl"
    jsonl.write_text('{"a": 1, "b": [1, 2]}\n\n{"a": 2, "c": 3}\n')
    with pytest.raises(LoadError, match=r"j\.jsonl:3: key 'c' is not a column"):
        load_csv(db, "t", jsonl, CsvFormat(format="jsonl"))
    jsonl.write_text('{"a": 1, "b": [1, 2]}\n{"a": "x"}\n')
    with pytest.raises(LoadError, match=r"j\.jsonl:2: column a: 'x' is not an integer"):
        load_csv(db, "t", jsonl, CsvFormat(format="jsonl", column_types={"a": "integer"}))
    jsonl.write_text('{"a": 1, "b": [1, 2]}\n{"a": 2}\n')
    load_csv(db, "t", jsonl, CsvFormat(format="jsonl"))
    assert table(tmp_path / "w.db", "SELECT a, b FROM t") == [("1", "[1, 2]"), ("2", None)]


def test_compressed_inputs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")
    with pytest.raises(LoadError, match=r"holds 2 files \(a\.csv, b\.csv\).*format\.member"):
        load_csv(db, "t", two, CsvFormat())
    with pytest.raises(LoadError, match=r"no member 'c\.csv'"):
        load_csv(db, "t", two, CsvFormat(member="c.csv"))
    assert load_csv(db, "t", two, CsvFormat(member="b.csv")).rows == 1
    broken = tmp_path / "cut.csv.gz"
    broken.write_bytes(gzip.compress(b"x\n" + b"1\n" * 10000)[:-40])
    with pytest.raises(LoadError, match=r"cut\.csv\.gz: the compressed data is damaged"):
        load_csv(db, "t", broken, CsvFormat())
    assert table(tmp_path / "w.db", "SELECT x FROM t") == [("2",)]
