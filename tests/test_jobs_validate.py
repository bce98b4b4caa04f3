"""``ferryman validate``: the likely guess of a scalar where a list or mapping belongs gets a
message that says what to write instead; unknown connections and names in expressions are
reported at their positions, all at once (issue 12)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferryman.cli import cli
from ferryman.errors import ConfigError, ExitCode
from ferryman.jobs.loader import load_job


def problems_of(tmp_path: Path, text: str) -> list[str]:
    """The problems ``load_job`` reports, each without the file name."""
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_job(path)
    return [line.removeprefix(f"{path}:") for line in caught.value.message.splitlines()]


def only_problem(tmp_path: Path, text: str) -> str:
    found = problems_of(tmp_path, text)
    assert len(found) == 1, found
    return found[0]


def job_with_step(step: str) -> str:
    """A job with a connection ``partner``, a database ``warehouse`` and ``step`` (YAML)."""
    return (
        "name: t\n"
        "connections:\n"
        "  partner: {url: 'ftp://u@127.0.0.1/', password: x}\n"
        "  warehouse: {url: 'sqlite:///w.db'}\n"
        "steps:\n"
        "  - name: s\n"
        f"    {step}\n"
    )


# --- scalars where a list or a mapping belongs ---------------------------------------------


@pytest.mark.parametrize(
    ("step", "key", "wanted"),
    [
        (
            "load: {files: a.csv, into: 'warehouse:t', format: csv}",
            "format",
            "steps.0.load.format: takes CSV options such as {delimiter: ';'}; CSV is the default",
        ),
        (
            "export: {query: q, from: warehouse, to: o.csv, format: tsv}",
            "format",
            'steps.0.export.format: takes CSV options: write {format: tsv} (or {delimiter: "\\t"})',
        ),
        (
            "load: {files: a.csv, into: 'warehouse:t', key: order_id}",
            "key",
            'steps.0.load.key: takes a list of columns: write ["order_id"]',
        ),
        (
            "receive: {from: 'partner:/o/', to: in/, include: '*.csv'}",
            "include",
            'steps.0.receive.include: takes a list of globs: write ["*.csv"]',
        ),
        (
            "receive: {from: 'partner:/o/', to: in/, after: delete}",
            "after",
            "steps.0.receive.after: takes a mapping: write {delete: true}",
        ),
        (
            "receive: {from: 'partner:/o/', to: in/, after: /o/done/}",
            "after",
            'steps.0.receive.after: takes a mapping: write {move_to: "/o/done/"} to archive, '
            "or {delete: true}",
        ),
        (
            "wait_for: {path: 'partner:/o/*.csv', timeout: 2h}",
            "timeout",
            "steps.0.wait_for.timeout: takes a number of seconds: write 7200 for 2h",
        ),
        (
            "receive: {from: 'partner:/o/', to: in/, stable_for: 30s}",
            "stable_for",
            "steps.0.receive.stable_for: takes a number of seconds: write 30 for 30s",
        ),
        (
            "delete_local: 'inbox/*.tmp'",
            "delete_local",
            'steps.0.delete_local: takes settings, not a single value: write {path: "inbox/*.tmp"}',
        ),
        (
            "receive: 'partner:/o/*.csv'",
            "receive",
            "steps.0.receive: takes settings, not a single value: write "
            "{from: CONNECTION:PATH, to: LOCAL}",
        ),
        (
            "run: logger 'nightly failed'",
            "run",
            "steps.0.run: takes a program and its arguments as a list (no shell): write "
            '["logger", "nightly failed"]',
        ),
        (
            "run: {argv: ls -l}",
            "argv",
            "steps.0.run.argv: takes a program and its arguments as a list (no shell): write "
            '["ls", "-l"]',
        ),
        (
            "if: true\n    run: [x]",
            "if",
            'steps.0.if: takes an expression such as "{{ steps.fetch.count > 0 }}"; '
            "leave if: out to always run",
        ),
        (
            "retry_delay: 1m\n    run: [x]",
            "retry_delay",
            "steps.0.retry_delay: takes a number of seconds: write 60 for 1m",
        ),
        (
            "foreach: {items: [1], steps: {a: {run: [x]}}}",
            "steps",
            "steps.0.foreach.steps: takes a list of steps, each starting with '- name: NAME' "
            "(in order), not a mapping of names to steps",
        ),
    ],
)
def test_a_scalar_guess_says_what_to_write(
    tmp_path: Path, step: str, key: str, wanted: str
) -> None:
    """Each message is at the position of its key (in the step at line 7, indented 4)."""
    column = step.index(key) + 5
    assert only_problem(tmp_path, job_with_step(step)) == f"7:{column}: {wanted}"


def test_top_level_guesses_say_what_to_write(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        """\
        name: t
        connections:
          partner: ftp://u@h/
        variables: [day]
        env: PARTNER_PW
        steps:
          - fetch
        """,
    )
    assert found == [
        '3:3: connections.partner: takes the connection\'s settings: write {url: "ftp://u@h/"}',
        '4:1: variables: takes a mapping of names to values: write {day: "{{ today() }}"}',
        '5:1: env: takes a list of environment variable names: write ["PARTNER_PW"]',
        '7:5: steps.0: a step is a mapping with a name and one action: write {name: "fetch", '
        "ACTION: ...} (docs/jobs.md lists the actions)",
    ]


def test_validate_shows_the_guess_message(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(job_with_step("load: {files: a.csv, into: 'warehouse:t', format: csv}"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == ExitCode.USAGE
    assert "valid dictionary" not in result.stderr
    assert f"{path}:7:47: steps.0.load.format: takes CSV options such as {{delimiter: ';'}}; " in (
        result.stderr
    )
