"""``history`` and ``show`` read the job's own state file, and say which file they read.

Run ids are numbered per state file: a job with ``state: alpha.db`` and a job using the default
state file both have a run 2. ``history NAME`` finds the job file of that name (here or in
./jobs/) and reads its state; ``show ID JOB`` too; what they print names the state file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ferryman.cli import cli
from ferryman.errors import ExitCode


def ferryman(*args: str | Path) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def job(path: Path, name: str, state: str | None) -> Path:
    lines = [f"name: {name}"] + ([f"state: {state}"] if state else [])
    lines += ["steps:", "  - name: make", "    mkdir_local: {path: made}", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def default_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "default" / "state.db"
    monkeypatch.setenv("FERRYMAN_STATE", str(path))
    return path


def test_history_and_show_of_a_job_with_its_own_state(
    tmp_path: Path, default_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    alpha = job(project / "jobs" / "alpha.yaml", "alpha", "alpha.db")
    gamma = job(tmp_path / "elsewhere" / "gamma.yaml", "gamma", None)  # the default state
    for path in (alpha, alpha, gamma, gamma):
        assert ferryman("run", path).exit_code == 0
    own = project / "jobs" / "alpha.db"
    monkeypatch.chdir(project)

    text = ferryman("history", "alpha").stdout.splitlines()
    assert text[0] == f"runs of job alpha in state file {own} (of {alpha}):"
    assert [line.split()[:2] for line in text[1:]] == [["2", "alpha"], ["1", "alpha"]]
    doc = json.loads(ferryman("history", "alpha", "--json").stdout)
    assert doc["state_file"] == str(own) and [r["id"] for r in doc["runs"]] == [2, 1]

    # show 2: the default state file's run 2 (gamma's), and it says which file that is
    default = ferryman("show", "2").stdout.splitlines()
    assert default[0].startswith("run 2 of job gamma") and default[1] == (
        f"  state file {default_state}"
    )
    mine = ferryman("show", "2", "alpha").stdout.splitlines()
    assert mine[0].startswith(f"run 2 of job alpha ({alpha})") and mine[1] == f"  state file {own}"
    assert json.loads(ferryman("show", "2", alpha, "--json").stdout)["state_file"] == str(own)

    wrong = ferryman("show", "2", "alpha", "--state", default_state)
    assert wrong.exit_code == ExitCode.USAGE
    assert f"run 2 in the state file {default_state} is of job gamma, not alpha" in wrong.stderr


def test_history_of_an_unknown_name_says_where_it_looked(
    tmp_path: Path, default_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job(tmp_path / "project" / "alpha.yaml", "alpha", "alpha.db")
    assert ferryman("run", tmp_path / "project" / "alpha.yaml").exit_code == 0
    monkeypatch.chdir(tmp_path)  # no job file named alpha here or in ./jobs/
    result = ferryman("history", "alpha")
    assert result.exit_code == 0
    assert result.stdout == (
        f"runs of job alpha in state file {default_state} (the default):\n  (none)\n"
    )
    assert "give the job file (ferryman history path/to/job.yaml) or --state" in result.stderr
    missing = ferryman("show", "1")
    assert missing.exit_code == ExitCode.USAGE
    assert f"there is no run 1 in the state file {default_state}" in missing.stderr
    assert "give the job file (ferryman show 1 path/to/job.yaml)" in missing.stderr


def test_a_dry_run_is_not_stored(tmp_path: Path, default_state: Path) -> None:
    path = job(tmp_path / "alpha.yaml", "alpha", "alpha.db")
    result = ferryman("run", path, "--dry-run", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["run_id"] is None
    assert not (tmp_path / "made").exists()
    assert json.loads(ferryman("history", path, "--json").stdout)["runs"] == []
    assert ferryman("run", path).exit_code == 0
    (run,) = json.loads(ferryman("history", path, "--json").stdout)["runs"]
    assert run["id"] == 1 and run["status"] == "succeeded"
