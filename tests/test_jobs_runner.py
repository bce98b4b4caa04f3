"""The job runner: precedence (``when``, ``if``, ``continue_on_error``), step retries, the
job's exit code, ``run`` steps (real programs) and ``foreach``. Local steps only; the file
steps against a server are in test_jobs_steps.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman.errors import ConfigError, ExitCode, FerrymanError, LoadError, NotFoundError
from ferryman.jobs.run import RunReport
from ferryman.jobs.runner import StepRecord

from .test_jobs_support import PY, JobEnv, make_env, pid_alive


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobEnv]:
    yield from make_env(tmp_path, monkeypatch)


def outcome(report: RunReport) -> dict[str, str]:
    return {s.name: s.status for s in report.steps}


def step(report: RunReport, name: str) -> StepRecord:
    return next(s for s in report.steps if s.name == name)


# --- precedence --------------------------------------------------------------------------------


def test_when_success_failure_always_after_a_failure(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: first
                run: [$PY, tool.py, echo, one]
              - name: breaks
                run: [$PY, tool.py, fail, "4", broken pipe dream]
              - name: next
                run: [$PY, tool.py, echo, never]
              - name: alert
                when: failure
                run: [$PY, tool.py, echo, "{{ steps.breaks.status }}: {{ steps.breaks.error }}"]
              - name: cleanup
                when: always
                run: [$PY, tool.py, echo, cleaned]
            """
        )
    )
    assert outcome(report) == {
        "first": "succeeded",
        "breaks": "failed",
        "next": "skipped",
        "alert": "succeeded",
        "cleanup": "succeeded",
    }
    assert step(report, "next").reason == "an earlier step failed"
    assert step(report, "alert").result["stdout"] == (
        f"failed: {PY} exited with status 4: broken pipe dream\n"
    )
    assert report.status == "failed" and report.exit_code == ExitCode.FAILURE
    assert report.error is step(report, "breaks").error


def test_when_failure_is_skipped_when_nothing_failed(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: first
                run: [$PY, tool.py, echo, one]
              - name: alert
                when: failure
                run: [$PY, tool.py, echo, alert]
              - name: cleanup
                when: always
                run: [$PY, tool.py, echo, cleaned]
            """
        )
    )
    assert outcome(report) == {"first": "succeeded", "alert": "skipped", "cleanup": "succeeded"}
    assert step(report, "alert").reason == "runs only after a failure"
    assert report.exit_code == 0 and report.status == "succeeded" and report.error is None


def test_continue_on_error_is_handled_and_the_job_succeeds(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: optional
                continue_on_error: true
                run: [$PY, tool.py, fail, "5", optional part failed]
              - name: next
                run: [$PY, tool.py, echo, "{{ steps.optional.status }}"]
              - name: alert
                when: failure
                run: [$PY, tool.py, echo, alert]
            """
        )
    )
    assert outcome(report) == {"optional": "failed", "next": "succeeded", "alert": "skipped"}
    optional = step(report, "optional")
    assert optional.handled is True and optional.result["exit_code"] == 5
    assert step(report, "next").result["stdout"] == "failed\n"
    assert report.exit_code == 0 and report.status == "succeeded" and report.error is None
    assert report.to_dict()["steps"][0]["handled"] is True


