"""Fuzzing the job loader (issue 13): whatever a job file holds, ``ferryman validate`` (and a
dry run) ends in a documented exit code -- 0, or 2 for a job file's mistakes -- and readable
lines: the verdict, or one ``ferryman: error:`` line per problem and a hint. Never a
traceback, never a hang, never gigabytes (the address space is capped while they run).

Bounded in time: few examples of small inputs, no deadline per example (the first one
imports and compiles more than the others).
"""

from __future__ import annotations

import json
import resource
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ferryman.cli import cli
from ferryman.errors import ConfigError
from ferryman.jobs.expressions import Expressions

_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,  # no .hypothesis directory in the work tree
)


@contextmanager
def memory_cap() -> Iterator[None]:
    """The process may grow by 1 GiB at most meanwhile (soft RLIMIT_AS)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii").splitlines()
    except OSError:  # not Linux: no cap
        yield
        return
    size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + 1024**3 if hard == resource.RLIM_INFINITY else min(size + 1024**3, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def check_outcome(args: list[str], text: str) -> None:
    """``ferryman ARGS JOB`` on a job file holding ``text``: exit 0 or 2, readable lines."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "job.yaml"
        path.write_text(text, encoding="utf-8")
        with memory_cap():
            result = CliRunner().invoke(cli, [*args, str(path)])
    output = result.output
    assert "Traceback" not in output
    assert result.exit_code in (0, 2), (result.exit_code, output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    lines = output.splitlines()
    assert lines, "no verdict at all"
    if result.exit_code == 2 and args[0] == "run":  # the run's report, then the error
        assert any(line.startswith("ferryman: error: ") for line in lines), output
    elif result.exit_code == 2:
        assert lines[0].startswith("ferryman: error: "), output
        for line in lines:
            assert line.startswith(("ferryman: error: ", "ferryman: hint: ")), output
            assert len(line) < 2000, line[:200]
    elif args[0] == "validate":
        assert lines == [lines[0]] and " is valid: " in lines[0], output


# --- the raw text: YAML syntax, anchors, aliases, nesting -------------------------------------

_YAML_TOKENS = [
    "name: j\n", "steps:\n", "  - name: s\n", "    run: [echo, hi]\n", "variables:\n",
    "  x: ", "&a ", "*a", "*b", "&b ", "<<: ", "[", "]", "{", "}", ", ", ": ", "- ", "\n",
    "  ", "'", '"', "{{ ", " }}", "{% for i in range(9) %}", "{% endfor %}", "x", "1",
    "99999999999999999999", "!!str ", "!!binary ", "? ", "|\n", ">\n", "#", "---\n", "...\n",
    "\t", "%YAML 1.2\n", "\\", "é", "\x00", "\x07", "\ufeff",
]  # fmt: skip

yaml_texts = st.lists(st.sampled_from(_YAML_TOKENS), max_size=40).map("".join)


@_SETTINGS
@given(yaml_texts)
@example("&a name: j\n&a name: j\n")  # a reused anchor: once a warning on stderr
@example("<<: #name: j\n|\n\n")  # once a NotImplementedError inside ruamel.yaml
@example('name: j\nconnections: {a: "\\ud800\\udc00"}\n')  # once unprintable
@example("<<: #name: j\n    run: [echo, hi]\n")  # keys merged in have no position
@example("b: &b {name: s, x: 1}\nname: j\nsteps: [{<<: *b, run: [echo]}]\n")
def test_validate_of_any_text_is_a_verdict_or_readable_errors(text: str) -> None:
    check_outcome(["validate"], text)


@_SETTINGS
@given(st.text(max_size=200))
def test_validate_of_random_unicode_is_a_verdict_or_readable_errors(text: str) -> None:
    check_outcome(["validate"], text)


# --- job-shaped files: keys the loader knows, values with expressions --------------------------

_EXPRESSION_TOKENS = [
    "x", "vars.x", "steps.s.files", "env.HOME", "job.name", "item", "now()", "range(9)",
    "'a'", "[1, 2]", "1", "2", "3000000000", "2 ** 24", "10 ** 5000", "(", ")", " * ", " ** ",
    " + ", " % ", " ~ ", " / ", "|join(',')", "|center(3000000000)", "|int", "|list",
    ".format(1)", ".__class__", "|length", " if x else ", "not ", "[0]",
]  # fmt: skip

expressions = st.lists(st.sampled_from(_EXPRESSION_TOKENS), min_size=1, max_size=8).map("".join)
templates = st.one_of(
    expressions.map(lambda e: "{{ " + e + " }}"),
    st.tuples(expressions, expressions).map(
        lambda p: "{% for i in " + p[0] + " %}{{ " + p[1] + " }}{% endfor %}"
    ),
    st.tuples(st.text(max_size=5), expressions).map(lambda p: p[0] + "{{ " + p[1] + " }}"),
)
scalars = st.one_of(
    templates, st.text(max_size=10), st.integers(), st.booleans(), st.none(), st.floats()
)
_KEYS = [
    "name", "steps", "variables", "env", "connections", "url", "run", "argv", "foreach",
    "items", "as", "send", "receive", "from", "to", "if", "when", "retries", "list", "path",
    "load", "into", "files", "state", "x", "y",
]  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4),
    ),
    max_leaves=20,
)
jobs = st.fixed_dictionaries(
    {
        "name": st.one_of(st.just("j"), scalars),
        "steps": st.one_of(
            st.just([{"name": "s", "run": ["echo", "{{ x }}"]}]),
            st.lists(
                st.dictionaries(st.sampled_from(_KEYS), values, min_size=1, max_size=4),
                max_size=3,
            ),
        ),
    },
    optional={
        "variables": st.dictionaries(st.sampled_from(["x", "y", "z"]), values, max_size=3),
        "env": st.lists(st.sampled_from(["HOME", "PATH", "1x", "A B"]), max_size=2),
        "connections": st.dictionaries(st.sampled_from(["a", "b"]), values, max_size=2),
    },
)


@_SETTINGS
@given(jobs)
@example({"name": "j", "steps": [{"name": "s", "run": ["echo", "{{ 'a'.__class__ ~ x }}"]}]})
def test_validate_of_any_job_shaped_file_is_a_verdict_or_readable_errors(job: object) -> None:
    check_outcome(["validate"], json.dumps(job))  # JSON is YAML


@_SETTINGS
@given(st.dictionaries(st.sampled_from(["x", "y", "z"]), templates, min_size=1, max_size=3))
def test_a_dry_run_of_any_variables_ends_in_0_or_2(variables: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        job = {
            "name": "fuzz",
            "state": str(Path(directory) / "state.db"),
            "variables": variables,
            "steps": [{"name": "s", "run": ["echo", "vars: {{ vars }}"]}],
        }
        check_outcome(["run", "--dry-run"], json.dumps(job))


# --- expressions alone --------------------------------------------------------------------------


@_SETTINGS
@given(templates)
def test_rendering_any_expression_is_a_value_or_one_config_error(template: str) -> None:
    context = {"x": "ab", "vars": {"x": "ab"}, "steps": {"s": {"files": ["f"]}}, "item": 3}
    with memory_cap():
        try:
            Expressions().render(template, context, "v")
        except ConfigError as err:
            assert "\n" not in err.message
            assert "out of memory" not in err.message
