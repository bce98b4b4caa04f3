"""Job files cannot exhaust the machine (issue 13): every limit of ``ferryman.limits``
ends in one ConfigError (exit 2), at file:line:column where ``validate`` can see it, early.

Nothing here may really allocate gigabytes: the hostile cases run in-process under a cap on
the address space (``memory_cap``), so a limit that failed to trigger shows as a MemoryError
("out of memory") and a failed assertion, not as a swapping machine; and each is timed.
"""

from __future__ import annotations

import resource
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from ferryman import limits
from ferryman.cli import cli
from ferryman.errors import ConfigError, ExitCode
from ferryman.jobs.expressions import Expressions
from ferryman.jobs.loader import load_job
from ferryman.jobs.model import JobFile
from ferryman.yamlfile import load_yaml

pytestmark = pytest.mark.timeout(60)

_HEADROOM = 1024 * 1024 * 1024  #: what a test may allocate beyond the process's size now


def _address_space() -> int | None:
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return None


@pytest.fixture
def memory_cap() -> Iterator[None]:
    """The process may grow by 1 GiB at most while the test runs (soft RLIMIT_AS)."""
    size = _address_space()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if size is None:
        yield
        return
    cap = size + _HEADROOM
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def refused(text: str, context: dict[str, object] | None = None) -> str:
    """The message of the ConfigError rendering ``text`` raises, within seconds (without the
    limit: minutes, or gigabytes)."""
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        Expressions().render(text, context or {}, "variables.x")
    assert time.monotonic() - started < 5.0
    assert caught.value.exit_code == ExitCode.USAGE
    message = caught.value.message
    assert "\n" not in message
    assert "out of memory" not in message  # the cap, not the limit, stopped it
    return message


# --- expressions, when they run -------------------------------------------------------------


@pytest.mark.usefixtures("memory_cap")
@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("{{ 'a' * 3000000000 }}", "3,000,000,000 characters or items"),
        ("x{{ 'a' * 3000000000 }}", "3,000,000,000 characters or items"),
        ("{{ [0] * 3000000000 }}", "characters or items or more; the limit is 1,048,576"),
        ("{{ 3000000000 * 'ab' }}", "6,000,000,000 characters"),
        ("{{ 2 ** (2 ** 24) }}", "more than 4300 digits"),
        ("{{ (10 ** 4000) * (10 ** 4000) }}", "more than 4300 digits"),
        ("{{ 'a' * 1000000 + 'b' * 1000000 }}", "2,000,000 characters"),
        ("{{ 'a'|center(3000000000) }}", "center: 3,000,000,000 is over the limit"),
        ("{{ 'a'.ljust(3000000000) }}", "str.ljust: 3,000,000,000 is over the limit"),
        ("{{ '%03000000000d' % 1 }}", "a width over the limit"),
        ("{{ '%*d' % (3000000000, 1) }}", "3,000,000,000 is over the limit"),
        ("{{ '{:>3000000000}'.format(1) }}", "str.format: a width over the limit"),
        ("{{ '{:{}}'.format(1, 3000000000) }}", "3,000,000,000 is over the limit"),
        ("{{ '%03000000000d'|format(1) }}", "format: a width over the limit"),
        ("{{ range(100000)|join('a' * 1000) }}", "the limit is 1,048,576"),
        ("{{ 'abc'.replace('', 'x' * 1000000) }}", "the limit is 1,048,576"),
        ("{{ [1]|batch(3000000000, 0)|list }}", "batch: 3,000,000,000 is over the limit"),
        (
            "{% set ns = namespace(x='ab') %}{% for i in range(40) %}"
            "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x|length }}",
            "joined string would be",
        ),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "loops would run more than 100,000 iterations in all",
        ),
        (
            "{% for i in range(60000) %}{% endfor %}{% for i in range(60000) %}{% endfor %}",
            "loops would run more than 100,000 iterations in all",
        ),
        ("{% for i in range(100000) %}{{ 'a' * 100 }}{% endfor %}", "rendered text would be"),
    ],
)
def test_an_expression_past_a_limit_is_refused_early(text: str, wanted: str) -> None:
    message = refused(text)
    assert message.startswith("variables.x: expression ")
    assert wanted in message


