"""Job files: ``ferryman validate`` (every problem at its exact file:line:column, exit code 2,
``--json``), ``ferryman schema``, and the model behind them."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman.errors import ConfigError, ExitCode
from ferryman.jobs.loader import load_job
from ferryman.jobs.model import JobFile, RunAction

from .test_jobs_support import JobEnv, make_env


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobEnv]:
    yield from make_env(tmp_path, monkeypatch)


def write(env: JobEnv, name: str, text: str) -> Path:
    path = env.dir / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(env: JobEnv, path: Path) -> list[str]:
    """``ferryman validate --json``: exit code 2 and the problems list."""
    result = env.cli("validate", path, "--json")
    assert result.exit_code == ExitCode.USAGE, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["job"] == str(path)
    assert doc["problems"] == doc["message"].splitlines()
    return list(doc["problems"])


def errors_on_stderr(env: JobEnv, path: Path) -> list[str]:
    result = env.cli("validate", path)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stdout == ""
    return [
        line.removeprefix("ferryman: error: ")
        for line in result.stderr.splitlines()
        if line.startswith("ferryman: error: ")
    ]


VALID = """\
name: nightly-orders
description: a valid job using every kind of step
connections:
  partner:
    url: ftpes://orders@127.0.0.1:2121/
    password_env: PARTNER_PW
    timeout: 2
    retries: 0
  warehouse:
    url: sqlite:///warehouse.db
variables:
  day: "{{ now().strftime('%Y%m%d') }}"
