"""Benchmark: ferryman's loads into real PostgreSQL and MariaDB servers against their native
bulk clients and against pandas, side by side in one run (issue 18).

Starts a throw-away PostgreSQL (fsync on: a real server's settings) and MariaDB on loopback
(tests/servers/), generates the 5-column CSV of benchmarks/load_csv.py (and an .xlsx of
--xlsx-rows rows), then runs each case --rounds times round-robin, each into a fresh table,
every case in a child process of its own so that its peak RSS is its own:

- PostgreSQL: ``psql -c "\\copy ..."`` (the native client; physical limit) vs ferryman
  ``load_csv`` (typed: the table gets BIGINT, TEXT, DOUBLE, DATE, BOOLEAN) vs pandas
  ``read_csv`` + ``to_sql`` (SQLAlchemy + psycopg, chunks of 10 000: what users write);
- MariaDB: ``mariadb --local-infile -e "LOAD DATA LOCAL INFILE ..."`` vs ferryman;
- xlsx: pandas ``read_excel`` + ``to_sql`` vs ferryman ``format: xlsx``, into PostgreSQL.

Run:  python benchmarks/load_db.py [--rows 1000000] [--xlsx-rows 100000] [--rounds 3]
Needs: pip install -e '.[bench,test]' and scripts/install-test-servers.sh.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load_csv import TYPES, generate  # noqa: E402, I001 - after the sys.path line
from tests.servers.mariadb import CLIENT, PASSWORD, USER, start_mariadb  # noqa: E402
from tests.servers.postgres import start_postgres  # noqa: E402

PG_DDL = "CREATE TABLE t (id BIGINT, name TEXT, amount DOUBLE PRECISION, day DATE, active BOOLEAN)"
# MariaDB reads no true/false into a BOOLEAN: active stays text on both sides
MY_DDL = "CREATE TABLE t (id BIGINT, name LONGTEXT, amount DOUBLE, day DATE, active LONGTEXT)"

#: each case runs as ``python -c CHILD case-json``: it prints seconds and peak RSS (KiB)
CHILD = r"""
import json, resource, subprocess, sys, time
case = json.loads(sys.argv[1])
kind = case["kind"]
if kind == "ferryman":  # imports before the clock starts, as for the native clients
    from pathlib import Path
    from ferryman.loads import CsvFormat, load_csv
    import ferryman.loads.postgres, ferryman.loads.mysql, ferryman.loads.formats
elif kind == "pandas":
    import pandas as pd
    import sqlalchemy as sa
start = time.perf_counter()
if kind == "ferryman":
    load_csv(case["url"], "t", Path(case["file"]), CsvFormat(**case["format"]))
elif kind == "argv":
    subprocess.run(case["argv"], check=True, stdout=subprocess.DEVNULL)
elif kind == "pandas":
    engine = sa.create_engine(case["sa_url"])
    if case["file"].endswith(".xlsx"):
        frame = pd.read_excel(case["file"])
    else:
        frame = pd.read_csv(case["file"])
    frame.to_sql("t", engine, if_exists="append", index=False, chunksize=10000)
    engine.dispose()
