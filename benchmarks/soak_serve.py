"""Soak test of ``ferryman serve`` (issue 16): a long run with a trigger firing every few
seconds, to show memory and file descriptors stay flat and no run is lost or doubled.

    python benchmarks/soak_serve.py                       # 30 minutes, a file every 3 s
    python benchmarks/soak_serve.py --minutes 2 --interval 2 --json soak.json

What it does: an embedded FTP server (in this process) with an ``incoming/`` directory; a job
with a file-arrival trigger on it (poll 1 s, stable 1 s) that receives the new files
(only_new) into a local inbox and deletes them on the server, and a second job on a cron
schedule every 10 seconds; ``ferryman serve`` runs both as a child process. A writer drops
one file every ``--interval`` seconds. serve's memory (VmRSS) and open file descriptors are
sampled every 30 s. At the end serve gets SIGTERM, and the results are checked: every file
written arrived in the inbox exactly once with its content, the ledger holds each once, no
run failed, the schedule ran about once per 10 s. Not part of the test suite (it takes half
an hour); docs/serve.md has the latest figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ferryman.embedded import EmbeddedServer

JOB_FILES = """\
name: soak-files
state: {state}
connections:
  ftp: {{url: "ftp://soak@127.0.0.1:{port}/", password_env: SOAK_PW, timeout: 10, retries: 2}}
serve:
  triggers:
    - {{path: "ftp:/incoming/*.dat", poll: 1, stable_for: 1}}
steps:
  - name: fetch
    receive:
      from: "ftp:/incoming/*.dat"
      to: inbox/
      only_new: true
      after: {{delete: true}}
"""

JOB_TICK = """\
name: soak-tick
state: {state}
serve:
  schedules:
    - cron: "*/10 * * * * *"
steps:
  - name: touch
    run: [{python}, -c, "pass"]
"""


def _sample(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    threads = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads")
    )
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"t": time.monotonic(), "rss_kib": rss, "fds": fds, "threads": threads}


def _writer(incoming: Path, interval: float, stop: threading.Event, written: list[str]) -> None:
    n = 0
    while not stop.wait(interval):
        n += 1
        name = f"f{n:06d}.dat"
        (incoming / name).write_bytes(f"{name}\n".encode() * 100)
        written.append(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between files")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ferryman-soak-"))
    root, jobs, state = work / "ftp", work / "jobs", work / "state.db"
    incoming = root / "incoming"
    incoming.mkdir(parents=True)
    jobs.mkdir()
    server = EmbeddedServer(root, tls="none", user="soak", require_tls=False).start()
    (jobs / "files.yaml").write_text(JOB_FILES.format(state=state, port=server.port))
    (jobs / "tick.yaml").write_text(JOB_TICK.format(state=state, python=sys.executable))
    env = {**os.environ, "SOAK_PW": server.password}
    log_path = work / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "ferryman", "serve", str(jobs), "--log-format", "json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    stop, written = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(incoming, args.interval, stop, written))
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    try:
        time.sleep(20)  # warm-up: imports, the first runs
        samples.append(_sample(serve.pid))
        writer.start()
        end = started + args.minutes * 60
        while time.monotonic() < end:
            time.sleep(min(30, max(0.1, end - time.monotonic())))
            samples.append(_sample(serve.pid))
            if serve.poll() is not None:
                raise SystemExit(f"serve exited early with status {serve.returncode}")
        stop.set()
        writer.join()
        time.sleep(15)  # the last file: stable, fetched
        samples.append(_sample(serve.pid))
    finally:
        stop.set()
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(120)
        server.stop()
    results = _check(work, state, written, samples, code, time.monotonic() - started)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if results["ok"] else 1


def _check(
    work: Path,
    state: Path,
    written: list[str],
    samples: list[dict[str, float]],
    code: int,
    seconds: float,
) -> dict[str, Any]:
    inbox = work / "jobs" / "inbox"
    arrived = sorted(p.name for p in inbox.iterdir()) if inbox.is_dir() else []
    intact = all((inbox / name).read_bytes() == f"{name}\n".encode() * 100 for name in arrived)
    db = sqlite3.connect(state)
    runs = dict(db.execute("SELECT job || ':' || status, COUNT(*) FROM runs GROUP BY job, status"))
    copies = db.execute(
        "SELECT source, COUNT(*) FROM files WHERE status = 'copied' GROUP BY source"
    ).fetchall()
    ledger = db.execute("SELECT COUNT(*) FROM ledger WHERE job = 'soak-files'").fetchone()[0]
    db.close()
    doubled = [source for source, count in copies if count > 1]
    lost = sorted(set(written) - set(arrived))
    first, last = samples[0], samples[-1]
    results = {
        "seconds": round(seconds),
        "files_written": len(written),
        "files_arrived": len(arrived),
        "lost": lost,
        "doubled": doubled,
        "contents_intact": intact,
        "ledger_entries": ledger,
        "runs": runs,
        "serve_exit_code": code,
        "rss_kib": {
            "start": first["rss_kib"],
            "end": last["rss_kib"],
            "max": max(s["rss_kib"] for s in samples),
        },
        "fds": {"start": first["fds"], "end": last["fds"], "max": max(s["fds"] for s in samples)},
        "threads": {"start": first["threads"], "end": last["threads"]},
        "samples": len(samples),
        "log": str(work / "serve.log"),
    }
    results["ok"] = (
        not lost
        and not doubled
        and intact
        and ledger == len(written)
        and code == 0
        and not any(k.endswith(":failed") for k in runs)
    )
    return results


if __name__ == "__main__":
    sys.exit(main())
