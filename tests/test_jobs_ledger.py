"""The only-new ledger across runs, failed and crashed runs (a real ``ferryman run``
subprocess killed with SIGKILL), and the job lock (a second run while one is running)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman.errors import ExitCode
from ferryman.jobs.run import RunReport
from ferryman.state import lock_path

from .conftest import ServerFactory
from .test_jobs_support import JobEnv, kill_pid, make_env, partner_server, pid_alive, wait_until

FETCH = """\
steps:
  - name: fetch
    receive: {from: "partner:$PATTERN", to: inbox/, only_new: true}
"""


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ftp_server: ServerFactory
) -> Iterator[JobEnv]:
    yield from make_env(tmp_path, monkeypatch, partner_server(ftp_server))


def taken(report: RunReport) -> list[str]:
    fetch = next(s for s in report.steps if s.name == "fetch")
    assert fetch.status == "succeeded", fetch.error
    return list(fetch.result["sources"])


# --- only_new across runs ----------------------------------------------------------------------


def test_only_new_takes_each_file_once(env: JobEnv) -> None:
    path = env.write(FETCH, PATTERN="/out/orders_*.csv")
    assert taken(env.run(path)) == ["/out/orders_1.csv", "/out/orders_2.csv"]
    ledger = env.taken()
    assert [t.path for t in ledger] == ["/out/orders_1.csv", "/out/orders_2.csv"]
    assert ledger[0].connection.startswith("ftpes://demo@127.0.0.1:")
    assert (
        ledger[0].size == len("order_id,amount\n1,10.5\n2,20\n")
        and ledger[0].mtime is not None
        and ledger[0].run_id == 1
    )

    (env.dir / "inbox/orders_1.csv").write_text("the local copy is not touched again")
    second = env.run(path)
    assert taken(second) == [] and second.exit_code == 0
    assert (env.dir / "inbox/orders_1.csv").read_text() == "the local copy is not touched again"

    env.remote("out/orders_3.csv").write_text("order_id,amount\n5,50\n")
    assert taken(env.run(path)) == ["/out/orders_3.csv"]
    assert taken(env.run(path)) == []
    assert len(env.taken()) == 3


def test_a_changed_file_is_taken_again(env: JobEnv) -> None:
    path = env.write(FETCH, PATTERN="/out/orders_*.csv")
    env.run(path)
    with env.remote("out/orders_1.csv").open("a") as f:  # another size
        f.write("9,90\n")
    first = env.run(path)
    assert taken(first) == ["/out/orders_1.csv"]
    assert (env.dir / "inbox/orders_1.csv").read_text().endswith("9,90\n")  # overwritten

    remote = env.remote("out/orders_2.csv")
    size = remote.stat().st_size
    earlier = time.time() - 7200
    os.utime(remote, (earlier, earlier))  # the same size, another time
    assert remote.stat().st_size == size
    assert taken(env.run(path)) == ["/out/orders_2.csv"]
    assert taken(env.run(path)) == []


def test_changing_the_pattern_does_not_reset_the_ledger(env: JobEnv) -> None:
    env.run(env.write(FETCH, PATTERN="/out/orders_*.csv"))
    assert taken(env.run(env.write(FETCH, PATTERN="/out/*"))) == ["/out/notes.txt"]


def test_the_ledger_is_per_job(env: JobEnv) -> None:
    env.run(env.write(FETCH, PATTERN="/out/orders_*.csv"))
    other = env.write(FETCH, name="other-job", file="other.yaml", PATTERN="/out/orders_*.csv")
    assert taken(env.run(other)) == ["/out/orders_1.csv", "/out/orders_2.csv"]


def test_list_only_new_leaves_out_taken_files_without_taking_any(env: JobEnv) -> None:
    env.run(env.write(FETCH, PATTERN="/out/orders_1.csv"))
    listing = env.write(
        """\
        steps:
          - name: fresh
            list: {path: "partner:/out/*.csv", only_new: true}
          - name: all
            list: {path: "partner:/out/*.csv"}
        """,
        file="list.yaml",
    )
    for _ in range(2):  # a list never enters anything into the ledger
        report = env.run(listing)
        assert report.steps[0].result["files"] == ["/out/orders_2.csv"]
        assert report.steps[1].result["count"] == 2
    assert [t.path for t in env.taken()] == ["/out/orders_1.csv"]


FAILING = {
    "run": """\
  - name: later
    run: [$PY, tool.py, fail, "4", "$FAIL"]
