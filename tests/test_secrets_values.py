"""Secret *values* stay secret (issue 13): a password, an ``env.*`` value and anything rendered
from them never reach an error, a reply text, the history, the state file, JSON or a log.

Each end-to-end case runs ``python -m ferryman`` in a subprocess (a fresh registry of secrets,
as a real run has), then greps every output -- stdout, stderr, the run log or ``--log`` file,
``show --json`` -- and the raw bytes of the state file and its ``-wal`` for the secret. Each
secret is new per test, so no other test's registration can mask it by luck.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ferryman.errors import AuthenticationError, ExitCode
from ferryman.jobs.runner import StepRecord
from ferryman.redact import contains_secret, forget_secrets, mask, mask_data, register_secret
from ferryman.state import StateStore

from .servers.scripted import ScriptedFtpServer

PY = sys.executable


def new_secret() -> str:
    return f"S3cr-{uuid.uuid4().hex[:12]}"


def ferryman(
    *args: str | Path, cwd: Path, secret: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FTPPW": secret,
        "HOME": str(cwd),
        "FERRYMAN_STATE": str(cwd / "default-state.db"),
        "FERRYMAN_CONNECTIONS": str(cwd / "no-connections.yaml"),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [PY, "-m", "ferryman", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_absent(secret: str, *texts: str, files: Sequence[Path] = ()) -> None:
    """``secret`` (and its upper-case and percent-encoded forms) in none of ``texts`` and
    none of ``files`` (raw bytes; a missing -wal is fine)."""
    forms = {secret, secret.upper()}
    for i, text in enumerate(texts):
        for form in forms:
            assert form not in text, f"secret in output #{i}: {text!r}"
    for path in files:
        if path.exists():
            data = path.read_bytes()
            for form in forms:
                assert form.encode() not in data, f"secret in {path.name}"


def state_files(state: Path) -> list[Path]:
    files = [state, Path(f"{state}-wal"), Path(f"{state}-journal")]
    assert state.is_file()
    return files


def write_job(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.yaml"
    header = f"name: {name}\nstate: {directory / 'state.db'}\n"
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    return path


def show_json(directory: Path, secret: str, run_id: int = 1) -> tuple[dict[str, Any], str]:
    done = ferryman(
        "show",
        str(run_id),
        "--state",
        directory / "state.db",
        "--json",
        cwd=directory,
        secret=secret,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stdout + done.stderr


# --- the registry ------------------------------------------------------------------------------


def test_mask_covers_encodings_and_late_registration() -> None:
    secret = f"{uuid.uuid4().hex[:8]}@ss word/"
    error = AuthenticationError(f"530 password {secret!r} is wrong", reply_text=f"530 {secret}")
    assert secret in error.message  # not a secret yet
    register_secret(secret)
    assert contains_secret(f"x{secret}y")
    assert secret not in error.message and "****" in error.message
    assert secret not in str(error) and secret not in repr(error)
    assert error.reply_text == "530 ****"
    assert secret not in json.dumps(error.to_dict())
    encoded = "ftp://u:" + secret[:8] + "%40ss%20word%2F@h/"
    assert mask(encoded) == "ftp://u:****@h/"
    assert mask("pw=" + secret[:8] + "%40ss+word%2F&x=1") == "pw=****&x=1"  # a form's encoding
    assert mask(json.dumps({"k": secret})) == '{"k": "****"}'
    assert mask_data({"argv": ["x", secret], "n": 3, "p": Path("/data", secret, "f")}) == {
        "argv": ["x", "****"],
        "n": 3,
        "p": "/data/****f",
    }


def test_short_values_are_not_masked() -> None:
    register_secret("abc")
    assert mask("abc def") == "abc def"


def test_forget_secrets() -> None:
    secret = new_secret()
    register_secret(secret)
    assert mask(secret) == "****"
    forget_secrets()
    assert mask(secret) == secret and not contains_secret(secret)


# --- case 1: a variable computed from env.X through another variable --------------------------


def test_variables_from_env_through_other_variables(tmp_path: Path) -> None:
    secret = new_secret()
    job = write_job(
        tmp_path,
        "chain",
        f"""\
        env: [FTPPW]
        variables:
          pw: "{{{{ env.FTPPW }}}}"
          alias: "{{{{ pw }}}}"
          shout: "{{{{ alias | upper }}}}"
          plain: hello-world
          label: the env of prod
          some: ["{{{{ env.FTPPW | lower }}}}", x]
        steps:
          - name: say
            run: [{PY}, -c, "import sys; print(sys.argv[1:])", "{{{{ plain }}}}", "{{{{ shout }}}}"]
        """,
    )
    done = ferryman("run", job, "--json", cwd=tmp_path, secret=secret)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    say = report["steps"][0]["result"]
    assert say["argv"][-2:] == ["hello-world", "****"]
    assert "hello-world" in say["stdout"] and "****" in say["stdout"]
    shown, shown_text = show_json(tmp_path, secret)
    variables = shown["variables"]
    assert variables["plain"] == "hello-world"
    assert variables["label"] == "the env of prod"  # "env", but no expression
    assert {variables[n] for n in ("pw", "alias", "shout", "some")} == {
        "(from the environment: not recorded)"
    }
    log_file = Path(report["log_file"]).read_text(encoding="utf-8")
    assert_absent(
        secret,
        done.stdout,
        done.stderr,
        log_file,
        shown_text,
        files=state_files(tmp_path / "state.db"),
    )


# --- case 2: a run step with {{ env.FTPPW }} in its argv -------------------------------------


RUN_STEP = """\
env: [FTPPW]
steps:
  - name: upload
    run: [{py}, -c, "{code}", "--password={{{{ env.FTPPW }}}}"]