def test_if_true_false_and_a_bare_expression(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            variables:
              n: "{{ 3 }}"
            steps:
              - name: yes
                if: "{{ n > 2 }}"
                run: [$PY, tool.py, echo, yes]
              - name: no
                if: "{{ n > 5 }}"
                run: [$PY, tool.py, echo, no]
              - name: bare
                if: steps.no.status == 'skipped' and steps.yes.exit_code == 0
                run: [$PY, tool.py, echo, bare]
            """
        )
    )
    assert outcome(report) == {"yes": "succeeded", "no": "skipped", "bare": "succeeded"}
    assert step(report, "no").reason == "if: {{ n > 5 }} is false"
    assert report.exit_code == 0


def test_an_invalid_if_fails_the_step_as_a_mistake_in_the_job(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: check
                if: "{{ job.name.nothing > 0 }}"
                retries: 2
                retry_delay: 0
                run: [$PY, tool.py, echo, never]
              - name: next
                run: [$PY, tool.py, echo, never]
              - name: alert
                when: failure
                run: [$PY, tool.py, echo, alerted]
            """
        )
    )
    assert outcome(report) == {"check": "failed", "next": "skipped", "alert": "succeeded"}
    check = step(report, "check")
    assert isinstance(check.error, ConfigError)
    assert re.match(r"\S+job\.yaml:\d+:\d+: step check: if:", check.error.message)
    assert check.error.message.split(": ", 1)[1] == (  # after the job file's FILE:LINE:COLUMN
        "step check: if: expression 'job.name.nothing > 0' failed: "
        "'str object' has no attribute 'nothing'"
    )
    assert report.exit_code == ExitCode.USAGE


def test_an_if_syntax_error_stops_the_job_before_it_runs(env: JobEnv) -> None:
    path = env.write(
        """\
        steps:
          - name: check
            if: "{{ 1 > }}"
            run: [$PY, tool.py, echo, never]
        """
    )
    with pytest.raises(ConfigError, match=r"steps\.0\.if: expression '\{\{ 1 > \}\}' does not"):
        env.run(path)


def test_an_alert_can_read_the_status_of_a_step_whose_if_failed(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: check
                if: "{{ job.name.nothing > 0 }}"
                run: [$PY, tool.py, echo, never]
              - name: alert
                when: failure
                run: [$PY, tool.py, echo, "check {{ steps.check.status }}"]
            """
        )
    )
    assert step(report, "alert").status == "succeeded", step(report, "alert").error
    assert step(report, "alert").result["stdout"] == "check failed\n"


def test_an_alert_can_read_the_error_of_a_skipped_step(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: fetch
                run: [$PY, tool.py, fail, "3", no connection]
              - name: load
                run: [$PY, tool.py, echo, loading]
              - name: alert
                when: failure
                run: [$PY, tool.py, echo, "load {{ steps.load.status }} {{ steps.load.error }}"]
            """
        )
    )
    assert step(report, "alert").status == "succeeded", step(report, "alert").error
    assert step(report, "alert").result["stdout"] == "load skipped None\n"


def test_the_exit_code_is_that_of_the_first_unhandled_failure(env: JobEnv) -> None:
    (env.dir / "bad.csv").write_text("id\n1\nx\n", encoding="utf-8")
    report = env.run(
        env.write(
            """\
            steps:
              - name: handled
                continue_on_error: true
                delete_local: {path: missing.txt, missing_ok: false}
              - name: load
                load:
                  files: bad.csv
                  into: "warehouse:t"
                  format: {column_types: {id: integer}}
              - name: always
                when: always
                run: [$PY, tool.py, fail, "4", later failure]
              - name: skipped
                run: [$PY, tool.py, echo, never]
            """
        )
    )
    assert outcome(report) == {
        "handled": "failed",
        "load": "failed",
        "always": "failed",
        "skipped": "skipped",
    }
    assert isinstance(step(report, "handled").error, NotFoundError)
    assert isinstance(report.error, LoadError)
    assert report.exit_code == 9  # ExitCode.LOAD
    result = env.cli("run", env.dir / "job.yaml")
    assert result.exit_code == ExitCode.LOAD
    assert f"ferryman: error: {env.dir}/bad.csv:3: column id" in result.stderr


# --- retries -----------------------------------------------------------------------------------


def test_a_step_failing_once_succeeds_on_its_retry(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: flaky
                retries: 2
                retry_delay: 0
                run: [$PY, tool.py, fail-once, marker]
            """
        )
    )
    flaky = step(report, "flaky")
    assert flaky.status == "succeeded" and flaky.attempts == 2 and flaky.error is None
    assert flaky.result["stdout"] == "second attempt succeeded\n"
    assert report.exit_code == 0
    assert report.log_file is not None
    log = report.log_file.read_text(encoding="utf-8")
    assert "step flaky failed (" in log and "retry 1 of 2 in 0 s" in log


def test_without_retries_the_same_step_fails(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: flaky
                run: [$PY, tool.py, fail-once, marker]
            """
        )
    )
    flaky = step(report, "flaky")
    assert flaky.status == "failed" and flaky.attempts == 1
    assert flaky.result["exit_code"] == 3 and report.exit_code == ExitCode.FAILURE
    assert (env.dir / "marker").exists()


