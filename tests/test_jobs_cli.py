"""``ferryman run`` (text, ``--json``, ``--dry-run``), ``history``, ``show`` and the run log,
in-process through click's CliRunner against an in-process FTPS server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferryman.errors import ExitCode
from ferryman.jobs.run import run_job
from ferryman.state import StateStore

from .conftest import PASSWORD, ServerFactory
from .test_jobs_support import PW_ENV, JobEnv, make_env, partner_server

ORDERS_BYTES = len("order_id,amount\n1,10.5\n2,20\n") + len("order_id,amount\n3,30\n")

NIGHTLY = """\
steps:
  - name: fetch
    receive:
      from: "partner:/out/orders_*.csv"
      to: inbox/
      only_new: true
      after: {move_to: /out/archive/}
  - name: load
    if: "{{ steps.fetch.count > 0 }}"
    load:
      files: "{{ steps.fetch.files }}"
      into: "warehouse:orders"
      format: {column_types: {order_id: integer, amount: real}}
  - name: report
    export: {query: "select count(*) as n from orders", from: warehouse, to: out/report.csv}
  - name: publish
    send: {from: out/report.csv, to: "partner:/in/", if_exists: overwrite}
  - name: tidy
    mkdir_local: {path: done/today}
  - name: mark
    run: [$PY, tool.py, fail-once, ran.marker]
  - name: alert
    when: failure
    run: [$PY, tool.py, echo, alert]