seconds = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "rss": max(own, kids)}))
"""


def run_case(case: dict[str, object], reset: list[str]) -> tuple[float, int]:
    subprocess.run(reset, check=True, stdout=subprocess.DEVNULL)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(case)],
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), int(result["rss"])


def write_xlsx(path: Path, csv_file: Path, rows: int) -> None:
    import openpyxl  # noqa: PLC0415 - a bench extra

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Orders")
    with open(csv_file, newline="") as stream:
        for number, fields in enumerate(csv.reader(stream)):
            if number > rows:
                break
            typed: list[object] = list(fields)
            if number:
                typed[0], typed[2] = int(fields[0]), float(fields[2])
            sheet.append(typed)
    book.save(path)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-pandas", action="store_true", help="leave out the pandas cases")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ferryman-bench-db-"))
    data = work / "rows.csv"
    generate(data, args.rows)
    xlsx = work / "rows.xlsx"
    write_xlsx(xlsx, data, args.xlsx_rows)
    pg = start_postgres(fsync=True)
    my = start_mariadb()
    try:
        pg_db = pg.create_database()
        my_db = my.create_database()
        pg_url = pg.url(pg_db)
        psql = ["psql", "-X", "-q", "-d", pg.dsn(pg_db)]
        quiet = "SET client_min_messages = warning; DROP TABLE IF EXISTS t"
        pg_reset = [*psql, "-c", f"{quiet}; {PG_DDL}"]
        pg_drop = [*psql, "-c", quiet]
        my_cli = [str(CLIENT), "--no-defaults", "-h", "127.0.0.1", "-P", str(my.port)]
        my_cli += ["-u", USER, f"-p{PASSWORD}", my_db]
        my_reset = [*my_cli, "-e", f"DROP TABLE IF EXISTS t; {MY_DDL}"]
        my_drop = [*my_cli, "-e", "DROP TABLE IF EXISTS t"]
        typed = {"column_types": TYPES}
        sa_url = pg_url.replace("postgresql://", "postgresql+psycopg://")
        cases: list[tuple[str, str, dict[str, object], list[str], int]] = [
            (
                "postgres",
                "psql \\copy",
                {
                    "kind": "argv",
                    "argv": [*psql, "-c", f"\\copy t FROM '{data}' WITH (FORMAT csv, HEADER)"],
                },
                pg_reset,
                args.rows,
            ),
            (
                "postgres",
                "ferryman load (COPY)",
                {"kind": "ferryman", "url": pg_url, "file": str(data), "format": typed},
                pg_drop,
                args.rows,
            ),
            (
                "mariadb",
                "mariadb --local-infile",
                {
                    "kind": "argv",
                    "argv": [
                        *my_cli,
                        "--local-infile=1",
                        "-e",
                        f"LOAD DATA LOCAL INFILE '{data}' INTO TABLE t FIELDS TERMINATED BY ','"
                        " OPTIONALLY ENCLOSED BY '\"' IGNORE 1 LINES",
                    ],
                },
                my_reset,
                args.rows,
            ),
            (
                "mariadb",
                "ferryman load (LOAD DATA)",
                {
                    "kind": "ferryman",
                    "url": my.url(my_db),
                    "file": str(data),
                    "format": {"column_types": {k: v for k, v in TYPES.items() if k != "active"}},
                },
                my_drop,
                args.rows,
            ),
            (
                "xlsx",
                "ferryman load xlsx -> postgres",
                {
                    "kind": "ferryman",
                    "url": pg_url,
                    "file": str(xlsx),
                    "format": {**typed, "format": "xlsx", "sheet": "Orders"},
                },
                pg_drop,
                args.xlsx_rows,
            ),
        ]
        if not args.no_pandas:
            cases.insert(
                2,
                (
                    "postgres",
                    "pandas read_csv + to_sql",
                    {"kind": "pandas", "sa_url": sa_url, "file": str(data)},
                    pg_drop,
                    args.rows,
                ),
            )
            cases.append(
                (
                    "xlsx",
                    "pandas read_excel + to_sql",
                    {"kind": "pandas", "sa_url": sa_url, "file": str(xlsx)},
                    pg_drop,
                    args.xlsx_rows,
                )
            )
        times: dict[str, list[float]] = {label: [] for _, label, *_ in cases}
        peak: dict[str, int] = dict.fromkeys(times, 0)
        for _ in range(args.rounds):
            for _group, label, case, reset, _rows in cases:
                seconds, rss = run_case(case, reset)
                times[label].append(seconds)
                peak[label] = max(peak[label], rss)
        size = data.stat().st_size / 1e6
        print(
            f"{args.rows:,} CSV rows x 5 columns ({size:.1f} MB); xlsx {args.xlsx_rows:,} rows;"
            f" {args.rounds} rounds; PostgreSQL fsync on, MariaDB flush_log_at_trx_commit=2"
        )
        print(f"{'case':36} {'median s':>9} {'rows/s':>11} {'vs native':>10} {'peak RSS':>9}")
        native = {
            "postgres": "psql \\copy",
            "mariadb": "mariadb --local-infile",
            "xlsx": "pandas read_excel + to_sql",
        }
        for group, label, _case, _reset, rows in cases:
            median = statistics.median(times[label])
            base = statistics.median(times[native[group]]) if native[group] in times else None
            ratio = f"{base / median:9.2f}x" if base else "        -"
            print(
                f"{label:36} {median:9.2f} {rows / median:11,.0f} {ratio:>10}"
                f" {peak[label] / 1024:7.0f} MiB"
            )
        if "pandas read_csv + to_sql" in times:
            pandas = statistics.median(times["pandas read_csv + to_sql"])
            ours = statistics.median(times["ferryman load (COPY)"])
            print(f"ferryman vs pandas to_sql (PostgreSQL): {pandas / ours:.1f}x faster")
    finally:
        pg.stop()
        my.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