env: [HOME]
state: state.db
steps:
  - name: arrived
    wait_for: {path: "partner:/out/*.csv", stable_for: 0, timeout: 5, poll: 1}
  - name: fetch
    receive:
      from: partner:/out/*.csv
      to: inbox/
      only_new: true
      after: {move_to: /out/archive/}
  - name: load
    if: "{{ steps.fetch.count > 0 }}"
    load: {files: "{{ steps.fetch.files }}", into: "warehouse:orders", mode: upsert, key: [id]}
  - name: report
    export: {query: "select 1", from: warehouse, to: "out/r_{{ day }}.csv"}
  - name: publish
    send: {from: "out/r_{{ day }}.csv", to: "partner:/in/"}
  - name: mirror
    sync: {from: "partner:/cat", to: mirror, delete: true, max_delete: 20}
  - name: listing
    list: {path: "partner:/out/*.csv", only_new: true}
  - name: each
    foreach:
      items: "{{ steps.listing.files }}"
      as: f
      steps:
        - name: note
          run: {argv: [echo, "{{ f }}"], timeout: 5}
  - {name: a, mkdir_local: {path: x}}
  - {name: b, mkdir_remote: {path: "partner:/x"}}
  - {name: c, rmdir_local: {path: x}}
  - {name: d, rmdir_remote: {path: "partner:/x"}}
  - {name: e, delete_local: {path: "inbox/*.csv"}}
  - {name: f2, delete_remote: {path: "partner:/out/*.tmp", missing_ok: true}}
  - {name: g, rename: {from: "partner:/in/r.csv", to: r.old}}
  - name: alert
    when: failure
    retries: 2
    retry_delay: 0
    continue_on_error: true
    run: [logger, failed]
"""


# --- valid jobs ------------------------------------------------------------------------------


def test_a_valid_job_validates_with_exit_code_0(env: JobEnv) -> None:
    path = write(env, "valid.yaml", VALID)
    result = env.cli("validate", path)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{path}: job 'nightly-orders' is valid: 16 step(s), 1 server connection(s), "
        "1 database(s)\n"
    )
    doc = json.loads(env.cli("validate", path, "--json").stdout)
    assert doc["ok"] is True and doc["name"] == "nightly-orders"
    assert doc["connections"] == ["partner"] and doc["databases"] == ["warehouse"]
    assert doc["steps"][:3] == ["arrived", "fetch", "load"] and len(doc["steps"]) == 16


def test_the_loaded_model(env: JobEnv) -> None:
    loaded = load_job(write(env, "valid.yaml", VALID))
    job = loaded.job
    assert [s.action_name for s in job.steps[:3]] == ["wait_for", "receive", "load"]
    assert job.steps[1].action.after.move_to == "/out/archive/"  # type: ignore[attr-defined]
    assert job.steps[1].action.if_exists is None  # type: ignore[attr-defined]
    assert job.steps[-1].action == RunAction(argv=["logger", "failed"])  # the short form
    assert job.steps[-1].when == "failure" and job.steps[-1].retries == 2
    assert job.steps[0].when == "success" and job.steps[0].retry_delay == 10  # defaults
    # relative paths are relative to the job file: the database and the state file
    assert loaded.databases["warehouse"].url == f"sqlite:///{env.dir}/warehouse.db"
    assert job.state == Path("state.db")
    assert loaded.connections["partner"].timeout == 2


def test_the_model_refuses_duplicates_in_nested_steps() -> None:
    data = {
        "name": "j",
        "steps": [
            {"name": "loop", "foreach": {"items": [1], "steps": [{"name": "x", "run": ["a"]}]}},
            {"name": "x", "run": ["b"]},
        ],
    }
    with pytest.raises(ValueError, match="two steps are named 'x'"):
        JobFile.model_validate(data)


# --- problems at their exact positions --------------------------------------------------------

MANY = """\
name: broken
steps:
  - name: a
    run: [echo, hi]
    bogus: 1
  - name: b
    receive:
      from: x:/a
  - name: c
    when: sometimes
    run: [echo]
  - name: d
    run: [echo]
    mkdir_local: {path: x}
  - name: e
    send: {from: a, to: b, if_exists: clobber}
"""


def test_every_schema_problem_is_reported_at_its_position(env: JobEnv) -> None:
    path = write(env, "many.yaml", MANY)
    expected = [
        f"{path}:5:5: steps.0.bogus: unknown key; docs/jobs.md lists the allowed ones",
        f"{path}:7:5: steps.1.receive.to: required key is missing",
        f"{path}:10:5: steps.2.when: Input should be 'success', 'failure' or 'always'",
        f"{path}:12:5: steps.3: a step needs exactly one action (send, receive, "
        "delete_remote, delete_local, mkdir_remote, mkdir_local, rmdir_remote, rmdir_local, "
        "rename, list, sync, wait_for, load, export, run, foreach, encrypt, decrypt, sign, "
        "verify, compress, extract), this one has mkdir_local and run",
    ]
    found = problems(env, path)
    assert found[:4] == expected
    assert len(found) == 7
    assert found[4].startswith(f"{path}:16:28: steps.4.send.if_exists: Input should be 'fail'")
    assert found[5:] == [  # the places, checked with the schema (issue 12)
        f"{path}:8:13: steps.1.receive.from: no connection named 'x' (known: none)",
        f"{path}:16:25: steps.4.send.to: 'b' does not name a remote place: write "
        "CONNECTION:PATH (known: none) or a URL",
    ]
    assert errors_on_stderr(env, path) == found
    hint = env.cli("validate", path).stderr.splitlines()[-1]
    assert hint.startswith("ferryman: hint: docs/jobs.md describes every key")


def test_a_problem_inside_a_foreach_is_reported_at_its_position(env: JobEnv) -> None:
    path = write(
        env,
        "nested.yaml",
        """\
        name: nested
        steps:
          - name: loop
            foreach:
              items: [1, 2]
              steps:
                - name: inner
                  run: [echo]
                  retries: -1
        """,
    )
    assert problems(env, path) == [
        f"{path}:9:11: steps.0.foreach.steps.0.retries: Input should be greater than or equal to 0"
    ]


def test_a_duplicate_yaml_key(env: JobEnv) -> None:
    path = write(
        env,
        "dup.yaml",
        """\
        name: dup
        steps:
          - name: a
            run: [echo]
            run: [true]
        """,
    )
    (line,) = errors_on_stderr(env, path)
    assert line.startswith(f'{path}:5:5: while constructing a mapping found duplicate key "run"')
    assert problems(env, path) == [line]


def test_a_yaml_syntax_error(env: JobEnv) -> None:
    path = write(
        env,
        "syntax.yaml",
        """\
        name: syntax
        steps:
          - name: a
            run: [echo, "hi"
          - name: b
            run: [echo]
        """,
    )
    (line,) = errors_on_stderr(env, path)
    assert line.startswith(f"{path}:5:3: while parsing a flow sequence expected ',' or ']'")
    assert "fix the YAML syntax there" in env.cli("validate", path).stderr


def test_an_invalid_connection_setting(env: JobEnv) -> None:
    path = write(
        env,
        "conn.yaml",
        """\
        name: conn
        connections:
          partner:
            url: ftpes://u@127.0.0.1/
            password_env: PW
            timeout: -5
        steps:
          - name: a
            run: [echo]
        """,
    )
    assert problems(env, path) == [
        f"{path}:6:5: invalid connection 'partner': timeout: Input should be greater than 0"
    ]


def test_an_unknown_connection_setting(env: JobEnv) -> None:
    path = write(
        env,
        "conn.yaml",
        """\
        name: conn
        connections:
          partner:
            url: ftpes://u@127.0.0.1/
            time_out: 5
        steps:
          - name: a
            run: [echo]
        """,
    )
    (line,) = problems(env, path)
    assert line.startswith(f"{path}:5:5: invalid connection 'partner': time_out:")


def test_a_database_connection_takes_only_a_url(env: JobEnv) -> None:
    path = write(
        env,
        "db.yaml",
        """\
        name: db
        connections:
          warehouse: {url: "sqlite:///w.db", timeout: 3}
        steps:
          - name: a
            run: [echo]
        """,
    )
    assert problems(env, path) == [
        f"{path}:3:38: database connection 'warehouse' takes only url, not timeout"
    ]


def test_a_duplicate_step_name_is_refused(env: JobEnv) -> None:
    path = write(
        env,
        "dupname.yaml",
        """\
        name: dupname
        steps:
          - name: a
            run: [echo]
          - name: a
            run: [echo]
        """,
    )
    (line,) = problems(env, path)
    assert line.endswith("two steps are named 'a'; step names must be unique")


def test_a_duplicate_step_name_is_reported_at_the_second_name(env: JobEnv) -> None:
    path = write(
        env,
        "dupname.yaml",
        """\
        name: dupname
        steps:
          - name: a
            run: [echo]
          - name: a
            run: [echo]
        """,
    )
    assert problems(env, path) == [
        f"{path}:5:5: steps.1.name: two steps are named 'a'; step names must be unique"
    ]


def test_an_invalid_env_name_is_reported_at_its_entry(env: JobEnv) -> None:
    path = write(
        env,
        "env.yaml",
        """\
        name: envname
        env: [GOOD, bad-name]
        steps:
          - name: a
            run: [echo]
        """,
    )
    (line,) = problems(env, path)
    assert line.startswith(f"{path}:2:13: env.1: ")


def test_validate_lists_connection_problems_with_step_problems(env: JobEnv) -> None:
    path = write(
        env,
        "both.yaml",
        """\
        name: both
        connections:
          partner:
            url: ftpes://u@127.0.0.1/
            timeout: -5
          other:
            url: ftpes://u@127.0.0.1/
            retries: many
        steps:
          - name: a
            run: [echo]
            bogus: 1
        """,
    )
    found = problems(env, path)
    assert sorted(line.split(": ", 1)[0] for line in found) == [
        f"{path}:12:5",
        f"{path}:5:5",
        f"{path}:8:5",
    ]


def test_a_job_file_that_is_not_a_mapping(env: JobEnv) -> None:
    path = write(env, "list.yaml", "- name: a\n")
    assert errors_on_stderr(env, path) == [
        f"{path}: a job file is a mapping with name:, connections:, steps:"
    ]


def test_a_missing_job_file(env: JobEnv) -> None:
    missing = env.dir / "missing.yaml"
    (line,) = errors_on_stderr(env, missing)
    assert line.startswith(f"cannot read {missing}")


def test_required_top_level_keys(env: JobEnv) -> None:
    path = write(env, "empty.yaml", "description: nothing\n")
    found = problems(env, path)
    assert f"{path}:1:1: name: required key is missing" in found
    assert f"{path}:1:1: steps: required key is missing" in found


def test_load_job_raises_config_error(env: JobEnv) -> None:
    with pytest.raises(ConfigError) as info:
        load_job(write(env, "many.yaml", MANY))
    assert len(info.value.message.splitlines()) == 7
    assert info.value.exit_code == ExitCode.USAGE


# --- the schema ------------------------------------------------------------------------------


def test_schema_command_prints_the_json_schema(env: JobEnv) -> None:
    result = env.cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert set(schema["required"]) == {"name", "steps"}
    assert {"name", "connections", "variables", "env", "state", "steps"} <= set(
        schema["properties"]
    )
    step = schema["$defs"]["Step"]["properties"]
    for action in ("send", "receive", "list", "wait_for", "load", "export", "run", "foreach"):
        assert action in step, action
    assert step["when"]["enum"] == ["success", "failure", "always"]
    repo_copy = Path(__file__).parent.parent / "docs/job.schema.json"
    assert json.loads(repo_copy.read_text(encoding="utf-8")) == schema