"""
ECHO_AND_FAIL = (
    "import sys; print('got', sys.argv[1]); print('refused', sys.argv[1], file=sys.stderr); "
    "sys.exit(3)"
)


def test_run_step_argv_stdout_stderr_and_error(tmp_path: Path) -> None:
    secret = new_secret()
    job = write_job(tmp_path, "argv", RUN_STEP.format(py=PY, code=ECHO_AND_FAIL))
    done = ferryman("run", job, "--json", "-v", cwd=tmp_path, secret=secret)
    assert done.returncode == int(ExitCode.FAILURE), done.stderr
    report = json.loads(done.stdout)
    step = report["steps"][0]
    assert step["result"]["argv"][-1] == "--password=****"
    assert step["result"]["stdout"].strip() == "got --password=****"
    assert "refused --password=****" in step["error"]["message"]
    assert "refused --password=****" in report["error"]["message"]
    human = ferryman("run", job, cwd=tmp_path, secret=secret)
    assert human.returncode == int(ExitCode.FAILURE)
    assert "refused --password=****" in human.stdout + human.stderr
    shown, shown_text = show_json(tmp_path, secret)
    assert shown["steps"][0]["result"]["argv"][-1] == "--password=****"
    assert "refused --password=****" in shown["steps"][0]["error"]["message"]
    logs = [p.read_text(encoding="utf-8") for p in (tmp_path / "logs").rglob("*.log")]
    assert len(logs) == 2
    assert_absent(
        secret,
        done.stdout,
        done.stderr,
        human.stdout,
        human.stderr,
        shown_text,
        *logs,
        files=state_files(tmp_path / "state.db"),
    )
    with StateStore(tmp_path / "state.db") as store:  # the history has the run, masked
        detail = store.run_detail(1)
    assert detail.steps[0].result["stderr"].strip() == "refused --password=****"


# --- case 3: a server that echoes the password in its reply ----------------------------------


def echo_password(server: ScriptedFtpServer, argument: str) -> str:
    return f"530 password '{argument}' is wrong"


def test_server_echoing_the_password_cli(tmp_path: Path) -> None:
    secret = new_secret()
    log = tmp_path / "transcript.log"
    with ScriptedFtpServer({"PASS": echo_password}, timeout=10) as server:
        url = f"ftp://orders@127.0.0.1:{server.port}/"
        done = ferryman(
            "ls",
            url,
            "--password-env",
            "FTPPW",
            "--retries",
            "0",
            "--timeout",
            "5",
            "--json",
            "--log",
            log,
            cwd=tmp_path,
            secret=secret,
        )
    assert f"PASS {secret}" in server.commands  # the server did get it, and echoed it
    assert done.returncode == int(ExitCode.AUTHENTICATION), done.stderr
    error = json.loads(done.stdout)
    assert error["reply_code"] == 530
    assert error["reply_text"] == "530 password '****' is wrong"
    assert "ferryman: error:" in done.stderr
    assert_absent(secret, done.stdout, done.stderr, log.read_text(encoding="utf-8"))


def test_server_echoing_the_password_in_a_job(tmp_path: Path) -> None:
    secret = new_secret()
    with ScriptedFtpServer({"PASS": echo_password}, timeout=10) as server:
        job = write_job(
            tmp_path,
            "echoed",
            f"""\
            connections:
              partner:
                url: ftp://orders@127.0.0.1:{server.port}/
                password_env: FTPPW
                use_netrc: false
                use_keyring: false
                timeout: 5
                retries: 0
            steps:
              - name: look
                list: {{path: "partner:/out/*.csv"}}
            """,
        )
        done = ferryman("run", job, "--json", cwd=tmp_path, secret=secret)
    assert f"PASS {secret}" in server.commands
    assert done.returncode == int(ExitCode.AUTHENTICATION), done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["error"]["reply_text"] == "530 password '****' is wrong"
    shown, shown_text = show_json(tmp_path, secret)
    assert shown["error"] and shown["steps"][0]["status"] == "failed"
    log_file = Path(report["log_file"]).read_text(encoding="utf-8")
    assert "530 password '****' is wrong" in log_file  # the transcript has the reply, masked
    assert_absent(
        secret,
        done.stdout,
        done.stderr,
        shown_text,
        log_file,
        files=state_files(tmp_path / "state.db"),
    )


@pytest.mark.parametrize("quoted", [False, True])
def test_url_password_masked_in_errors(tmp_path: Path, quoted: bool) -> None:
    """A password in the URL (percent-encoded or not) echoed by the server."""
    secret = new_secret() + ("/x y" if quoted else "")
    with ScriptedFtpServer({"PASS": echo_password}, timeout=10) as server:
        url = f"ftp://orders:{quote(secret, safe='')}@127.0.0.1:{server.port}/"
        done = ferryman("ls", url, "--retries", "0", "--json", cwd=tmp_path, secret="unused")
    assert f"PASS {secret}" in server.commands
    assert done.returncode == int(ExitCode.AUTHENTICATION), done.stderr
    assert_absent(secret, done.stdout, done.stderr)
    assert quote(secret, safe="") not in done.stdout + done.stderr


def test_step_record_repr_leaves_out_the_result() -> None:
    secret = new_secret()
    record = StepRecord("upload", "run", "succeeded", result={"argv": ["tool", secret]})
    assert secret not in repr(record)
    register_secret(secret)
    assert record.to_dict()["result"] == {"argv": ["tool", "****"]}