""",
    "load": """\
  - name: later
    load:
      files: "{{ steps.fetch.files }}"
      into: "warehouse:orders"
      format: {column_types: {order_id: integer}}
""",
}


@pytest.mark.parametrize(("kind", "code"), [("run", ExitCode.FAILURE), ("load", ExitCode.LOAD)])
def test_a_failed_run_commits_nothing_to_the_ledger(env: JobEnv, kind: str, code: ExitCode) -> None:
    good = env.remote("out/orders_1.csv").read_text()
    env.remote("out/orders_1.csv").write_text(good + "x,1\n")  # a bad row for the load
    body = FETCH + FAILING[kind]
    failed = env.run(env.write(body, PATTERN="/out/orders_*.csv", FAIL="failed"))
    assert taken(failed) == ["/out/orders_1.csv", "/out/orders_2.csv"]
    assert failed.status == "failed" and failed.exit_code == code
    assert env.taken() == []
    (env.dir / "inbox/orders_2.csv").write_text("stale copy of the failed run")

    # the next run (this time without failing) takes the same files again
    fixed = FETCH + "  - name: later\n    run: [$PY, tool.py, echo, fine]\n"
    again = env.run(env.write(fixed, PATTERN="/out/orders_*.csv"))
    assert taken(again) == ["/out/orders_1.csv", "/out/orders_2.csv"]
    assert again.exit_code == 0
    assert (env.dir / "inbox/orders_2.csv").read_text() == "order_id,amount\n3,30\n"
    assert [t.run_id for t in env.taken()] == [again.run_id, again.run_id]
    assert taken(env.run(env.dir / "job.yaml")) == []


def test_a_file_whose_load_failed_is_not_remembered(env: JobEnv) -> None:
    env.remote("out/orders_2.csv").write_text("order_id,amount\nbad,1\n")
    path = env.write(
        FETCH
        + """\
  - name: load
    continue_on_error: true
    load:
      files: "{{ steps.fetch.files }}"
      into: "warehouse:orders"
      format: {column_types: {order_id: integer}}
""",
        PATTERN="/out/orders_*.csv",
    )
    report = env.run(path)
    assert report.exit_code == 0 and report.steps[1].status == "failed"
    assert [t.path for t in env.taken()] == ["/out/orders_1.csv"]


def test_a_failed_run_does_not_archive_the_files_it_took(env: JobEnv) -> None:
    archiving = FETCH.replace("only_new: true}", "only_new: true, after: {move_to: /out/archive/}}")
    failed = env.run(env.write(archiving + FAILING["run"], PATTERN="/out/orders_*.csv", FAIL="x"))
    assert taken(failed) == ["/out/orders_1.csv", "/out/orders_2.csv"]
    assert failed.exit_code == ExitCode.FAILURE
    fixed = archiving + "  - name: later\n    run: [$PY, tool.py, echo, fine]\n"
    again = env.run(env.write(fixed, PATTERN="/out/orders_*.csv"))
    assert taken(again) == ["/out/orders_1.csv", "/out/orders_2.csv"]
    assert sorted(p.name for p in env.remote("out/archive").iterdir()) == [
        "orders_1.csv",
        "orders_2.csv",
    ]


# --- a crash -----------------------------------------------------------------------------------

PAUSING = """\
variables:
  pause: "yes"
