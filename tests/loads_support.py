"""Helpers shared by the database load tests: sample files in every format; no tests here."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["ROWS", "write_formats"]

#: (id, name, amount, day) rows every sample file holds
ROWS: list[tuple[Any, ...]] = [
    (1, "alpha", 10.5, "2024-01-31"),
    (2, "beta, with comma", None, "2024-02-29"),
    (3, 'gamma "quoted"', 3.0, "2024-03-01"),
]


def write_formats(directory: Path) -> dict[str, Path]:
    """The ROWS as csv, csv.gz, zip, xlsx, fixed-width, jsonl and parquet files."""
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    out: dict[str, Path] = {}
    lines = ["id,name,amount,day"]
    for i, name, amount, day in ROWS:
        quoted = '"' + name.replace('"', '""') + '"' if ("," in name or '"' in name) else name
        lines.append(f"{i},{quoted},{'' if amount is None else amount},{day}")
    text = "\n".join(lines) + "\n"
    out["csv"] = directory / "rows.csv"
    out["csv"].write_text(text)
    out["gzip"] = directory / "rows.csv.gz"
    out["gzip"].write_bytes(gzip.compress(text.encode()))
    out["zip"] = directory / "rows.zip"
    with zipfile.ZipFile(out["zip"], "w") as archive:
        archive.writestr("readme.txt", "not this one")
        archive.writestr("data/rows.csv", text)
    book = openpyxl.Workbook()
    book.active.title = "Cover"
    book.active.append(["made by a test"])
    sheet = book.create_sheet("Orders")
    sheet.append(["id", "name", "amount", "day"])
    for i, name, amount, day in ROWS:
        sheet.append([i, name, amount, day])
    out["xlsx"] = directory / "rows.xlsx"
    book.save(out["xlsx"])
    fixed = ["id  name                amount    day       "]
    for i, name, amount, day in ROWS:
        fixed.append(f"{i:<4}{name:<20}{'' if amount is None else amount:<10}{day:<10}")
    out["fixed"] = directory / "rows.txt"
    out["fixed"].write_text("\n".join(fixed) + "\n")
    out["jsonl"] = directory / "rows.jsonl"
    out["jsonl"].write_text(
        "".join(
            json.dumps({"id": i, "name": n, "amount": a, "day": d}) + "\n" for i, n, a, d in ROWS
        )
    )
    out["parquet"] = directory / "rows.parquet"
    columns = list(zip(*ROWS, strict=True))
    table = pa.table(
        {k: list(v) for k, v in zip(["id", "name", "amount", "day"], columns, strict=True)}
    )
    pq.write_table(table, out["parquet"])
    return out
