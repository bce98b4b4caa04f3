"""Options before the sub-command, option errors naming the option, and a refused first
connection failing fast (issue 12, item 3). Servers are the embedded pyftpdlib on loopback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from click.testing import CliRunner, Result

from ferryman.cli import cli
from ferryman.errors import ExitCode

from .conftest import PASSWORD, Served, ServerFactory

ENV: dict[str, str | None] = {"FM_PW": PASSWORD}


def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], env=ENV if env is None else env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def secured(served: Served) -> list[str]:
    assert served.server.pki is not None
    return ["--ca-file", str(served.server.pki.ca_cert), "--password-env", "FM_PW"]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- options before the sub-command ---------------------------------------------------------


def test_verbose_before_the_command_prints_the_transcript(ftp_server: ServerFactory) -> None:
    served = ftp_server("explicit")
    (served.root / "a.csv").write_text("x")
    before = invoke("-v", "ls", served.url("/"), *secured(served))
    assert before.exit_code == 0, before.output
    assert "> AUTH TLS" in before.stderr and "a.csv" in before.stdout
    after = invoke("ls", "-v", served.url("/"), *secured(served))
    assert "> AUTH TLS" in after.stderr
    quiet = invoke("ls", served.url("/"), *secured(served))
    assert "> AUTH TLS" not in quiet.stderr


def test_json_log_and_timeout_before_the_command(ftp_server: ServerFactory, tmp_path: Path) -> None:
    served = ftp_server("explicit")
    (served.root / "a.csv").write_text("x")
    log = tmp_path / "wire.log"
    result = invoke(
        "--json", "--log", log, "--timeout", "7", "ls", served.url("/"), *secured(served)
    )
    assert result.exit_code == 0, result.output
    assert [e["name"] for e in json.loads(result.stdout)["entries"]] == ["a.csv"]
    assert "> AUTH TLS" in log.read_text(encoding="utf-8")


def test_connections_before_the_command_beats_the_environment(
    ftp_server: ServerFactory, tmp_path: Path
) -> None:
    served = ftp_server("explicit")
    (served.root / "a.csv").write_text("x")
    assert served.server.pki is not None
    good = tmp_path / "good.yaml"
    good.write_text(
        "partner:\n"
        f"  host: 127.0.0.1\n  port: {served.server.port}\n  user: {served.server.user}\n"
        f"  tls: explicit\n  ca_file: {served.server.pki.ca_cert}\n  password_env: FM_PW\n",
        encoding="utf-8",
    )
    env = {**ENV, "FERRYMAN_CONNECTIONS": str(tmp_path / "missing.yaml")}
    result = invoke("--connections", good, "ls", "partner:/", env=env)
    assert result.exit_code == 0, result.output
    assert "a.csv" in result.stdout
    from_env = invoke("ls", "partner:/", env=env)
    assert from_env.exit_code == ExitCode.USAGE and "missing.yaml" in from_env.stderr


def test_json_before_job_commands(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: j\nsteps:\n  - name: s\n    mkdir_local: {path: d}\n", encoding="utf-8")
    result = invoke("--json", "validate", job)
    assert json.loads(result.stdout)["ok"] is True


def test_verbose_before_run_prints_the_run_log(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: j\nstate: state.db\nsteps:\n  - name: s\n    mkdir_local: {path: d}\n",
        encoding="utf-8",
    )
    quiet = invoke("run", job)
    assert quiet.exit_code == 0 and "run 1 of job j" not in quiet.stderr
    loud = invoke("-v", "run", job)
    assert loud.exit_code == 0, loud.output
    assert f"run 2 of job j ({job})" in loud.stderr


def test_an_option_the_command_does_not_take_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("--timeout", "3", "validate", tmp_path / "job.yaml")
    assert result.exit_code == ExitCode.USAGE
    assert "--timeout does not apply to `ferryman validate`" in result.stderr


# --- option errors name the option ----------------------------------------------------------


def test_a_bad_fingerprint_is_the_options_fault_not_the_urls() -> None:
    result = invoke("ls", "ftpes://127.0.0.1:1/", "--fingerprint", "AB:CD")
    assert result.exit_code == ExitCode.USAGE
    first = result.stderr.splitlines()[0]
    assert "invalid URL" not in first
    assert "invalid option for ftpes://127.0.0.1:1: --fingerprint: not a SHA-256" in first


def test_a_ca_file_on_plain_ftp_names_the_option() -> None:
    result = invoke("ls", "ftp://127.0.0.1:1/", "--ca-file", "/etc/hosts")
    assert result.exit_code == ExitCode.USAGE
    first = result.stderr.splitlines()[0]
    assert "invalid URL" not in first and "--ca-file only apply to TLS" in first


def test_a_bad_url_is_still_the_urls_fault() -> None:
    result = invoke("ls", "ftp://127.0.0.1:99999/", "--ca-file", "/etc/hosts")
    assert result.exit_code == ExitCode.USAGE
    assert "invalid option" not in result.stderr and "not a valid URL" in result.stderr


# --- a refused first connection fails fast --------------------------------------------------


def test_a_refused_first_connect_fails_at_once_with_one_hint() -> None:
    result = invoke("ls", f"ftp://127.0.0.1:{closed_port()}/")
    assert result.exit_code == ExitCode.CONNECTION
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr  # the error and its hint, no retry warnings
    assert lines[0].startswith("ferryman: error:") and "refused the connection" in lines[0]
    assert lines[1].startswith("ferryman: hint:")


def test_an_unresolvable_host_fails_at_once() -> None:
    result = invoke("get", "sftp://nowhere.invalid/x", "--password-env", "FM_PW")
    assert result.exit_code == ExitCode.CONNECTION
    assert "cannot resolve" in result.stderr and "retry" not in result.stderr


def test_retries_on_the_command_line_retry_a_refused_connect_one_line_each() -> None:
    url = f"ftp://127.0.0.1:{closed_port()}/"
    result = invoke("ls", url, "--retries", "1")
    assert result.exit_code == ExitCode.CONNECTION
    retries = [line for line in result.stderr.splitlines() if "retry 1 of 1" in line]
    assert len(retries) == 1 and "refused the connection" in retries[0]
    assert "hint" not in retries[0] and "is the server running" not in retries[0]
    assert sum("is the server running" in line for line in result.stderr.splitlines()) == 1


def test_a_job_keeps_retrying_a_refused_connect_with_one_line_per_retry(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: refused\nstate: state.db\nconnections:\n"
        f"  partner: {{host: 127.0.0.1, port: {closed_port()}, user: u, password_env: FM_PW,"
        " retries: 2, retry_delay: 0.01, tls: none}\n"
        "steps:\n  - name: fetch\n    receive: {from: 'partner:/out/*.csv', to: inbox/}\n",
        encoding="utf-8",
    )
    result = invoke("run", job)
    assert result.exit_code == ExitCode.CONNECTION
    retries = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(retries) == 2, result.stderr
    for number, line in enumerate(retries, 1):
        assert f"refused the connection; retry {number} of 2 in" in line
        assert "is the server running" not in line and line.count("connecting to") == 1
