"""``ferryman demo``: an embedded FTPS server on loopback, a sample job, SQLite -- twice.

The demo writes a real job file and runs it with the real job runner: receive the partner's
order files (only new ones, archiving the originals on the server), load them into SQLite,
export a report, and send the report back. Then the "partner" drops one new file and puts an
already-taken one back unchanged, and the job runs again: it takes only the new file, because
the ledger remembers the other. Everything runs over explicit TLS with a verified certificate
(the demo's own CA) and TLS session reuse on every data connection.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import shlex
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .embedded import EmbeddedServer
from .jobs.run import RunReport, run_job

__all__ = ["DemoReport", "demo_command", "run_demo"]

FIRST_DAYS = ("2026-11-20", "2026-11-21", "2026-11-22")
NEW_DAY = "2026-11-23"
PASSWORD_ENV = "FERRYMAN_DEMO_PASSWORD"  # noqa: S105 - the name of a variable, not a secret

JOB = """\
# The demo job, written by `ferryman demo`, which starts the demo's FTPS server, runs this
# job twice and stops the server. To run it again, run the demo again (it starts afresh):
#   {again}
# (`ferryman run` on this file alone finds no server at {host}:{port}: connection refused.)
name: demo-orders
description: Pick up the partner's order files, load them, report back.
connections:
  partner:
    url: ftpes://demo@{host}:{port}/
    password_env: {password_env}
    ca_file: ca.pem
  warehouse:
    url: sqlite:///warehouse.db
state: state.db
steps:
  - name: fetch
    receive:
      from: partner:/outbound/orders_*.csv
      to: inbox/
      only_new: true
      after: {{move_to: /outbound/archive/}}
  - name: load
    if: "{{{{ steps.fetch.count > 0 }}}}"
    load:
      files: "{{{{ steps.fetch.files }}}}"
      into: warehouse:orders
      format:
        column_types: {{order_id: integer, amount: real}}
      mode: upsert
      key: [order_id]
  - name: report
    export:
      query: >-
        select day, count(*) as orders, round(sum(amount), 2) as total
        from orders group by day order by day
      from: warehouse
      to: "out/report_run{{{{ job.run_id }}}}.csv"
  - name: publish
    send:
      from: "out/report_run{{{{ job.run_id }}}}.csv"
      to: partner:/inbound/
  - name: alert
    when: failure
    run: [{python}, -c, "print('demo-orders failed')"]
"""


@dataclass
class DemoReport:
    server: str
    workdir: Path
    job_file: Path
    runs: list[RunReport] = field(default_factory=list)
    sessions_resumed: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "server": self.server,
            "workdir": str(self.workdir),
            "job_file": str(self.job_file),
            "runs": [r.to_dict() for r in self.runs],
            "tls_sessions_resumed": self.sessions_resumed,
        }


def _orders(day: str, first_id: int) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["order_id", "day", "customer", "amount"])
    for i in range(1, 101):
        writer.writerow([first_id + i, day, f"customer-{i % 17}", f"{(i * 7.31):.2f}"])
    return buffer.getvalue()


def _write_samples(root: Path) -> None:
    (root / "inbound").mkdir(parents=True, exist_ok=True)
    (root / "outbound/archive").mkdir(parents=True, exist_ok=True)
    for n, day in enumerate(FIRST_DAYS):
        (root / "outbound" / f"orders_{day}.csv").write_text(_orders(day, n * 1000), "utf-8")


def _partner_drops_files(root: Path) -> None:
    """One new file, and one already taken put back unchanged (same bytes, same time)."""
    outbound = root / "outbound"
    (outbound / f"orders_{NEW_DAY}.csv").write_text(_orders(NEW_DAY, 3000), "utf-8")
    archived = outbound / "archive" / f"orders_{FIRST_DAYS[0]}.csv"
    shutil.copy2(archived, outbound / archived.name)


def _resumed_everywhere(logs: list[Path]) -> bool:
    text = "".join(p.read_text(encoding="utf-8") for p in logs if p.is_file())
    sessions = re.findall(r"data TLS \S+, session (resumed|NEW)", text)
    return bool(sessions) and all(s == "resumed" for s in sessions)


@contextmanager
def _password_in_env(password: str) -> Iterator[None]:
    before = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = password
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = before


def _fresh(workdir: Path) -> None:
    """Start from a clean slate, but only remove what an earlier demo made."""
    for name in ("server", "inbox", "out", "warehouse.db", "state.db", "state.db.locks", "logs"):
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for extra in [*workdir.glob("state.db-*"), *workdir.glob("warehouse.db-*")]:
        extra.unlink()


def demo_command(workdir: Path, *, here: bool = False) -> str:
    """The command that runs the demo again in ``workdir`` (from the working directory:
    ``here``, where the default work directory needs no option)."""
    if here and workdir == Path(".ferryman-demo").resolve():
        return "ferryman demo"
    return f"ferryman demo --workdir {shlex.quote(str(workdir))}"


def run_demo(workdir: Path, verbose: int = 0) -> DemoReport:
    """Run the demo in ``workdir``; the server lives only for this call."""
    workdir.mkdir(parents=True, exist_ok=True)
    _fresh(workdir)
    root = workdir / "server"
    _write_samples(root)
    password = secrets.token_urlsafe(16)
    with EmbeddedServer(root, tls="explicit", user="demo", password=password) as server:
        assert server.pki is not None
        shutil.copy(server.pki.ca_cert, workdir / "ca.pem")
        job_file = workdir / "demo-job.yaml"
        job_file.write_text(
            JOB.format(
                again=demo_command(workdir),
                host=server.host,
                port=server.port,
                password_env=PASSWORD_ENV,
                python=sys.executable,
            ),
            encoding="utf-8",
        )
        report = DemoReport(
            server=f"ftpes://demo@{server.host}:{server.port}", workdir=workdir, job_file=job_file
        )
        with _password_in_env(password):
            report.runs.append(run_job(job_file, verbose=verbose))
            _partner_drops_files(root)
            report.runs.append(run_job(job_file, verbose=verbose))
    report.sessions_resumed = _resumed_everywhere([r.log_file for r in report.runs if r.log_file])
    return report
