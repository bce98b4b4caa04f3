"""``{{ expressions }}`` in jobs: variables, ``--var``, the env allow-list, dates, typed
whole values, undefined names and the sandbox, through real runs (``run`` steps echo what
they were given) and through :class:`~ferryman.jobs.expressions.Expressions` itself."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ferryman.errors import ConfigError, ExitCode
from ferryman.jobs.expressions import Expressions, is_template
from ferryman.jobs.runner import StepRecord
from ferryman.state import StateStore

from .test_jobs_support import JobEnv, make_env


def unplaced(message: str) -> str:
    """An error of the run without the job file's FILE:LINE:COLUMN in front (which it must
    have: the run names where in the job file the failing expression is)."""
    _place, sep, rest = message.partition(".yaml:")
    assert sep and re.match(r"\d+:\d+: ", rest), message
    return rest.split(": ", 1)[1]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobEnv]:
    yield from make_env(tmp_path, monkeypatch)


def stdout_of(report_steps: list[StepRecord], name: str) -> str:
    step = next(s for s in report_steps if s.name == name)
    assert step.status == "succeeded", step.error
    return str(step.result["stdout"])


# --- variables and --var ---------------------------------------------------------------------

CHAIN = """\
variables:
  base: orders
  day: "2026-11-23"
  file: "{{ base }}_{{ day }}.csv"
  path: "in/{{ vars.file }}"
steps:
  - name: show
    run: [$PY, tool.py, echo, "{{ path }}", "{{ job.name }}", "{{ job.dir }}"]
"""


def test_variables_use_the_variables_before_them(env: JobEnv) -> None:
    report = env.run(env.write(CHAIN, name="chain"))
    assert report.exit_code == 0
    assert stdout_of(report.steps, "show") == f"in/orders_2026-11-23.csv chain {env.dir}\n"


def test_a_variable_cannot_use_a_later_one(env: JobEnv) -> None:
    path = env.write(
        """\
        variables:
          first: "{{ second }}-x"
          second: b
        steps:
          - name: a
            run: [$PY, tool.py, echo]
        """
    )
    with pytest.raises(ConfigError) as info:  # found when the job is loaded (issue 12)
        env.run(path)
    assert info.value.message.endswith(
        ": variables.first: variable 'second' comes later; a variable uses only the ones before it"
    )
    assert env.history() == []  # the run never started


def test_var_overrides_a_variable_and_what_is_derived_from_it(env: JobEnv) -> None:
    path = env.write(CHAIN, name="chain")
    result = env.cli("run", path, "--var", "day=2027-01-02", "--var", "base=returns", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["steps"][0]["result"]["stdout"].startswith("in/returns_2027-01-02.csv chain")
    with StateStore(env.state) as store:
        stored = store.run_detail(doc["run_id"]).variables
    assert stored["day"] == "2027-01-02" and stored["path"] == "in/returns_2027-01-02.csv"


def test_an_unknown_var_is_a_usage_error(env: JobEnv) -> None:
    path = env.write(CHAIN, name="chain")
    result = env.cli("run", path, "--var", "dya=2027-01-02")
    assert result.exit_code == ExitCode.USAGE
    assert "ferryman: error: --var dya: the job has no such variable" in result.stderr
    assert "ferryman: hint: its variables: base, day, file, path" in result.stderr
    assert env.history("chain") == []


def test_a_var_without_a_value_is_a_usage_error(env: JobEnv) -> None:
    result = env.cli("run", env.write(CHAIN), "--var", "day")
    assert result.exit_code == ExitCode.USAGE
    assert "--var 'day' is not NAME=VALUE" in result.stderr


# --- the environment -------------------------------------------------------------------------

ENV_JOB = """\
env: [FM_ALLOWED, FM_UNSET]
steps:
  - name: allowed
    run: [$PY, tool.py, echo, "{{ env.FM_ALLOWED }}"]
  - name: hidden
    continue_on_error: true
    run: [$PY, tool.py, echo, "{{ env.FM_HIDDEN }}"]
  - name: unset
    continue_on_error: true
    run: [$PY, tool.py, echo, "{{ env.FM_UNSET }}"]
  - name: home
    continue_on_error: true
    run: [$PY, tool.py, echo, "{{ env.HOME }}"]
"""
ENV_LISTED_JOB = """\
env: [FM_ALLOWED, FM_UNSET]
steps:
  - name: allowed
    run: [$PY, tool.py, echo, "{{ env.FM_ALLOWED }}"]
  - name: unset
    continue_on_error: true
    run: [$PY, tool.py, echo, "{{ env.FM_UNSET }}"]
