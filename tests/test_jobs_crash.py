"""Exactly once across crashes (issue 11): a real ``ferryman run`` process is killed with
SIGKILL at every point where the job has just changed something outside itself -- after each
file received, each file loaded, each step, the upload's record, the ledger's commit and each
source archived (``ferryman.crashpoints``) -- and re-run. After the re-run the warehouse must
hold every row exactly once, the server must hold the report once and every source archived,
and a further run must change nothing: the same state as one run that was never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman.crashpoints import ENV_VAR
from ferryman.state import StateStore

from .conftest import ServerFactory
from .test_jobs_support import JobEnv, make_env

FILES = 6
ROWS = 40  #: rows per file; order ids are unique across all files

JOB = """\
steps:
  - name: fetch
    receive:
      from: "partner:/out/orders_*.csv"
      to: inbox/
      only_new: true
      parallel: 2
      after: {move_to: /archive/}
  - name: load
    load:
      files: "{{ steps.fetch.files }}"
      into: warehouse:orders
  - name: report
    if: "{{ steps.fetch.count > 0 }}"
    export:
      query: "SELECT order_id, amount FROM orders ORDER BY CAST(order_id AS INTEGER)"
      from: warehouse
      to: out/report.csv
  - name: publish
    if: "{{ steps.fetch.count > 0 }}"
    send:
      from: "out/*.csv"
      to: "partner:/reports/"
      only_new: true
      if_exists: fail  # a re-run must recognize its own upload, not overwrite blindly
      after: {move_to: sent/}
