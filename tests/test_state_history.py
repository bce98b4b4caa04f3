"""Run history: runs, steps and files round trip; JSON output; threads; interrupted runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferryman.errors import ConfigError, NotFoundError, TransferError
from ferryman.state import RunStatus, StateStore
from ferryman.transfer.report import FileOutcome, Status

T0 = datetime(2024, 5, 1, 2, 0, 0, tzinfo=UTC)

_START_RUN_AND_WAIT = """
import sys
from pathlib import Path
from ferryman.state import StateStore

store = StateStore(Path(sys.argv[1]))
run_id = store.start_run("crashy", variables={"day": "2024-05-01"})
print(run_id, flush=True)
sys.stdin.read()  # until the test closes stdin, or kills us
store.finish_run(run_id, "succeeded", 0)
"""


def _copied(name: str, size: int) -> FileOutcome:
    return FileOutcome(
        source=f"/outbound/{name}",
        target=f"inbox/{name}",
        status=Status.COPIED,
        bytes=size,
        size=size,
        seconds=0.5,
        retries=1,
        verified="size+sha256",
    )


def _failed(name: str) -> FileOutcome:
    return FileOutcome(
        source=f"/outbound/{name}",
        target=f"inbox/{name}",
        status=Status.FAILED,
        retries=5,
        error=TransferError("426 data connection closed", hint="check the firewall"),
    )


def test_runs_steps_and_files_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        run_id = store.start_run(
            "nightly",
            job_file=tmp_path / "nightly.yaml",
            variables={"day": "2024-05-01", "when": T0},
            transcript=tmp_path / "logs" / "run.log",
        )
        assert (
            store.record_step(
                run_id,
                "fetch",
                "succeeded",
                action="get",
                started=T0,
                finished=T0 + timedelta(seconds=12.5),
                attempts=2,
                result={"files": ["/outbound/a.csv", "/outbound/b.csv"], "count": 2},
            )
            == 1
        )
        assert (
            store.record_files(
                run_id, "fetch", [_copied("a.csv", 1000), _copied("b.csv", 500), _failed("c.csv")]
            )
            == 3
        )
        assert (
            store.record_step(
                run_id,
                "load",
                "failed",
                action="load",
                started="2024-05-01T04:00:13+02:00",  # ISO text in another zone is normalized
                seconds=3.0,
                error=NotFoundError("no file matches /outbound/*.csv", hint="check the pattern"),
            )
            == 2
        )
        assert (
            store.record_step(
                run_id, "archive", "skipped", reason="an earlier step failed", attempts=0
            )
            == 3
        )
        store.finish_run(run_id, RunStatus.FAILED, 6, "step load failed")

    with StateStore(path) as store:  # everything is on disk
        (summary,) = store.runs()
        assert summary.id == run_id and summary.job == "nightly"
        assert summary.status == "failed" and summary.exit_code == 6
        assert summary.error == "step load failed"
        assert summary.job_file == str(tmp_path / "nightly.yaml")
        assert summary.host == socket.gethostname() and summary.pid == os.getpid()
        assert (summary.files, summary.failed_files, summary.bytes) == (3, 1, 1500)
        assert summary.seconds is not None and summary.seconds >= 0

        detail = store.run_detail(run_id)
    assert detail.run == summary
    assert detail.variables == {"day": "2024-05-01", "when": str(T0)}
    assert detail.transcript == str(tmp_path / "logs" / "run.log")
    assert detail.bytes == 1500
    assert detail.file_counts == {"copied": 2, "failed": 1}

    fetch, load, archive = detail.steps
    assert (fetch.position, fetch.name, fetch.action, fetch.status) == (
        1,
        "fetch",
        "get",
        "succeeded",
    )
    assert fetch.started == "2024-05-01T02:00:00+00:00"
    assert fetch.finished == "2024-05-01T02:00:12.500000+00:00"
    assert fetch.seconds == 12.5 and fetch.attempts == 2
    assert fetch.result == {"files": ["/outbound/a.csv", "/outbound/b.csv"], "count": 2}
    assert fetch.error is None
    assert load.status == "failed" and load.started == "2024-05-01T02:00:13+00:00"
    assert load.seconds == 3.0
    assert load.error == "no file matches /outbound/*.csv"
    assert load.hint == "check the pattern" and load.exit_code == 6
    assert archive.status == "skipped" and archive.reason == "an earlier step failed"

    a, b, c = detail.files
    assert (a.step, a.source, a.target, a.status) == (
        "fetch",
        "/outbound/a.csv",
        "inbox/a.csv",
        "copied",
    )
    assert (a.bytes, a.seconds, a.retries, a.verified, a.error) == (
        1000,
        0.5,
        1,
        "size+sha256",
        None,
    )
    assert b.bytes == 500
    assert c.status == "failed" and c.retries == 5
    assert c.error == "426 data connection closed -- check the firewall"
    assert detail.errors == [
        "step load failed",
        "step load: no file matches /outbound/*.csv",
        "/outbound/c.csv: 426 data connection closed -- check the firewall",
    ]

    document = json.loads(json.dumps(detail.to_dict()))
    assert document["id"] == run_id and document["status"] == "failed"
    assert document["steps"][1]["error"] == {
        "message": "no file matches /outbound/*.csv",
        "hint": "check the pattern",
        "exit_code": 6,
    }
    assert document["files"][2]["error"].startswith("426")
    assert document["file_counts"] == {"copied": 2, "failed": 1}
    assert json.loads(json.dumps(summary.to_dict()))["bytes"] == 1500


def test_file_limit_keeps_the_totals(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run_id = store.start_run("nightly")
        store.record_files(run_id, "fetch", [_copied(f"{n}.csv", 10) for n in range(30)])
        detail = store.run_detail(run_id, file_limit=5)
    assert [f.source for f in detail.files] == [f"/outbound/{n}.csv" for n in range(5)]
    assert detail.file_counts == {"copied": 30} and detail.bytes == 300


def test_runs_are_listed_newest_first_per_job_and_limited(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        ids = {name: [store.start_run(name) for _ in range(3)] for name in ("a", "b")}
        for run_id in ids["a"]:
            store.finish_run(run_id, "succeeded", 0)
        assert [r.id for r in store.runs("a")] == ids["a"][::-1]
        assert [r.id for r in store.runs("b", limit=2)] == ids["b"][:0:-1]
        assert [r.id for r in store.runs()] == sorted(ids["a"] + ids["b"], reverse=True)
        assert len(store.runs(limit=None)) == 6
        assert store.runs("nobody") == []
        assert {r.status for r in store.runs("a")} == {"succeeded"}
        assert {r.status for r in store.runs("b")} == {"running"}


def test_step_order_is_explicit_or_next(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run_id = store.start_run("nightly")
        assert store.record_step(run_id, "one", "succeeded") == 1
        assert store.record_step(run_id, "ten", "succeeded", order=10) == 10
        assert store.record_step(run_id, "next", "succeeded") == 11
        # a step inside foreach is recorded once per iteration
        assert store.record_step(run_id, "next", "succeeded") == 12
        names = [s.name for s in store.run_detail(run_id).steps]
    assert names == ["one", "ten", "next", "next"]


def test_bad_calls_are_refused(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        run_id = store.start_run("nightly")
        with pytest.raises(ValueError):
            store.finish_run(run_id, "running")
        with pytest.raises(ValueError):
            store.finish_run(run_id, "exploded")
        with pytest.raises(ValueError, match="no run 999"):
            store.finish_run(999, "succeeded", 0)
        with pytest.raises(ValueError):
            store.record_step(run_id, "x", "maybe")
        with pytest.raises(ValueError):
            store.record_step(run_id, "x", "succeeded", started="yesterday")
        with pytest.raises(ConfigError, match="no run 999") as caught:
            store.run_detail(999)
        assert caught.value.hint is not None and "ferryman history" in caught.value.hint
        assert store.run_detail(run_id).steps == []  # nothing half-recorded


def test_finish_run_keeps_or_sets_the_transcript(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        first = store.start_run("nightly", transcript="first.log")
        store.finish_run(first, "succeeded", 0)
        second = store.start_run("nightly")
        store.finish_run(second, "failed", 1, TransferError("dropped"), transcript="second.log")
        assert store.run_detail(first).transcript == "first.log"
        assert store.run_detail(second).transcript == "second.log"
        assert store.run_detail(second).run.error == "dropped"


def test_worker_threads_record_files_concurrently(tmp_path: Path) -> None:
    workers, batches, per_batch = 8, 50, 4
    with StateStore(tmp_path / "state.db") as store:
        run_id = store.start_run("nightly")
        start = threading.Barrier(workers)
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            try:
                start.wait()
                for batch in range(batches):
                    outcomes = [_copied(f"w{worker}-b{batch}-{n}.csv", 1) for n in range(per_batch)]
                    store.record_files(run_id, f"worker-{worker}", outcomes)
                    store.remember("nightly", "local", [(outcomes[0].source, 1, None)], run_id)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        detail = store.run_detail(run_id)
        assert len(detail.files) == workers * batches * per_batch
        assert len({f.source for f in detail.files}) == workers * batches * per_batch
        assert detail.bytes == workers * batches * per_batch
        assert len(store.taken("nightly")) == workers * batches


# -- interrupted runs -----------------------------------------------------------------------


def _start_child(path: Path) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", _START_RUN_AND_WAIT, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip().isdigit(), f"the child did not start a run: {line!r}"
    return child, int(line)


def _end_child(child: subprocess.Popen[str], kill: bool) -> None:
    if kill:
        os.kill(child.pid, signal.SIGKILL)
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.close()
    except BrokenPipeError:
        pass
    child.wait()
    child.stdout.close()


def test_a_run_of_a_killed_process_is_marked_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    child, run_id = _start_child(path)
    try:
        with StateStore(path) as store:  # the child lives: its run is running
            assert store.interrupted == []
            assert store.run_detail(run_id).run.status == "running"
    finally:
        _end_child(child, kill=True)
    assert child.returncode == -signal.SIGKILL

    with StateStore(path) as store:
        assert store.interrupted == [run_id]
        run = store.run_detail(run_id).run
        assert run.status == "interrupted" and run.finished is not None
        assert run.error is not None and f"pid {child.pid}" in run.error
        assert store.run_detail(run_id).variables == {"day": "2024-05-01"}
    with StateStore(path) as store:
        assert store.interrupted == []  # marked once


def test_a_run_that_ended_normally_is_not_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    child, run_id = _start_child(path)
    _end_child(child, kill=False)
    assert child.returncode == 0
    with StateStore(path) as store:
        assert store.interrupted == []
        assert store.run_detail(run_id).run.status == "succeeded"


def test_runs_of_this_process_and_of_other_hosts_stay_running(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        mine = store.start_run("nightly")
        elsewhere = store.start_run("nightly")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "UPDATE runs SET host = 'elsewhere.example', pid = 999999999 WHERE id = ?",
            (elsewhere,),
        )
        conn.commit()
    with StateStore(path) as store:
        assert store.interrupted == []
        assert {r.id: r.status for r in store.runs()} == {mine: "running", elsewhere: "running"}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_reused_pid_does_not_keep_a_dead_run_running(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        run_id = store.start_run("nightly")
    with closing(sqlite3.connect(path)) as conn:  # our pid, but another process's start time
        conn.execute("UPDATE runs SET proc_start = 'earlier' WHERE id = ?", (run_id,))
        conn.commit()
    with StateStore(path) as store:
        assert store.interrupted == [run_id]
        assert store.runs()[0].status == "interrupted"