@pytest.mark.usefixtures("memory_cap")
@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("{{ 1/0 }}", "failed: ZeroDivisionError: division by zero"),
        ("{{ 2.0 ** 100000 }}", "failed: OverflowError"),
        ("{{ 9" + "9" * 5000 + " }}", "failed: ValueError: Exceeds the limit (4300 digits)"),
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "calls itself too deeply"),
        ("{{ range(100001)|list }}", "failed: OverflowError"),
    ],
)
def test_what_python_raises_in_an_expression_is_one_line_not_a_traceback(
    text: str, wanted: str
) -> None:
    assert wanted in refused(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("{{ 'x' * 3 }}", "xxx"),
        ("{{ [1] * 3 }}", [1, 1, 1]),
        ("{{ 2 ** 100 }}", 2**100),
        ("{{ 2 ** 14284 }}", 2**14284),  # 4300 digits: Python's own limit
        ("{{ 'a' * 1048576 }}", "a" * 1048576),
        ("{{ '{}_{:05d}'.format(20261204, 7) }}", "20261204_00007"),
        ("{{ 'f_20261204_%s_%05d' % ('a', 3) }}", "f_20261204_a_00003"),
        ("{{ '%s'|format(20261204) }}", "20261204"),
        ("{{ 'a1234567b'.center(11) }}", " a1234567b "),
        ("{{ ['a', 'b']|join(';') }}", "a;b"),
        ("{{ 'ab' ~ 'cd' }}", "abcd"),
        ("{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}", "1/3 2/3 3/3 "),
        ("{% for i in [] %}x{% else %}none{% endfor %}", "none"),
        ("{% for i in range(100000) %}{% endfor %}done", "done"),
    ],
)
def test_values_within_the_limits_are_what_they_always_were(text: str, value: object) -> None:
    assert Expressions().render(text, {}, "v") == value


def test_the_loop_budget_is_per_rendering() -> None:
    expressions = Expressions()
    text = "{% for i in range(60000) %}{% endfor %}ok"
    assert [expressions.render(text, {}, "v") for _ in range(3)] == ["ok", "ok", "ok"]


def test_the_integer_limit_is_python_s_own() -> None:
    assert limits.MAX_INT_BITS == 14285
    assert len(str(2 ** (limits.MAX_INT_BITS - 1))) == limits.MAX_INT_DIGITS


# --- YAML ------------------------------------------------------------------------------------


def yaml_refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert time.monotonic() - started < 5.0
    return caught.value.message.removeprefix(f"{path}:")


def laughs(levels: int) -> str:
    """A "billion laughs": each level nine aliases of the one before."""
    text = "variables:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*l{level - 1}"] * 9)
        text += f"  l{level}: &l{level} [{aliases}]\n"
    return text


@pytest.mark.usefixtures("memory_cap")
def test_a_billion_laughs_is_refused_while_it_is_read(tmp_path: Path) -> None:
    assert yaml_refused(tmp_path, laughs(9)) == ("7:12: more than 100000 values (aliases expanded)")


def test_a_few_laughs_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(laughs(3), encoding="utf-8")
    assert len(load_yaml(path)["variables"]["l3"][0][0]) == 9