"""

#: every crash point the job passes, with how often (``ferryman.crashpoints``)
POINTS = [
    *(f"file-done:{n}" for n in range(1, FILES + 2)),  # the files received, then the upload
    *(f"load-committed:{n}" for n in range(1, FILES + 1)),
    "after-step:fetch",
    "after-step:load",
    "after-step:report",
    "uploads-recorded:1",
    "after-step:publish",
    "ledger-committed:1",
    *(f"source-action:{n}" for n in range(1, FILES + 2)),  # the sources, then the report
]
#: killed again during the re-run, at another point
TWICE = [
    ["load-committed:3", "load-committed:2"],
    ["file-done:4", "ledger-committed:1"],
    ["source-action:2", "source-action:3"],
    ["uploads-recorded:1", "file-done:7"],
]


def orders(first: int) -> str:
    rows = "".join(f"{i},{i * 1.5:.1f}\n" for i in range(first, first + ROWS))
    return "order_id,amount\n" + rows


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ftp_server: ServerFactory
) -> Iterator[JobEnv]:
    served = ftp_server("explicit")
    for sub in ("out", "archive", "reports"):
        (served.root / sub).mkdir()
    for n in range(FILES):
        text = orders(1 + n * ROWS)
        (served.root / "out" / f"orders_{n + 1}.csv").write_text(text, encoding="utf-8")
    yield from make_env(tmp_path, monkeypatch, served)


def run(env: JobEnv, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["run", str(env.dir / "job.yaml"), "--json"]
    proc = env.spawn(*args) if crash_at is None else _spawn_crashing(env, args, crash_at)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _spawn_crashing(env: JobEnv, args: list[str], crash_at: str) -> subprocess.Popen[str]:
    os.environ[ENV_VAR] = crash_at  # the child inherits it; only the child is killed
    try:
        return env.spawn(*args)
    finally:
        del os.environ[ENV_VAR]


def expected_report() -> str:
    ids = range(1, FILES * ROWS + 1)
    return "order_id,amount\n" + "".join(f"{i},{i * 1.5:.1f}\n" for i in ids)


def check_converged(env: JobEnv) -> None:
    """The state of one successful run: each row once, each source archived once, the report
    on the server once, nothing left to do."""
    total, distinct = env.rows("SELECT count(*), count(DISTINCT order_id) FROM orders")[0]
    assert (total, distinct) == (FILES * ROWS, FILES * ROWS), "rows doubled or lost"
    markers = env.rows("SELECT count(*) FROM ferryman_loaded_files")[0][0]
    assert markers == FILES
    remote = env.remote()
    assert sorted(p.name for p in (remote / "out").iterdir()) == []
    archived = sorted(p.name for p in (remote / "archive").iterdir())
    assert archived == [f"orders_{n}.csv" for n in range(1, FILES + 1)]
    reports = sorted(p.name for p in (remote / "reports").iterdir())
    assert reports == ["report.csv"], "the report was sent more than once, or not at all"
    text = (remote / "reports" / "report.csv").read_bytes().decode().replace("\r\n", "\n")
    assert text == expected_report()
    assert env.files("out") == []
    assert env.files("sent") == ["report.csv"]
    with StateStore(env.state) as store:
        assert store.pending_source_actions("job") == []
        assert len(store.taken("job")) == FILES + 1


@pytest.mark.parametrize("kills", [[p] for p in POINTS] + TWICE, ids="+".join)
def test_a_killed_run_converges_on_the_rerun(env: JobEnv, kills: list[str]) -> None:
    env.write(JOB)
    for point in kills:
        killed = run(env, crash_at=point)
        assert killed.returncode == -signal.SIGKILL, (
            f"the run was not killed at {point}: exit {killed.returncode}\n{killed.stderr}"
        )
    rerun = run(env)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["status"] == "succeeded"
    check_converged(env)
    again = run(env)  # converged: a further run takes nothing and changes nothing
    assert again.returncode == 0, again.stderr
    steps = {s["name"]: s for s in json.loads(again.stdout)["steps"]}
    assert steps["fetch"]["result"]["count"] == 0
    check_converged_after_idle_run(env)


def check_converged_after_idle_run(env: JobEnv) -> None:
    total = env.rows("SELECT count(*) FROM orders")[0][0]
    assert total == FILES * ROWS
    reports = sorted(p.name for p in (env.remote() / "reports").iterdir())
    assert reports == ["report.csv"]


def test_the_rerun_says_what_it_skipped_and_finished(env: JobEnv) -> None:
    """Killed after three loads: the re-run loads the other three and names the three it
    skipped; killed while archiving: the re-run finishes the archive before its steps."""
    env.write(JOB)
    assert run(env, crash_at="load-committed:3").returncode == -signal.SIGKILL
    rerun = json.loads(run(env).stdout)
    load = {s["name"]: s for s in rerun["steps"]}["load"]["result"]
    assert len(load["already_loaded"]) == 3 and len(load["files"]) == FILES - 3
    assert load["rows"] == (FILES - 3) * ROWS
    check_converged(env)


def test_a_kill_while_archiving_is_finished_by_the_next_run(env: JobEnv) -> None:
    env.write(JOB)
    assert run(env, crash_at="source-action:2").returncode == -signal.SIGKILL
    left = sorted(p.name for p in (env.remote() / "out").iterdir())
    assert len(left) == FILES - 2  # the ledger holds all of them; two were archived
    rerun = json.loads(run(env).stdout)
    assert any("did not finish" in note for note in rerun["recovered"]), rerun["recovered"]
    assert {s["name"]: s for s in rerun["steps"]}["fetch"]["result"]["count"] == 0
    check_converged(env)


def test_an_upload_cut_short_is_recognized_not_refused(env: JobEnv) -> None:
    """Killed right after the report landed on the server (before the ledger): the re-run
    exports the same report and finds it there, sent by the killed run -- it neither fails
    on the existing file (if_exists: fail) nor sends it twice."""
    env.write(JOB)
    assert run(env, crash_at="file-done:7").returncode == -signal.SIGKILL
    assert (env.remote() / "reports" / "report.csv").exists()
    rerun = json.loads(run(env).stdout)
    publish = {s["name"]: s for s in rerun["steps"]}["publish"]["result"]
    assert publish["count"] == 0 and publish["skipped"] == [str(env.dir / "out/report.csv")]
    check_converged(env)


def test_an_upload_of_a_cut_short_run_is_replaced_when_the_content_changed(
    env: JobEnv,
) -> None:
    """The report a killed run uploaded is no successful run's result: when the re-run's
    report differs (the data changed meanwhile), it replaces that file instead of failing on
    it (if_exists: fail) -- while a file nobody of this job uploaded is still refused."""
    env.write(JOB)
    assert run(env, crash_at="file-done:7").returncode == -signal.SIGKILL
    with contextlib.closing(sqlite3.connect(env.dir / "warehouse.db")) as db, db:
        db.execute("INSERT INTO orders VALUES ('9999', '1.0')")
    rerun = run(env)
    assert rerun.returncode == 0, rerun.stderr
    text = (env.remote() / "reports" / "report.csv").read_bytes().decode()
    assert text.replace("\r\n", "\n").endswith("9999,1.0\n")
    assert sorted(p.name for p in (env.remote() / "reports").iterdir()) == ["report.csv"]


def test_a_target_this_job_never_uploaded_is_still_refused(env: JobEnv) -> None:
    env.write(JOB)
    (env.remote() / "reports" / "report.csv").write_text("somebody else's\n", encoding="utf-8")
    failed = run(env)
    assert failed.returncode == 7, failed.stderr
    publish = {s["name"]: s for s in json.loads(failed.stdout)["steps"]}["publish"]
    assert "already exists" in publish["error"]["message"]
    text = (env.remote() / "reports" / "report.csv").read_text(encoding="utf-8")
    assert text == "somebody else's\n"
