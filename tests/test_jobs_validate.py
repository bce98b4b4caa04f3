"""``ferryman validate``: the likely guess of a scalar where a list or mapping belongs gets a
message that says what to write instead; unknown connections and names in expressions are
reported at their positions, all at once (issue 12)."""

from __future__ import annotations

import re
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


# --- names that must resolve: connections, steps, variables, env, foreach items ------------


def test_the_issue_job_reports_both_names_at_once(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: t
            connections:
              partner: {url: "ftp://u@127.0.0.1/", password_env: PW}
              warehouse: {url: "sqlite:///w.db"}
            steps:
              - name: fetch
                receive: {from: "vendr:/outbound/*.csv", to: inbox/}
              - name: load
                if: "{{ steps.fech.count > 0 }}"
                load: {files: "{{ steps.fetch.files }}", into: "warehouse:orders"}
            """
        )
    )
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == ExitCode.USAGE
    assert [line for line in result.stderr.splitlines() if "error:" in line] == [
        f"ferryman: error: {path}:7:21: steps.0.receive.from: no connection named 'vendr' "
        "(known: partner, warehouse)",
        f"ferryman: error: {path}:9:9: steps.1.if: no step named 'fech'; did you mean 'fetch'?",
    ]
    state = tmp_path / "state.db"
    run = CliRunner().invoke(cli, ["run", str(path)], env={"FERRYMAN_STATE": str(state)})
    assert run.exit_code == ExitCode.USAGE and "no connection named 'vendr'" in run.stderr
    assert not (tmp_path / "inbox").exists()


STEPS = """\
name: t
connections:
  partner: {url: "ftp://u@127.0.0.1/", password_env: PW}
  warehouse: {url: "sqlite:///w.db"}
env: [PW]
variables:
  day: "{{ today() }}"
  stamp: "{{ day }}-{{ vars.day }}-{{ env.PW }}-{{ job.name }}"
steps:
  - name: fetch
    receive: {from: "partner:/o/*.csv", to: "in/{{ day }}/"}
  - name: each
    if: "steps.fetch.count > 0 and stamp"
    foreach:
      items: "{{ steps.fetch.files }}"
      as: file
      steps:
        - name: first
          run: [echo, "{{ file }} {{ steps.fetch.count }} {{ stamp }}"]
        - name: second
          run: [echo, "{{ steps.first.stdout }} {{ steps['first'].exit_code }}"]
        - name: inner
          foreach:
            items: [1, 2]
            steps:
              - name: deepest
                run: [echo, "{{ item }} {{ file }} {{ steps.second.stdout }}"]
  - name: after
    when: always
    run: [echo, "{{ steps.each.count }} {{ steps.each.status }} {{ now().year }}"]
  - name: archive
    rename: {from: "partner:/o/a.csv", to: done/a.csv}
  - name: local
    list: {path: "C:/data/{% for x in [1] %}{{ x }}{% endfor %}"}
  - name: mirror
    sync: {from: "partner:/o/", to: "https://example.org/x"}
"""


def test_what_resolves_passes(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(STEPS)
    assert load_job(path).job.name == "t"


@pytest.mark.parametrize(
    ("old", "new", "wanted"),
    [
        (
            "{{ steps.fetch.count }} {{ stamp }}",
            "{{ steps.second.count }}",
            "step 'second' comes after this one; steps.NAME reads an earlier step's result "
            "(before this one: fetch)",
        ),
        (
            "{{ steps.first.stdout }} {{ steps['first'].exit_code }}",
            "{{ steps['second'].stdout }}",
            "steps.second is this step's own result; a step reads the steps before it",
        ),
        (
            "{{ steps.each.count }} {{ steps.each.status",
            "{{ steps.first.count }} {{ steps.each.status",
            "step 'first' is inside foreach 'each': read its results as steps.each.iterations "
            "(each: item and steps)",
        ),
        (
            "{{ item }} {{ file }}",
            "{{ steps.each.count }} {{ file }}",
            "steps.each is the foreach around this step: its result exists when all "
            "iterations are done; inside, use its item",
        ),
        (
            "{{ steps.each.count }} {{ steps.each.status }} {{ now().year }}",
            "{{ file }}",
            "'file' is the item of a foreach this step is not inside",
        ),
        (
            '"{{ file }} {{ steps.fetch.count }}',
            '"{{ item }} {{ steps.fetch.count }}',
            "'item' is not set here: the foreach around this step names it 'file'",
        ),
        (
            '"{{ today() }}"',
            '"{{ stamp }}"',
            "variable 'stamp' comes later; a variable uses only the ones before it",
        ),
        (
            "{{ vars.day }}",
            "{{ vars.dya }}",
            "no variable 'dya' (vars.dya); did you mean 'day'?",
        ),
        (
            "{{ env.PW }}",
            "{{ env.HOME }}",
            "env.HOME is not allow-listed: add HOME under env: (known: PW)",
        ),
        ("{{ job.name }}", "{{ job.id }}", "job.id does not exist (job.name, job.run_id, job.dir)"),
        (
            "and stamp",
            "and stmp",
            "unknown name 'stmp' (variables and foreach items here: day, stamp; also vars, env, "
            "steps, job, trigger, now, today, timedelta); did you mean 'stamp'?",
        ),
        (
            "{{ now().year }}",
            "{{ now( }}",
            "expression '{{ steps.each.count }} {{ steps.each.status }} {{ now( }}' does not "
            "parse: unexpected '}', expected ')'",
        ),
        ("{{ now().year }}", "{{ 1 | nofilter }}", "No filter named 'nofilter'."),
        (
            '{from: "partner:/o/*.csv"',
            '{from: "/o/*.csv"',
            "'/o/*.csv' does not name a remote place: write CONNECTION:PATH "
            "(known: partner, warehouse) or a URL",
        ),
        (
            '{from: "partner:/o/*.csv"',
            '{from: "warehouse:/o/*.csv"',
            "'warehouse' is a database connection; receive from takes files",
        ),
        (
            'to: "in/{{ day }}/"',
            'to: "partner:/in/"',
            "receive downloads to a local path here, but 'partner' names a connection",
        ),
        (
            'from: "partner:/o/a.csv"',
            'from: "partnr:/o/a.csv"',
            "no connection named 'partnr' (known: partner, warehouse)",
        ),
        (
            'sync: {from: "partner:/o/"',
            'sync: {from: "vendor:~/o/"',
            "no connection named 'vendor' (known: partner, warehouse)",
        ),
    ],
)
def test_a_name_that_does_not_resolve(tmp_path: Path, old: str, new: str, wanted: str) -> None:
    assert STEPS.count(old) == 1, old
    found = problems_of(tmp_path, STEPS.replace(old, new))
    assert len(found) == 1, found
    assert found[0].split(": ", 2)[2].endswith(wanted), found[0]


@pytest.mark.parametrize(
    ("step", "wanted"),
    [
        ("send: {from: a.csv, to: 'vendr:/in/'}", "no connection named 'vendr'"),
        ("delete_remote: {path: 'vendr:/in/*.tmp'}", "no connection named 'vendr'"),
        ("mkdir_remote: {path: 'vendr:/in/new'}", "no connection named 'vendr'"),
        ("rmdir_remote: {path: 'vendr:/in/old'}", "no connection named 'vendr'"),
        ("wait_for: {path: 'vendr:/in/*.csv'}", "no connection named 'vendr'"),
        ("list: {path: 'vendr:/in/'}", "no connection named 'vendr'"),
        ("delete_local: {path: 'partner:/x'}", "names a connection; use delete_remote"),
        ("send: {from: 'partner:/a', to: 'partner:/b'}", "send uploads from a local path"),
        ("load: {files: a.csv, into: 'partner:t'}", "'partner' is a file server; a database"),
        ("export: {query: q, from: wh, to: o.csv}", "no database connection named 'wh' (known:"),
    ],
)
def test_every_remote_field_resolves_its_connection(tmp_path: Path, step: str, wanted: str) -> None:
    assert wanted in only_problem(tmp_path, job_with_step(step))


def test_the_examples_in_the_docs_validate(tmp_path: Path) -> None:
    text = (Path(__file__).parent.parent / "docs" / "jobs.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) >= 4
    for index, block in enumerate(blocks):
        path = tmp_path / f"example{index}.yaml"
        # a placeholder fingerprint in an example is not what this test is about
        path.write_text(block.replace('"AB:CD:...:EF"', '"' + ":".join(["AB"] * 32) + '"'))
        assert load_job(path).job.steps
