"""The web dashboard (issue 17) over a long history: every page and JSON endpoint timed against
a real ``ferryman serve --web`` whose state file holds 100 000 runs and 1 000 000 file records.

    python benchmarks/dashboard.py                         # 100 000 runs, 1 000 000 files
    python benchmarks/dashboard.py --runs 10000 --json dashboard.json

What it does: makes a state file with ferryman's own schema (opened once by ``StateStore``,
which creates and migrates it), then fills it in bulk: ``--runs`` runs of five jobs spread
over the last 365 days (2 % failed, 1 % interrupted), two steps each, ten file records per
run on average (one run holds 20 000, to page through), 200 000 only-new ledger entries of
one job, and a 4 MB run log. Then it starts ``ferryman serve JOBS --state FILE --web`` on a
free loopback port (the five jobs have no schedule: nothing runs) and requests each address
``--repeat`` times over HTTP, after one warm-up request, reporting the median and the worst
time in milliseconds, and the first ``/metrics`` (which sums the whole history once; later
scrapes read only what is new). Pass means every median under 200 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ferryman.state import StateStore  # noqa: E402

JOBS = ["orders", "invoices", "stock", "reports", "archive"]
TARGET_MS = 200.0


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def build(path: Path, runs: int, files_per_run: int, ledger: int, log_file: Path) -> dict[str, Any]:
    """Fill a new state file; returns ids worth requesting."""
    with StateStore(path):
        pass  # ferryman's schema, current version
    rng = random.Random(17)  # noqa: S311 - made-up history, repeatable
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / runs
    log_file.write_text(
        "".join(
            f"2026-01-01T00:00:{n % 60:02}.000 INFO  line {n} of a long run log\n"
            for n in range(80_000)
        )
    )
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    big_run = runs // 2
    run_rows, step_rows, file_rows = [], [], []
    file_id = 0
    for n in range(1, runs + 1):
        began = start + step * n
        seconds = rng.uniform(0.5, 90)
        roll = rng.random()
        status = "failed" if roll < 0.02 else "interrupted" if roll < 0.03 else "succeeded"
        job = JOBS[n % len(JOBS)]
        run_rows.append(
            (
                n,
                job,
                f"/etc/ferryman/jobs/{job}.yaml",
                _iso(began),
                _iso(began + timedelta(seconds=seconds)),
                status,
                0 if status == "succeeded" else 1,
                None if status == "succeeded" else "the server closed the connection",
                json.dumps({"day": began.date().isoformat()}),
                str(log_file),
                "bench",
                4242,
            )
        )
        for position, name in enumerate(("fetch", "load")):
            step_rows.append(
                (
                    n,
                    position,
                    name,
                    "receive" if position == 0 else "load",
                    "succeeded",
                    _iso(began),
                    _iso(began),
                    seconds / 2,
                    1,
                    "{}",
                )
            )
        count = 20_000 if n == big_run else rng.randint(0, 2 * files_per_run)
        for k in range(count):
            file_id += 1
            size = rng.randint(100, 5_000_000)
            file_rows.append(
                (
                    file_id,
                    n,
                    "fetch",
                    f"/outbound/{job}/{n}-{k}.csv",
                    f"/data/in/{job}/{n}-{k}.csv",
                    "copied",
                    size,
                    0.01,
                    0,
                    "size",
                )
            )
        if len(file_rows) > 200_000:
            conn.executemany(
                "INSERT INTO files (id, run_id, step, source, target, status, bytes, seconds,"
                " retries, verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                file_rows,
            )
            file_rows = []
    conn.executemany(
        "INSERT INTO runs (id, job, job_file, started, finished, status, exit_code, error,"
        " variables, transcript, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    conn.executemany(
        "INSERT INTO steps (run_id, position, name, action, status, started, finished, seconds,"
        " attempts, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        step_rows,
    )
    conn.executemany(
        "INSERT INTO files (id, run_id, step, source, target, status, bytes, seconds, retries,"
        " verified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        file_rows,
    )
    conn.executemany(
        "INSERT INTO ledger (job, connection, path, size, mtime, run_id, taken)"
        " VALUES ('orders', 'ftpes://orders@partner:21', ?, ?, '', ?, ?)",
        (
            (f"/outbound/orders/{n:07}.csv", n, 1 + n % runs, _iso(start + step * (n % runs)))
            for n in range(ledger)
        ),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    total_files = conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    deep = conn.execute(
        "SELECT taken, connection, path FROM ledger WHERE job = 'orders'"
        " ORDER BY taken DESC, connection DESC, path DESC LIMIT 1 OFFSET ?",
        (ledger // 2,),
    ).fetchone()
    conn.close()
    middle = (start + timedelta(days=180)).date()
    return {
        "big_run": big_run,
        "small_run": runs - 3,
        "files": total_files,
        "ledger_key": json.dumps(list(deep)),
        "since": middle.isoformat(),
        "until": (middle + timedelta(days=6)).isoformat(),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, float, int]:
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
    finally:
        conn.close()
    return answer.status, (time.perf_counter() - began) * 1000, len(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--files-per-run", type=int, default=10)
    parser.add_argument("--ledger", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ferryman-dashboard-bench-") as tmp:
        work = Path(tmp)
        state = work / "state.db"
        began = time.monotonic()
        ids = build(state, args.runs, args.files_per_run, args.ledger, work / "run.log")
        print(
            f"state file: {args.runs} runs, {ids['files']} file records, {args.ledger} ledger"
            f" entries, {state.stat().st_size / 1e6:.0f} MB, built in"
            f" {time.monotonic() - began:.0f} s",
            file=sys.stderr,
        )
        jobs = work / "jobs"
        jobs.mkdir()
        for job in JOBS:
            (jobs / f"{job}.yaml").write_text(
                f"name: {job}\nsteps:\n  - name: x\n    run: [{sys.executable}, -c, 'pass']\n"
            )
        port = _free_port()
        env = {**os.environ, "FERRYMAN_WEB_TOKEN": "benchmark-token-not-secret"}
        with (work / "serve.log").open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ferryman",
                    "serve",
                    str(jobs),
                    "--state",
                    str(state),
                    "--web",
                    f"127.0.0.1:{port}",
                    "--watch-jobs",
                    "0",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if _get(port, "/health")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    print((work / "serve.log").read_text(), file=sys.stderr)
                    return 1
                time.sleep(0.1)
            status, first_metrics, _ = _get(port, "/metrics")
            assert status == 200
            pages = [
                "/jobs",
                "/runs",
                "/runs?status=failed",
                "/runs?job=stock",
                "/runs?job=orders&status=interrupted",
                f"/runs?since={ids['since']}&until={ids['until']}",
                f"/runs?before={args.runs // 2}",
                f"/runs?after={args.runs // 3}",
                f"/runs/{ids['small_run']}",
                f"/runs/{ids['big_run']}",
                f"/runs/{ids['big_run']}?files=19900",
                f"/runs/{ids['small_run']}/log",
                f"/runs/{ids['small_run']}/log?offset=3000000",
                "/ledger?job=orders",
                "/ledger?job=orders&q=0123",
                "/ledger?job=orders&q=nomatch",
                "/ledger?" + urlencode({"job": "orders", "after": ids["ledger_key"]}),
                "/charts",
                "/charts?days=365",
                "/charts?job=orders&days=90",
            ]
            addresses = []
            for page in pages:
                path, _, query = page.partition("?")
                addresses.append(page)
                addresses.append(path + ".json" + ("?" + query if query else ""))
            addresses += ["/metrics", "/health"]
            results = []
            for address in addresses:
                status, first, size = _get(port, address)  # warm-up
                assert status == 200, (address, status)
                times = [_get(port, address)[1] for _ in range(args.repeat)]
                results.append(
                    {
                        "address": address,
                        "first_ms": first,
                        "median_ms": statistics.median(times),
                        "max_ms": max(times),
                        "bytes": size,
                    }
                )
        finally:
            proc.terminate()
            proc.wait(30)

    print(f"\nfirst /metrics (sums the whole history once): {first_metrics:.0f} ms\n")
    print("| address | median ms | max ms | first ms | bytes |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in results:
        label = re.sub(r"after=%5B[^&]+", "after=KEY", r["address"])  # the key of entry 100 000
        print(
            f"| `{label}` | {r['median_ms']:.1f} | {r['max_ms']:.1f} | {r['first_ms']:.1f} "
            f"| {r['bytes']} |"
        )
    worst = max(results, key=lambda r: r["median_ms"])
    ok = worst["median_ms"] < TARGET_MS
    print(
        f"\nslowest median: {worst['address']} {worst['median_ms']:.1f} ms; target < "
        f"{TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "runs": args.runs,
                    "files": ids["files"],
                    "ledger": args.ledger,
                    "first_metrics_ms": first_metrics,
                    "results": results,
                },
                indent=1,
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
