"""Benchmark: ferryman's load_csv / export_query against plain stdlib loops, on SQLite.

Generates a CSV of N rows and 5 columns (id, name, amount, day, active), then runs each case
ROUNDS times, round-robin (so a burst of load elsewhere on the machine hits every case alike),
each load into a fresh database file, and prints the median seconds, rows/s and the ratio to
the plain loop:

- plain load: ``csv.reader`` + ``executemany`` in one transaction into a TEXT table, default
  pragmas -- the floor of what Python + sqlite3 can do, with no checks at all;
- ferryman load, untyped: ``load_csv`` (TEXT columns) -- adds the line tracking, width and
  NULL checks, WAL mode;
- ferryman load, typed: ``load_csv`` with column_types id integer, amount real, day date,
  active boolean -- adds converting and validating 4 values per row;
- plain export / ferryman export: ``fetchmany`` + ``csv.writer`` vs ``export_query``.

Run:  python benchmarks/load_csv.py [--rows 1000000] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from ferryman.loads import CsvFormat, export_query, load_csv

TYPES = {"id": "integer", "amount": "real", "day": "date", "active": "boolean"}


def generate(path: Path, rows: int) -> None:
    rnd = random.Random(5)  # noqa: S311 - sample data, not secrets
    start = date(2020, 1, 1)
    days = [(start + timedelta(days=i)).isoformat() for i in range(2000)]
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "name", "amount", "day", "active"])
        for i in range(rows):
            writer.writerow(
                [
                    i,
                    f"customer {rnd.randrange(100_000)}",
                    f"{rnd.random() * 1000:.2f}",
                    days[i % 2000],
                    "true" if i % 3 else "false",
                ]
            )


def fresh(db: Path) -> Path:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return db


def plain_load(csv_path: Path, db: Path) -> int:
    conn = sqlite3.connect(fresh(db), isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute(
            'CREATE TABLE t ("id" TEXT, "name" TEXT, "amount" TEXT, "day" TEXT, "active" TEXT)'
        )
        with open(csv_path, encoding="utf-8", newline="") as stream:
            reader = csv.reader(stream)
            next(reader)
            cursor = conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", reader)
        conn.execute("COMMIT")
        return cursor.rowcount
    finally:
        conn.close()


def ferryman_load(csv_path: Path, db: Path, fmt: CsvFormat) -> int:
    return load_csv(f"sqlite:///{fresh(db)}", "t", csv_path, fmt).rows


def plain_export(db: Path, out: Path) -> int:
    conn = sqlite3.connect(db)
    count = 0
    try:
        cursor = conn.execute("SELECT * FROM t")
        with open(out, "w", encoding="utf-8", newline="") as stream:
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow([d[0] for d in cursor.description])
            while chunk := cursor.fetchmany(10_000):
                writer.writerows(chunk)
                count += len(chunk)
    finally:
        conn.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        data = work / "data.csv"
        generate(data, args.rows)
        size = data.stat().st_size
        print(f"{args.rows:,} rows x 5 columns, {size / 1e6:.1f} MB, {args.rounds} rounds")
        typed = CsvFormat.model_validate({"column_types": TYPES})
        export_db = work / "export.db"
        ferryman_load(data, export_db, typed)
        cases: dict[str, Callable[[], int]] = {
            "plain csv.reader + executemany": lambda: plain_load(data, work / "plain.db"),
            "ferryman load_csv, untyped": lambda: ferryman_load(data, work / "u.db", CsvFormat()),
            "ferryman load_csv, typed": lambda: ferryman_load(data, work / "t.db", typed),
            "plain fetchmany + csv.writer": lambda: plain_export(export_db, work / "p.csv"),
            "ferryman export_query": lambda: (
                export_query(
                    f"sqlite:///{export_db}", "SELECT * FROM t", work / "f.csv", CsvFormat()
                ).rows
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, run in cases.items():
                started = time.perf_counter()
                count = run()
                times[name].append(time.perf_counter() - started)
                assert count == args.rows, (name, count)
        medians = {name: statistics.median(values) for name, values in times.items()}
        baseline = {"load": medians["plain csv.reader + executemany"]}
        baseline["export"] = medians["plain fetchmany + csv.writer"]
        print(f"{'case':<34} {'median s':>9} {'rows/s':>11} {'vs plain':>9}  rounds (s)")
        for name, median in medians.items():
            base = baseline["export" if "export" in name or "fetchmany" in name else "load"]
            rounds = " ".join(f"{t:.2f}" for t in times[name])
            print(
                f"{name:<34} {median:>9.2f} {args.rows / median:>11,.0f} "
                f"{base / median:>8.2f}x  {rounds}"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the whole benchmark process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