def test_anchors_aliases_and_merge_keys_still_load(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("a: &a {x: 1}\nb: *a\nc: {<<: *a, y: 2}\n", encoding="utf-8")
    assert load_yaml(path) == {"a": {"x": 1}, "b": {"x": 1}, "c": {"x": 1, "y": 2}}


def test_more_aliases_than_the_limit_are_refused(tmp_path: Path) -> None:
    many = ", ".join(["*a"] * limits.MAX_YAML_ALIASES)
    path = tmp_path / "job.yaml"
    path.write_text(f"a: &a 1\nb: [{many}]\n", encoding="utf-8")
    assert len(load_yaml(path)["b"]) == limits.MAX_YAML_ALIASES
    message = yaml_refused(tmp_path, f"a: &a 1\nb: [{many}, *a]\n")
    assert message == f"2:{4 * 1000 + 5}: more than 1000 aliases"


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    assert yaml_refused(tmp_path, "a: &a [1, *a]\n") == "1:11: alias *a is inside its own anchor"


def test_deep_nesting_is_refused_without_a_recursion_error(tmp_path: Path) -> None:
    assert yaml_refused(tmp_path, "x: " + "[" * 50000 + "]" * 50000 + "\n") == (
        "1:103: nested deeper than 100 levels (aliases expanded)"
    )


def test_the_depth_limit_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("x: " + "[" * 99 + "]" * 99 + "\n", encoding="utf-8")  # 100 levels
    value, depth = load_yaml(path)["x"], 2  # the mapping, then the lists
    while value:
        value, depth = value[0], depth + 1
    assert depth == limits.MAX_YAML_DEPTH
    assert "nested deeper than 100" in yaml_refused(tmp_path, "x: " + "[" * 100 + "]" * 100)


def test_depth_through_an_alias_counts(tmp_path: Path) -> None:
    text = "a: &a " + "[" * 60 + "1" + "]" * 60 + "\nb: " + "[" * 50 + "*a" + "]" * 50 + "\n"
    assert yaml_refused(tmp_path, text) == "2:54: nested deeper than 100 levels (aliases expanded)"


def test_a_file_over_the_size_limit_is_refused_unparsed(tmp_path: Path) -> None:
    text = "name: j\n# " + "x" * limits.MAX_JOB_FILE_BYTES + "\n"
    message = yaml_refused(tmp_path, text)
    assert message == " larger than 10 MiB; not a job or connections file"


def test_an_endless_file_is_read_no_further_than_the_limit() -> None:
    with pytest.raises(ConfigError, match="larger than 10 MiB"):
        load_yaml(Path("/dev/zero"))


# --- validate and run: positions, exit codes --------------------------------------------------


def write_job(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def validate_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_job(path)
    return [line.removeprefix(f"{path}:") for line in caught.value.message.splitlines()]


@pytest.mark.usefixtures("memory_cap")
@pytest.mark.parametrize(
    ("value", "wanted"),
    [
        (
            "\"{{ 'a' * 3000000000 }}\"",
            "3:6: variables.x: expression \"{{ 'a' * 3000000000 }}\": the value would be "
            "3,000,000,000 characters or items or more; the limit is 1,048,576",
        ),
        (
            '"{{ 2**(2**24) }}"',
            "3:6: variables.x: expression '{{ 2**(2**24) }}': the integer would have more "
            "than 4300 digits",
        ),
        (
            '"{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}'
            '{% endfor %}{% endfor %}"',
            "3:6: variables.x: expression '{% for i in range(100000) %}{% for j in "
            "range(100000) %}{{ i }}{% endfor %}{% endfor %}': its loops would run "
            "10,000,100,000 iterations or more; the limit is 100,000 in all",
        ),
    ],
)
def test_validate_finds_a_constant_past_a_limit_at_its_position(
    tmp_path: Path, value: str, wanted: str
) -> None:
    path = write_job(
        tmp_path,
        f"""\
        name: j
        variables:
          x: {value}
        steps:
          - name: s
            run: [echo, "{{{{ x }}}}"]
        """,
    )
    assert validate_problems(path) == [wanted]


def test_validate_reports_an_integer_literal_too_big_to_compile(tmp_path: Path) -> None:
    path = write_job(
        tmp_path,
        "name: j\nvariables:\n  x: '{{ 1" + "0" * 5000 + " }}'\nsteps: [{name: s, run: [echo]}]\n",
    )
    [problem] = validate_problems(path)
    assert problem.startswith("3:6: variables.x: expression '{{ 1000")
    assert "does not compile (ValueError: Exceeds the limit (4300 digits)" in problem


def nested_foreach(depth: int) -> str:
    text, indent = "name: j\nsteps:\n", ""
    for level in range(depth):
        text += f"{indent}- name: f{level}\n{indent}  foreach:\n"
        text += f"{indent}    items: [1]\n{indent}    steps:\n"
        indent += "    "
    return text + f"{indent}- name: leaf\n{indent}  run: [echo, hi]\n"


def test_foreach_nesting_is_limited(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(nested_foreach(limits.MAX_FOREACH_DEPTH), encoding="utf-8")
    assert load_job(path).job.steps[0].name == "f0"
    path.write_text(nested_foreach(limits.MAX_FOREACH_DEPTH + 1), encoding="utf-8")
    loc = "steps.0" + ".foreach.steps.0" * 16 + ".foreach"
    assert validate_problems(path) == [
        f"68:67: {loc}: foreach nested more than 16 deep (docs/jobs.md#limits)"
    ]


def test_300_nested_foreach_is_one_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(nested_foreach(300), encoding="utf-8")
    [problem] = validate_problems(path)
    assert "nested deeper than 100 levels" in problem


@pytest.mark.usefixtures("memory_cap")
@pytest.mark.parametrize("command", ["validate", "run"])
def test_the_commands_exit_2_with_the_position(tmp_path: Path, command: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        laughs(9).replace("variables:", "name: j\nsteps: [{name: s, run: [echo]}]\nvariables:"),
        "utf-8",
    )
    result = CliRunner().invoke(cli, [command, str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:9:12: more than 100000 values (aliases expanded)" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("memory_cap")
def test_run_refuses_a_value_only_the_run_knows(tmp_path: Path) -> None:
    path = write_job(
        tmp_path,
        """\
        name: j
        state: state.db
        variables:
          n: "3"
          x: "{{ 'a' * (n|int) }}"
        steps:
          - name: s
            run: [echo, "{{ x }}"]
        """,
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(path)]).exit_code == 0
    started = time.monotonic()
    result = runner.invoke(cli, ["run", str(path), "--var", "n=3000000000"])
    assert time.monotonic() - started < 5
    assert result.exit_code == 2, result.output
    assert (
        "variables.x: expression \"'a' * (n|int)\": the value would be 3,000,000,000 "
        "characters or items or more" in result.output
    )
    assert "Traceback" not in result.output


def test_cheap_filters_stay_cheap_in_a_loop() -> None:
    """The checks cost what building the value cost: ``big|length`` is not a walk of big."""
    text = (
        "{% set big = range(100000)|list %}"
        "{% for i in range(100000) %}{% if big|length > 5 %}{% endif %}{% endfor %}ok"
    )
    started = time.monotonic()
    assert Expressions().render(text, {}, "v") == "ok"
    assert time.monotonic() - started < 10.0  # 0.1 s here; walking big each time: hours


def test_an_expression_nested_too_deeply_is_one_problem(tmp_path: Path) -> None:
    deep = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    path = write_job(
        tmp_path, f"name: j\nvariables:\n  x: '{deep}'\nsteps: [{{name: s, run: [echo]}}]\n"
    )
    [problem] = validate_problems(path)
    assert problem.startswith("3:6: variables.x: expression '{{ ((((")
    assert problem.endswith(
        "...' does not compile (RecursionError: maximum recursion depth exceeded)"
    )


def test_the_model_refuses_deep_foreach_too() -> None:
    """A job built in Python, not read from a file, meets the same limit."""

    def nested(depth: int) -> dict[str, object]:
        steps: list[dict[str, object]] = [{"name": "leaf", "run": ["echo"]}]
        for level in range(depth):
            steps = [{"name": f"f{level}", "foreach": {"items": [1], "steps": steps}}]
        return {"name": "j", "steps": steps}

    assert JobFile.model_validate(nested(limits.MAX_FOREACH_DEPTH)).name == "j"
    with pytest.raises(ValidationError, match="foreach nested more than 16 deep"):
        JobFile.model_validate(nested(limits.MAX_FOREACH_DEPTH + 1))


def test_a_problem_in_a_merged_key_is_reported_at_the_mapping(tmp_path: Path) -> None:
    """Keys merged in with ``<<: *alias`` have no position of their own (found by the fuzzer:
    once a TypeError or KeyError traceback)."""
    path = write_job(tmp_path, "b: &b {name: s, x: 1}\nname: j\nsteps: [{<<: *b, run: [echo]}]\n")
    assert validate_problems(path) == [
        "3:9: steps.0.x: unknown key; docs/jobs.md lists the allowed ones",
        "1:1: b: unknown key; docs/jobs.md lists the allowed ones",
    ]


@pytest.mark.usefixtures("memory_cap")
def test_a_limit_only_the_run_can_see_names_its_place_in_the_job_file(tmp_path: Path) -> None:
    """A value known only at run time (a --var, an earlier step's result): the run stops with
    one line that still says where in the job file the expression is."""
    job = tmp_path / "job.yaml"
    job.write_text(
        textwrap.dedent(
            """\
            name: runtime-limits
            state: state.db
            variables:
              n: "1"
              big: "{{ 'a' * (n | int) }}"
            steps:
              - name: echo
                run: {argv: [echo, "{{ 'b' * (n | int) }}"]}
            """
        ),
        encoding="utf-8",
    )
    assert CliRunner().invoke(cli, ["validate", str(job)]).exit_code == 0
    result = CliRunner().invoke(cli, ["run", str(job), "--var", "n=3000000000"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "Traceback" not in result.output + result.stderr
    assert f"{job}:5:3: variables.big" in result.stderr, result.stderr