"""


def test_only_allow_listed_environment_variables_are_visible(
    env: JobEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FM_ALLOWED", "visible-value")
    monkeypatch.setenv("FM_HIDDEN", "hidden-value")
    monkeypatch.delenv("FM_UNSET", raising=False)
    # names not under env: are refused when the job is loaded (issue 12), before any step
    with pytest.raises(ConfigError) as info:
        env.run(env.write(ENV_JOB))
    refused = info.value.message.splitlines()
    assert len(refused) == 2
    for line, var in zip(refused, ("FM_HIDDEN", "HOME"), strict=True):
        assert f"env.{var} is not allow-listed: add {var} under env:" in line
    # an allow-listed one that is not set fails its step when it runs
    report = env.run(env.write(ENV_LISTED_JOB))
    steps = {s.name: s for s in report.steps}
    assert stdout_of(report.steps, "allowed") == "visible-value\n"
    for name, var in (("unset", "FM_UNSET"),):
        step = steps[name]
        assert step.status == "failed" and step.handled
        assert isinstance(step.error, ConfigError)
        assert unplaced(step.error.message) == (
            f"step {name}.argv[3]: expression 'env.{var}' failed: "
            f"'dict object' has no attribute '{var}'"
        )
        assert "allow-listed in env:" in (step.error.hint or "")
    assert "hidden-value" not in json.dumps(report.to_dict())


def test_a_variable_reading_an_unlisted_env_var_stops_the_job(
    env: JobEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FM_HIDDEN", "hidden-value")
    path = env.write(
        """\
        variables:
          secret: "{{ env.FM_HIDDEN }}"
        steps:
          - name: a
            run: [$PY, tool.py, echo, "{{ secret }}"]
        """
    )
    result = env.cli("run", path)
    assert result.exit_code == ExitCode.USAGE
    assert "variables.secret: env.FM_HIDDEN is not allow-listed" in result.stderr
    assert "hidden-value" not in result.output


# --- dates, typed values ---------------------------------------------------------------------


def test_now_today_and_timedelta(env: JobEnv) -> None:
    path = env.write(
        """\
        variables:
          stamp: "{{ now().strftime('%Y%m%d') }}"
          yesterday: "{{ (today() - timedelta(days=1)).isoformat() }}"
          offset: "{{ now('Asia/Kolkata').strftime('%z') }}"
          utc: "{{ now().strftime('%z') }}"
          hours: "{{ (timedelta(hours=36).total_seconds() / 3600) | int }}"
        steps:
          - name: show
            run: [$PY, tool.py, echo, "{{ stamp }}", "{{ yesterday }}", "{{ offset }}", "{{ utc }}"]
        """
    )
    before = datetime.now(UTC)
    report = env.run(path)
    after = datetime.now(UTC)
    words = stdout_of(report.steps, "show").split()
    assert words[0] in {before.strftime("%Y%m%d"), after.strftime("%Y%m%d")}
    assert words[1] in {
        (before.date() - timedelta(days=1)).isoformat(),
        (after.date() - timedelta(days=1)).isoformat(),
    }
    assert words[2] == datetime.now(ZoneInfo("Asia/Kolkata")).strftime("%z") == "+0530"
    assert words[3] == "+0000"
    with StateStore(env.state) as store:
        assert store.run_detail(report.run_id or 0).variables["hours"] == 36


def test_a_whole_value_expression_keeps_its_type(env: JobEnv) -> None:
    path = env.write(
        """\
        variables:
          regions: "{{ ['north', 'south', 'east'] }}"
          count: "{{ regions | length }}"
          text: "count={{ regions | length }}"
          spaced: "  {{ regions[0] }}  "
        steps:
          - name: each
            foreach:
              items: "{{ regions }}"
              steps:
                - name: say
                  run: [$PY, tool.py, echo, "{{ item }}"]
          - name: typed
            if: "{{ count == 3 and text == 'count=3' and spaced == 'north' }}"
            run: [$PY, tool.py, echo, ok]
        """
    )
    report = env.run(path)
    assert report.exit_code == 0, report.error
    each = report.steps[0].result
    assert each["count"] == 3
    assert [i["item"] for i in each["iterations"]] == ["north", "south", "east"]
    assert [i["steps"]["say"]["stdout"] for i in each["iterations"]] == [
        "north\n",
        "south\n",
        "east\n",
    ]
    assert report.steps[1].status == "succeeded"
    with StateStore(env.state) as store:
        stored = store.run_detail(report.run_id or 0).variables
    assert stored == {"count": 3, "text": "count=3", "spaced": "north"}  # lists stay out


def test_a_number_in_a_string_setting(env: JobEnv) -> None:
    path = env.write(
        """\
        steps:
          - name: notify
            run: [$PY, tool.py, echo, "{{ job.run_id }}"]
          - name: each
            foreach:
              items: [7, 8]
              steps:
                - name: say
                  run: [$PY, tool.py, echo, "{{ item }}"]
        """
    )
    report = env.run(path)
    assert report.exit_code == 0, report.error
    assert stdout_of(report.steps, "notify") == f"{report.run_id}\n"


# --- undefined names and the sandbox -----------------------------------------------------------


# Unknown names, steps and variables and syntax errors are found when the job is loaded
# (tests/test_jobs_validate.py); these are what only the run can find.
@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("{{ job.name.nosuch }}", "'str object' has no attribute 'nosuch'"),
        ("a-{{ job.name.nosuch }}-b", "'str object' has no attribute 'nosuch'"),  # never ''
        ("{{ steps[job.name].files }}", "'dict object' has no attribute 'job'"),
        ("{{ vars[job.name] }}", "'dict object' has no attribute 'job'"),
    ],
)
def test_undefined_names_fail_the_step_and_are_not_retried(
    env: JobEnv, expression: str, message: str
) -> None:
    path = env.write(
        """\
        steps:
          - name: bad
            retries: 3
            retry_delay: 0
            run: [$PY, tool.py, echo, "$EXPR"]
          - name: after
            run: [$PY, tool.py, echo, never]
        """,
        EXPR=expression,
    )
    report = env.run(path)
    bad = report.steps[0]
    assert bad.status == "failed" and bad.attempts == 1
    assert isinstance(bad.error, ConfigError)
    assert unplaced(bad.error.message).startswith("step bad.argv[3]: expression ")
    assert bad.error.message.endswith(f"failed: {message}")
    assert report.steps[1].status == "skipped"
    assert report.exit_code == ExitCode.USAGE and report.status == "failed"


ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ now.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ job.__class__.__base__ }}",
    "{{ now().__reduce_ex__(2) }}",
    "x{{ timedelta.__subclasses__() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
]


@pytest.mark.parametrize("expression", ESCAPES)
def test_the_sandbox_refuses_python_internals(env: JobEnv, expression: str) -> None:
    path = env.write(
        """\
        variables:
          v: "$EXPR"
        steps:
          - name: a
            run: [$PY, tool.py, echo, "{{ v }}"]
        """,
        EXPR=expression,
    )
    with pytest.raises(ConfigError) as info:
        env.run(path)
    message = info.value.message
    assert unplaced(message).startswith("variables.v: expression ")
    assert "is unsafe" in message, message
    result = env.cli("run", path)
    assert result.exit_code == ExitCode.USAGE
    assert "is unsafe" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("expression", ESCAPES[:3])
def test_the_sandbox_refuses_internals_in_a_step(env: JobEnv, expression: str) -> None:
    path = env.write(
        """\
        steps:
          - name: escape
            retries: 2
            retry_delay: 0
            run: [$PY, tool.py, echo, "$EXPR"]
        """,
        EXPR=expression,
    )
    report = env.run(path)
    step = report.steps[0]
    assert step.status == "failed" and step.attempts == 1
    assert isinstance(step.error, ConfigError) and "is unsafe" in step.error.message
    assert report.exit_code == ExitCode.USAGE


# --- Expressions itself ------------------------------------------------------------------------


def test_render_walks_lists_and_mappings() -> None:
    expressions = Expressions()
    scope = {"n": 2, "files": ["a", "b"], "vars": {"x": "y"}}
    rendered = expressions.render(
        {"a": "{{ n * 2 }}", "b": ["{{ files }}", "x-{{ n }}", "plain", 5], "c": None},
        scope,
        "here",
    )
    assert rendered == {"a": 4, "b": [["a", "b"], "x-2", "plain", 5], "c": None}
    with pytest.raises(ConfigError) as info:
        expressions.render({"k": ["ok", "{{ missing }}"]}, scope, "step s")
    assert info.value.message == "step s.k[1]: expression 'missing' failed: 'missing' is undefined"


def test_truth_takes_braces_or_a_bare_expression() -> None:
    expressions = Expressions()
    scope = {"steps": {"fetch": {"count": 2}}}
    assert expressions.truth("{{ steps.fetch.count > 1 }}", scope, "if") is True
    assert expressions.truth("steps.fetch.count > 5", scope, "if") is False
    assert expressions.truth(" {{ [] }} ", scope, "if") is False
    with pytest.raises(ConfigError):
        expressions.truth("{{ steps.nope.count }}", scope, "if")


def test_is_template() -> None:
    assert is_template("a {{ b }}") and is_template("{% if x %}y{% endif %}")
    assert not is_template("plain") and not is_template(5) and not is_template(None)