"""


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ftp_server: ServerFactory
) -> Iterator[JobEnv]:
    yield from make_env(tmp_path, monkeypatch, partner_server(ftp_server))


def by_name(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in steps}


# --- run ---------------------------------------------------------------------------------------


def test_run_json_document(env: JobEnv) -> None:
    path = env.write(NIGHTLY, name="nightly")
    (env.dir / "ran.marker").touch()
    result = env.cli("run", path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["job"] == "nightly" and doc["run_id"] == 1
    assert doc["status"] == "succeeded" and doc["exit_code"] == 0 and doc["error"] is None
    assert doc["dry_run"] is False and doc["seconds"] > 0
    assert doc["state_file"] == str(env.state)
    log_file = Path(doc["log_file"])
    assert log_file.is_file() and log_file.parent == env.state.parent / "logs" / "nightly"
    steps = by_name(doc["steps"])
    assert list(steps) == ["fetch", "load", "report", "publish", "tidy", "mark", "alert"]
    fetch = steps["fetch"]
    assert fetch["action"] == "receive" and fetch["status"] == "succeeded"
    assert fetch["attempts"] == 1 and fetch["handled"] is False and fetch["error"] is None
    assert fetch["result"]["count"] == 2 and fetch["result"]["bytes"] == ORDERS_BYTES
    assert steps["load"]["result"]["rows"] == 3
    assert steps["report"]["result"]["rows"] == 1
    assert steps["publish"]["result"]["files"] == ["/in/report.csv"]
    assert steps["mark"]["result"]["stdout"] == "second attempt succeeded\n"
    assert steps["alert"]["status"] == "skipped"
    assert steps["alert"]["reason"] == "runs only after a failure"
    assert env.remote("in/report.csv").read_text() == "n\n3\n"
    assert result.stderr == ""


def test_run_json_of_a_failed_run(env: JobEnv) -> None:
    path = env.write(NIGHTLY, name="nightly")
    result = env.cli("run", path, "--json")
    assert result.exit_code == ExitCode.FAILURE
    doc = json.loads(result.stdout)  # one document, also on failure
    assert doc["ok"] is False and doc["status"] == "failed" and doc["exit_code"] == 1
    assert doc["error"]["exit_code"] == 1 and "exited with status 3" in doc["error"]["message"]
    steps = by_name(doc["steps"])
    assert steps["mark"]["status"] == "failed" and steps["alert"]["status"] == "succeeded"
    assert steps["mark"]["error"]["message"].endswith("exited with status 3: first attempt fails")
    assert "ferryman: error: " in result.stderr and "first attempt fails" in result.stderr


def test_run_prints_every_step(env: JobEnv) -> None:
    path = env.write(NIGHTLY, name="nightly")
    (env.dir / "ran.marker").touch()
    result = env.cli("run", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"job nightly, run 1 (state {env.state})"
    fetch = next(line for line in lines if " fetch " in line)
    assert fetch.split()[:3] == ["succeeded", "fetch", "receive"]
    assert f"count 2  bytes {ORDERS_BYTES}" in fetch
    assert "rows 3" in next(line for line in lines if " load " in line)
    assert "exit_code 0" in next(line for line in lines if " mark " in line)
    alert = next(line for line in lines if " alert " in line)
    assert alert.split()[0] == "skipped" and alert.endswith("(runs only after a failure)")
    assert re.fullmatch(r"succeeded in \d+\.\d\d s; log: .+\.log", lines[-1])

    second = env.cli("run", path)  # nothing new: load is skipped by its if:
    load = next(line for line in second.stdout.splitlines() if " load " in line)
    assert "(if: {{ steps.fetch.count > 0 }} is false)" in load
    assert "count 0" in next(line for line in second.stdout.splitlines() if " fetch " in line)


def test_dry_run_changes_nothing(env: JobEnv) -> None:
    path = env.write(NIGHTLY, name="nightly")
    remote_before = sorted(str(p.relative_to(env.remote())) for p in env.remote().rglob("*"))
    result = env.cli("run", path, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and doc["status"] == "succeeded"
    steps = by_name(doc["steps"])
    assert steps["fetch"]["result"]["count"] == 0
    assert steps["fetch"]["result"]["planned"] == [
        str(env.dir / "inbox/orders_1.csv"),
        str(env.dir / "inbox/orders_2.csv"),
    ]
    assert steps["mark"]["result"]["exit_code"] is None  # the program did not run
    # no files copied (either way), no directories, no table, no program run, no ledger
    assert sorted(str(p.relative_to(env.remote())) for p in env.remote().rglob("*")) == (
        remote_before
    )
    for name in ("inbox", "out", "done", "ran.marker"):
        assert not (env.dir / name).exists(), name
    assert env.tables() == []
    assert env.taken("nightly") == []
    text = env.cli("run", path, "--dry-run")
    assert text.stdout.startswith(
        "job nightly, dry run (changes nothing; not recorded in the history)\n"
    )
    # a dry run is not stored: the history does not show it as a (succeeded) run
    assert doc["run_id"] is None
    assert json.loads(env.cli("history", path, "--json").stdout)["runs"] == []

    (env.dir / "ran.marker").touch()
    real = json.loads(env.cli("run", path, "--json").stdout)
    assert by_name(real["steps"])["fetch"]["result"]["count"] == 2  # still new
    assert env.rows("select count(*) from orders") == [(3,)]
    assert len(env.taken("nightly")) == 2


def test_run_of_an_invalid_job_is_a_usage_error_and_records_nothing(env: JobEnv) -> None:
    path = env.write(NIGHTLY.replace("    mkdir_local: {path: done/today}", "    mkdir: x"))
    result = env.cli("run", path, "--json")
    assert result.exit_code == ExitCode.USAGE
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert "steps.4.mkdir: unknown key" in doc["message"]
    assert not env.state.exists()


# --- history and show --------------------------------------------------------------------------


def test_history_and_show(env: JobEnv) -> None:
    path = env.write(NIGHTLY, name="nightly")
    env.cli("run", path)  # run 1 fails at mark (first attempt)
    env.cli("run", path)  # run 2 succeeds; nothing new to fetch
    env.remote("out/orders_3.csv").write_text("order_id,amount\n4,40\n")
    env.cli("run", path)  # run 3 takes the new file

    result = env.cli("history", "nightly", "--state", env.state, "--json")
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert [(r["id"], r["status"], r["exit_code"]) for r in runs] == [
        (3, "succeeded", 0),
        (2, "succeeded", 0),
        (1, "failed", 1),
    ]
    assert runs[2]["files"] == 3 and runs[2]["bytes"] == ORDERS_BYTES + 4  # + the report
    assert runs[0]["job_file"] == str(path)
    text = env.cli("history", path).stdout.splitlines()
    assert text[0] == f"runs of job nightly in state file {env.state} (of {path}):"
    assert [line.split()[:4] for line in text[1:]] == [
        ["3", "nightly", "succeeded", "exit"],
        ["2", "nightly", "succeeded", "exit"],
        ["1", "nightly", "failed", "exit"],
    ]
    none = env.cli("history", "other-job", "--state", env.state).stdout
    header = f"runs of job other-job in state file {env.state} (given with --state):"
    assert none == header + "\n  (none)\n"

    shown = env.cli("show", "1", "--state", env.state)
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert out.startswith(
        f"run 1 of job nightly ({path}): failed, exit code 1\n  state file {env.state}\n"
    )
    assert "  error: " in out and "first attempt fails" in out
    assert re.search(r"  step fetch +receive +succeeded \d+\.\d\d s", out)
    assert re.search(r"  step alert +run +succeeded", out)
    assert f"  file copied   /out/orders_1.csv -> {env.dir}/inbox/orders_1.csv  28 bytes" in out
    assert f"-> {env.dir}/inbox/orders_2.csv  21 bytes" in out
    assert (
        "  file copied   " + str(env.dir / "out/report.csv") + " -> /in/report.csv  4 bytes" in out
    )
    log_line = out.splitlines()[-1]
    assert log_line.startswith("  log: ") and Path(log_line[7:]).is_file()

    detail = json.loads(env.cli("show", "3", "--state", env.state, "--json").stdout)
    assert detail["ok"] is True and detail["id"] == 3 and detail["status"] == "succeeded"
    assert detail["files"][0]["source"] == "/out/orders_3.csv"
    assert detail["files"][0]["bytes"] == len("order_id,amount\n4,40\n")
    assert detail["file_counts"] == {"copied": 2}
    assert detail["files"][1]["target"] == "/in/report.csv"
    assert detail["bytes"] == len("order_id,amount\n4,40\n") + len("n\n4\n")
    steps = by_name(detail["steps"])
    assert steps["fetch"]["result"]["count"] == 1 and steps["load"]["result"]["rows"] == 1
    assert steps["alert"]["status"] == "skipped" and steps["alert"]["reason"]
    assert Path(detail["transcript"]).is_file()
    assert detail["variables"] == {}


def test_show_a_run_that_does_not_exist(env: JobEnv) -> None:
    env.run(env.write(NIGHTLY))
    result = env.cli("show", "99", "--state", env.state)
    assert result.exit_code == ExitCode.USAGE
    assert "there is no run 99 in the state file" in result.stderr


def test_the_state_file_comes_from_ferryman_state_without_state_key(
    env: JobEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = tmp_path / "from-env" / "state.db"
    monkeypatch.setenv("FERRYMAN_STATE", str(from_env))
    path = env.write(NIGHTLY, state=False)
    (env.dir / "ran.marker").touch()
    assert env.cli("run", path).exit_code == 0
    assert from_env.is_file() and not env.state.exists()
    runs = json.loads(env.cli("history", "--json").stdout)["runs"]
    assert [r["job"] for r in runs] == ["job"]
    other = tmp_path / "flag.db"
    assert env.cli("run", path, "--state", other).exit_code == 0
    assert json.loads(env.cli("history", "--state", other, "--json").stdout)["runs"][0]["id"] == 1


# --- the run log -------------------------------------------------------------------------------


def test_the_run_log_has_the_transcript_with_the_password_masked(env: JobEnv) -> None:
    path = env.write(
        """\
        env: [$PW_ENV]
        steps:
          - name: fetch
            receive: {from: "partner:/out/orders_*.csv", to: inbox/}
          - name: leak
            retries: 1
            retry_delay: 0
            continue_on_error: true
            run: [$PY, tool.py, fail, "2", "oops {{ env.$PW_ENV }}"]
        """,
        PW_ENV=PW_ENV,
    )
    report = env.run(path)
    assert report.exit_code == 0
    assert report.log_file is not None
    log = report.log_file.read_text(encoding="utf-8")
    assert f"run {report.run_id} of job job ({path})" in log
    assert "> AUTH TLS" in log and "< 234" in log and "> USER demo" in log
    assert "> PASS ****" in log and "< 230" in log and "> RETR /out/orders_1.csv" in log
    assert "step fetch succeeded in" in log and "step leak failed in" in log
    assert "step leak failed (" in log and "oops ****" in log  # the retry warning, masked
    assert PASSWORD not in log
    assert f"run {report.run_id} succeeded (exit code 0)" in log


def test_show_includes_what_steps_inside_foreach_did(env: JobEnv) -> None:
    (env.dir / "out").mkdir()
    (env.dir / "out/a.csv").write_text("a\n")
    (env.dir / "out/b.csv").write_text("bb\n")
    path = env.write(
        """\
        steps:
          - name: each
            foreach:
              items: "out/*.csv"
              steps:
                - name: upload
                  send: {from: "{{ item }}", to: "partner:/in/"}
        """
    )
    report = env.run(path)
    assert report.exit_code == 0 and env.remote("in/b.csv").read_text() == "bb\n"
    detail = json.loads(env.cli("show", str(report.run_id), "--state", env.state, "--json").stdout)
    assert [s["name"] for s in detail["steps"]] == ["each", "upload", "upload"]
    assert sorted(f["target"] for f in detail["files"]) == ["/in/a.csv", "/in/b.csv"]
    assert detail["bytes"] == 5


def test_a_relative_state_option_means_the_same_file_for_run_and_history(
    env: JobEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = env.write(NIGHTLY, state=False)
    (env.dir / "ran.marker").touch()
    monkeypatch.chdir(tmp_path)
    assert env.cli("run", path, "--state", "cli-state.db").exit_code == 0
    runs = json.loads(env.cli("history", "--state", "cli-state.db", "--json").stdout)["runs"]
    assert [r["job"] for r in runs] == ["job"]
    assert (tmp_path / "cli-state.db").is_file() and not (env.dir / "cli-state.db").exists()


def test_a_variable_from_the_environment_is_not_recorded_in_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FM_TOKEN", "tok-secret-123")
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: env-vars\n"
        "state: state.db\n"
        "env: [FM_TOKEN]\n"
        "variables:\n"
        "  token: '{{ env.FM_TOKEN }}'\n"
        "  day: '20261123'\n"
        "steps:\n"
        "  - name: noop\n"
        "    mkdir_local: {path: made}\n",
        encoding="utf-8",
    )
    report = run_job(job)
    assert report.exit_code == 0
    with StateStore(tmp_path / "state.db") as store:
        detail = store.run_detail(report.run_id or 0).to_dict()
    assert detail["variables"]["day"] == "20261123"
    assert "tok-secret-123" not in json.dumps(detail)
    assert "tok-secret-123" not in (report.log_file.read_text() if report.log_file else "")
