"""Helpers shared by the job runner tests (``tests/test_jobs_*.py``); this module has no tests.

A :class:`JobEnv` is a job directory in ``tmp_path``: it writes job files (with a
``partner`` connection to an in-process pyftpdlib FTPS server when there is one, and a
``warehouse`` SQLite database), runs them in-process (``run_job`` or the ``ferryman`` CLI
through click's CliRunner) or as ``python -m ferryman`` subprocesses, and reads back what a
run left behind: files, table rows, the ledger, the history.

Every job names its state file (``state:``), and ``$FERRYMAN_STATE`` points into
``tmp_path`` as well, so no test ever touches the real home directory. Programs of ``run``
steps are :data:`TOOL`, a small script written next to each job (``python tool.py CMD``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ferryman.cli import cli
from ferryman.jobs.run import RunReport, run_job
from ferryman.state import StateStore, TakenFile

from .conftest import PASSWORD, Served, ServerFactory

__all__ = [
    "PW_ENV",
    "PY",
    "TOOL",
    "JobEnv",
    "kill_pid",
    "make_env",
    "pid_alive",
    "wait_until",
]

PY = sys.executable
PW_ENV = "PARTNER_PW"

#: The program of the tests' ``run`` steps: ``python tool.py CMD ARGS``.
TOOL = '''\
"""Test helper program for job ``run`` steps."""
import os
import sys
import time

cmd, *args = sys.argv[1:]
if cmd == "echo":  # echo WORDS: print them (stdout)
    print(" ".join(args))
elif cmd == "fail":  # fail CODE MESSAGE: MESSAGE on stderr, exit CODE
    print("some output")
    print(" ".join(args[1:]), file=sys.stderr)
    sys.exit(int(args[0]))
elif cmd == "fail-once":  # fail-once MARKER: fail unless MARKER exists (and create it)
    if os.path.exists(args[0]):
        print("second attempt succeeded")
    else:
        open(args[0], "w").close()
        print("first attempt fails", file=sys.stderr)
        sys.exit(3)
elif cmd == "sleep":  # sleep PIDFILE SECONDS: record the pid, then sleep
    tmp = args[0] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, args[0])
    time.sleep(float(args[1]))
elif cmd == "cwd":  # cwd: print the working directory
    print(os.getcwd())
else:
    sys.exit("unknown command " + cmd)
'''


def wait_until(check: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def kill_pid(pid: int) -> None:
    """SIGKILL one process this test started (by its pid), if it still runs."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class JobEnv:
    """A job directory (``dir``) with its state file and, optionally, a partner server."""

    dir: Path
    state: Path
    served: Served | None = None
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    # --- writing jobs ---------------------------------------------------------------------

    def header(self, name: str, *, state: bool = True) -> str:
        lines = [f"name: {name}"]
        if state:
            lines.append(f"state: {self.state}")
        lines.append("connections:")
        if self.served is not None:
            pki = self.served.server.pki
            assert pki is not None
            lines += [
                "  partner:",
                f"    url: ftpes://{self.served.server.user}@127.0.0.1:{self.served.server.port}/",
                f"    password_env: {PW_ENV}",
                f"    ca_file: {pki.ca_cert}",
                "    timeout: 2",
                "    retries: 0",
            ]
        lines.append("  warehouse: {url: 'sqlite:///warehouse.db'}")
        return "\n".join(lines) + "\n"

    def write(
        self,
        body: str,
        *,
        name: str = "job",
        file: str = "job.yaml",
        state: bool = True,
        **subs: object,
    ) -> Path:
        """A job file: the header (name, state, connections) and ``body`` (dedented).

        ``$PY`` in the body is the Python interpreter, ``$DIR`` the job directory and any
        ``$NAME`` a keyword argument.
        """
        values = {"PY": json.dumps(PY), "DIR": str(self.dir), **subs}
        text = self.header(name, state=state) + Template(textwrap.dedent(body)).substitute(values)
        path = self.dir / file
        path.write_text(text, encoding="utf-8")
        (self.dir / "tool.py").write_text(TOOL, encoding="utf-8")
        return path

    # --- running --------------------------------------------------------------------------

    def run(
        self,
        path: Path | None = None,
        overrides: Mapping[str, str] | None = None,
        **options: Any,
    ) -> RunReport:
        return run_job(path or self.dir / "job.yaml", overrides, **options)

    def cli(self, *args: str | Path) -> Result:
        """``ferryman ARGS`` in-process; an exception other than an exit fails the test."""
        result = CliRunner().invoke(cli, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert PASSWORD not in result.output
        return result

    def spawn(self, *args: str | Path) -> subprocess.Popen[str]:
        """``python -m ferryman ARGS`` as a child process (stopped by pid after the test)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [PY, "-m", "ferryman", *[str(a) for a in args]],
            cwd=self.dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def stop_processes(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                kill_pid(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=10)
        for pidfile in self.dir.glob("*.pid"):  # sleepers a killed run left behind
            with contextlib.suppress(ValueError, OSError):
                kill_pid(int(pidfile.read_text()))

    # --- reading back ---------------------------------------------------------------------

    def remote(self, relpath: str = "") -> Path:
        assert self.served is not None
        return self.served.root / relpath

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.dir / "warehouse.db")) as db:
            return db.execute(sql).fetchall()

    def tables(self) -> list[str]:
        db_file = self.dir / "warehouse.db"
        if not db_file.exists():
            return []
        found = self.rows("select name from sqlite_master where type = 'table'")
        return sorted(r[0] for r in found)

    def taken(self, job: str = "job") -> list[TakenFile]:
        with StateStore(self.state) as store:
            return sorted(store.taken(job), key=lambda t: t.path)

    def history(self, job: str = "job") -> list[dict[str, Any]]:
        with StateStore(self.state) as store:
            return [r.to_dict() for r in store.runs(job)]

    def files(self, relpath: str = "") -> list[str]:
        """Relative paths of the files below ``dir/relpath`` (sorted)."""
        base = self.dir / relpath
        if not base.exists():
            return []
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def make_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: Served | None = None
) -> Iterator[JobEnv]:
    """The body of each test module's job-directory fixture."""
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    monkeypatch.setenv("FERRYMAN_STATE", str(tmp_path / "env-state.db"))
    monkeypatch.setenv(PW_ENV, PASSWORD)
    env = JobEnv(job_dir, tmp_path / "state" / "state.db", served)
    try:
        yield env
    finally:
        env.stop_processes()


def partner_server(ftp_server: ServerFactory) -> Served:
    """An explicit-TLS server with ``/out`` holding two order files and a text file."""
    served = ftp_server("explicit")
    out = served.root / "out"
    out.mkdir()
    (out / "orders_1.csv").write_text("order_id,amount\n1,10.5\n2,20\n", encoding="utf-8")
    (out / "orders_2.csv").write_text("order_id,amount\n3,30\n", encoding="utf-8")
    (out / "notes.txt").write_text("not an order\n", encoding="utf-8")
    return served