def test_retries_run_out_and_wait_retry_delay(env: JobEnv) -> None:
    path = env.write(
        """\
        steps:
          - name: broken
            retries: 2
            retry_delay: 0.2
            run: [$PY, tool.py, fail, "6", still broken]
        """
    )
    started = time.monotonic()
    report = env.run(path)
    assert time.monotonic() - started >= 0.4
    broken = step(report, "broken")
    assert broken.status == "failed" and broken.attempts == 3
    assert report.exit_code == ExitCode.FAILURE


# --- run ---------------------------------------------------------------------------------------


def test_run_results_argv_exit_code_stdout_stderr(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: hello
                run: [$PY, tool.py, echo, hello, world]
              - name: failing
                continue_on_error: true
                run: {argv: [$PY, tool.py, fail, "7", "went wrong"], timeout: 30}
              - name: next
                run:
                  - $PY
                  - tool.py
                  - echo
                  - "{{ steps.hello.stdout | trim }}"
                  - "code={{ steps.failing.exit_code }}"
            """
        )
    )
    hello = step(report, "hello").result
    assert hello == {
        "argv": [PY, "tool.py", "echo", "hello", "world"],
        "exit_code": 0,
        "stdout": "hello world\n",
        "stderr": "",
    }
    failing = step(report, "failing")
    assert failing.status == "failed"
    assert failing.result["exit_code"] == 7
    assert failing.result["stdout"] == "some output\n"
    assert failing.result["stderr"] == "went wrong\n"
    assert isinstance(failing.error, FerrymanError)
    assert failing.error.message == f"{PY} exited with status 7: went wrong"
    assert failing.error.exit_code == ExitCode.FAILURE
    assert step(report, "next").result["stdout"] == "hello world code=7\n"


def test_run_in_a_working_directory(env: JobEnv) -> None:
    (env.dir / "sub").mkdir()
    (env.dir / "sub/tool.py").write_text("import os\nprint(os.getcwd())\n")
    report = env.run(
        env.write(
            """\
            steps:
              - name: default
                run: [$PY, tool.py, cwd]
              - name: sub
                run: {argv: [$PY, tool.py], cwd: sub}
            """
        )
    )
    assert step(report, "default").result["stdout"] == f"{env.dir}\n"
    assert step(report, "sub").result["stdout"] == f"{env.dir / 'sub'}\n"


def test_run_timeout_kills_the_program(env: JobEnv) -> None:
    path = env.write(
        """\
        steps:
          - name: hangs
            run: {argv: [$PY, tool.py, sleep, hangs.pid, "30"], timeout: 0.5}
        """
    )
    started = time.monotonic()
    report = env.run(path)
    assert time.monotonic() - started < 10
    hangs = step(report, "hangs")
    assert hangs.status == "failed"
    assert hangs.error is not None
    assert hangs.error.message == f"{PY} did not finish within 0.5 s and was killed"
    pid = int((env.dir / "hangs.pid").read_text())
    assert not pid_alive(pid)
    assert report.exit_code == ExitCode.FAILURE


def test_run_a_missing_program(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: missing
                run: [no-such-program-for-ferryman-tests, x]
            """
        )
    )
    missing = step(report, "missing")
    assert isinstance(missing.error, ConfigError)
    assert missing.error.message == "program 'no-such-program-for-ferryman-tests' not found"
    assert report.exit_code == ExitCode.USAGE