steps:
  - name: fetch
    receive: {from: "partner:/out/orders_*.csv", to: inbox/, only_new: true}
  - name: pause
    if: "{{ pause == 'yes' }}"
    run: [$PY, tool.py, sleep, $PIDFILE, "60"]
"""


def test_a_killed_run_loses_no_file_and_shows_as_interrupted(env: JobEnv) -> None:
    path = env.write(PAUSING, PIDFILE="crash.pid")
    proc = env.spawn("run", path)
    pidfile = env.dir / "crash.pid"
    wait_until(pidfile.exists, what="the run to reach its pause step")
    assert env.files("inbox") == ["orders_1.csv", "orders_2.csv"]  # received, then...
    kill_pid(proc.pid)  # ... SIGKILL in the middle of the run
    assert proc.wait(10) == -9
    sleeper = int(pidfile.read_text())
    kill_pid(sleeper)
    assert env.taken() == []

    result = env.cli("history", path, "--json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    assert run["status"] == "interrupted" and run["pid"] == proc.pid
    assert run["error"] == (
        f"the run's process (pid {proc.pid} on {socket.gethostname()}) ended without "
        "finishing it (killed or crashed)"
    )
    text = env.cli("history", path).stdout
    assert "interrupted" in text and " job " in text

    again = env.run(path, {"pause": "no"})
    assert taken(again) == ["/out/orders_1.csv", "/out/orders_2.csv"]
    assert again.exit_code == 0 and again.run_id == 2
    assert len(env.taken()) == 2
    statuses = [r["status"] for r in env.history()]
    assert statuses == ["succeeded", "interrupted"]


# --- the lock ----------------------------------------------------------------------------------


def test_a_second_run_while_one_runs_is_refused_with_exit_code_10(env: JobEnv) -> None:
    path = env.write(PAUSING, PIDFILE="first.pid")
    first = env.spawn("run", path)
    pidfile = env.dir / "first.pid"
    wait_until(pidfile.exists, what="the first run to reach its pause step")

    result = env.cli("run", path, "--var", "pause=no")
    assert result.exit_code == 10  # ExitCode.LOCKED
    lock = lock_path(env.state, "job")
    host = socket.gethostname()
    assert (
        f"ferryman: error: job 'job' is already running: process {first.pid} on {host} "
        f"(since " in result.stderr
    )
    assert f"holds its lock {lock}" in result.stderr
    assert f"kill {first.pid}" in result.stderr

    # a real second process is refused the same way, at once
    second = env.spawn("run", path, "--var", "pause=no", "--json")
    out, err = second.communicate(timeout=30)
    assert second.returncode == 10
    assert f"process {first.pid} on {host}" in err
    assert json.loads(out)["exit_code"] == 10

    # another job of the same state file is not held up
    other = env.write(PAUSING, name="other", file="other.yaml", PIDFILE="other.pid")
    assert env.run(other, {"pause": "no"}).exit_code == 0

    # SIGKILL the holder: the lock is free at once, although its program still sleeps
    kill_pid(first.pid)
    first.wait(10)
    sleeper = int(pidfile.read_text())
    assert pid_alive(sleeper)
    after = env.cli("run", path, "--var", "pause=no")
    assert after.exit_code == 0, after.output
    kill_pid(sleeper)
    assert [r["status"] for r in env.history()] == ["succeeded", "interrupted"]


def test_a_run_works_again_after_the_first_one_ended(env: JobEnv) -> None:
    path = env.write(PAUSING.replace('"60"', '"1"'), PIDFILE="short.pid")
    first = env.spawn("run", path)
    wait_until((env.dir / "short.pid").exists, what="the first run to reach its pause step")
    assert env.cli("run", path, "--var", "pause=no").exit_code == 10
    out, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    assert "succeeded" in out
    again = env.cli("run", path, "--var", "pause=no")
    assert again.exit_code == 0, again.output
    assert [r["status"] for r in env.history()] == ["succeeded", "succeeded"]
    assert lock_path(env.state, "job").read_text() == ""  # nobody holds it