def test_run_keeps_the_last_64_kib_of_output(env: JobEnv) -> None:
    (env.dir / "big.py").write_text("print('a' * 100000 + 'END')\n")
    report = env.run(
        env.write(
            """\
            steps:
              - name: big
                run: [$PY, big.py]
            """
        )
    )
    out = step(report, "big").result["stdout"]
    assert len(out) == 64 * 1024 and out.endswith("END\n")


def test_run_never_goes_through_a_shell(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: literal
                run: [$PY, tool.py, echo, "$$(touch pwned) ; touch pwned2"]
            """
        )
    )
    assert step(report, "literal").result["stdout"] == "$(touch pwned) ; touch pwned2\n"
    assert not (env.dir / "pwned").exists() and not (env.dir / "pwned2").exists()


# --- foreach -----------------------------------------------------------------------------------


def test_foreach_over_a_list_with_nested_results(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: each
                foreach:
                  items: [red, green]
                  as: colour
                  steps:
                    - name: say
                      run: [$PY, tool.py, echo, "{{ colour }}"]
                    - name: again
                      run: [$PY, tool.py, echo, "{{ steps.say.stdout | trim }}-{{ colour }}"]
              - name: after
                run: [$PY, tool.py, echo, "{{ steps.each.iterations[1].steps.again.stdout }}"]
            """
        )
    )
    each = step(report, "each")
    assert each.status == "succeeded" and each.result["count"] == 2
    iterations = each.result["iterations"]
    assert [i["item"] for i in iterations] == ["red", "green"]
    assert [i["steps"]["again"]["stdout"] for i in iterations] == ["red-red\n", "green-green\n"]
    assert iterations[0]["steps"]["say"]["exit_code"] == 0
    assert step(report, "after").result["stdout"] == "green-green\n\n"


def test_foreach_over_the_files_of_a_list_step(env: JobEnv) -> None:
    (env.dir / "in").mkdir()
    for name in ("b.csv", "a.csv", "c.txt"):
        (env.dir / "in" / name).write_text(name)
    report = env.run(
        env.write(
            """\
            steps:
              - name: found
                list: {path: "in/*.csv"}
              - name: each
                foreach:
                  items: "{{ steps.found.files }}"
                  steps:
                    - name: show
                      run: [$PY, tool.py, echo, "{{ item }}"]
              - name: glob
                foreach:
                  items: "in/*.txt"
                  as: f
                  steps:
                    - name: show_txt
                      run: [$PY, tool.py, echo, "{{ f }}"]
            """
        )
    )
    assert report.exit_code == 0, report.error
    expected = [str(env.dir / "in/a.csv"), str(env.dir / "in/b.csv")]
    assert step(report, "found").result["files"] == expected
    each = step(report, "each").result
    assert [i["item"] for i in each["iterations"]] == expected
    assert [i["steps"]["show"]["stdout"] for i in each["iterations"]] == [
        f"{p}\n" for p in expected
    ]
    glob = step(report, "glob").result
    assert [i["item"] for i in glob["iterations"]] == [str(env.dir / "in/c.txt")]


def test_a_failure_inside_foreach_stops_it_and_fails_the_job(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: each
                foreach:
                  items: ["0", "9", "0"]
                  steps:
                    - name: optional
                      continue_on_error: true
                      run: [$PY, tool.py, fail, "1", optional]
                    - name: work
                      run: [$PY, tool.py, fail, "{{ item }}", "item {{ item }}"]
              - name: next
                run: [$PY, tool.py, echo, never]
            """
        )
    )
    each = step(report, "each")
    assert each.status == "failed"
    assert each.result["count"] == 2
    assert [i["steps"]["work"]["exit_code"] for i in each.result["iterations"]] == [0, 9]
    assert each.error is not None and each.error.message.endswith("status 9: item 9")
    assert step(report, "next").status == "skipped"
    assert report.exit_code == ExitCode.FAILURE


def test_foreach_over_an_empty_list(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: each
                foreach:
                  items: "{{ [] }}"
                  steps:
                    - name: never
                      run: [$PY, tool.py, fail, "1", never]
            """
        )
    )
    assert step(report, "each").result == {"count": 0, "iterations": []}
    assert report.exit_code == 0
