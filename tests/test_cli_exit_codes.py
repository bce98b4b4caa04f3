"""The command line: each command and each bad input, with its exit code and message."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ferryman.cli import cli
from ferryman.errors import ExitCode

from .conftest import PASSWORD, Served, ServerFactory

ENV = {"FM_PW": PASSWORD}


def run(served: Served, *args: str, auth: bool = True) -> Result:
    extra = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "5"]
    if auth and served.server.pki is not None:
        extra += ["--ca-file", str(served.server.pki.ca_cert)]
    return CliRunner().invoke(cli, [*args, *extra], env=ENV)


@pytest.fixture
def explicit(ftp_server: ServerFactory) -> Served:
    served = ftp_server("explicit")
    (served.root / "out").mkdir()
    (served.root / "out/a.csv").write_text("id\n1\n")
    (served.root / "out/b.csv").write_text("id\n2\n")
    (served.root / "out/c.txt").write_text("x")
    return served


def test_every_command_round_trip(explicit: Served, tmp_path: Path) -> None:
    url = explicit.url
    result = run(explicit, "ls", url("/out/*.csv"), "--json")
    assert result.exit_code == 0, result.output
    names = [e["name"] for e in json.loads(result.stdout)["entries"]]
    assert names == ["a.csv", "b.csv"]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert run(explicit, "get", url("/out/*.csv"), str(inbox)).exit_code == 0
    assert sorted(p.name for p in inbox.iterdir()) == ["a.csv", "b.csv"]
    again = run(explicit, "get", url("/out/a.csv"), str(inbox))
    assert again.exit_code == ExitCode.TRANSFER and "--overwrite" in again.stderr
    assert run(explicit, "get", url("/out/a.csv"), str(inbox), "--overwrite").exit_code == 0
    assert run(explicit, "mkdir", url("/up")).exit_code == 0
    assert run(explicit, "put", str(inbox / "a.csv"), url("/up/")).exit_code == 0
    assert (explicit.root / "up/a.csv").read_text() == "id\n1\n"
    refused = run(explicit, "rmdir", url("/up"))
    assert refused.exit_code != 0 and "ferryman: error:" in refused.stderr
    assert run(explicit, "mv", url("/up/a.csv"), "z.csv").exit_code == 0
    assert (explicit.root / "up/z.csv").exists()
    assert run(explicit, "rm", url("/up/z.csv")).exit_code == 0
    assert run(explicit, "rmdir", url("/up")).exit_code == 0
    assert not (explicit.root / "up").exists()
    leftovers = [p for p in [*tmp_path.rglob("*"), *explicit.root.rglob("*")] if "part" in p.name]
    assert leftovers == []


@pytest.mark.parametrize("tls", ["none", "implicit"])
def test_plain_and_implicit(ftp_server: ServerFactory, tls: str) -> None:
    served = ftp_server(tls)
    (served.root / "f.txt").write_text("hi")
    result = run(served, "ls", served.url("/"))
    assert result.exit_code == 0 and "f.txt" in result.stdout


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("wrong-password", ExitCode.AUTHENTICATION, "530"),
        ("untrusted", ExitCode.TLS, "--fingerprint"),
        ("implicit-on-explicit", ExitCode.TLS, "ftpes://"),
        ("refused", ExitCode.CONNECTION, "refused the connection"),
        ("crlf", ExitCode.USAGE, "contains a CR"),
        ("scheme", ExitCode.USAGE, "unknown scheme"),
        ("missing", ExitCode.NOT_FOUND, "No such file"),
        ("put-missing-dir", ExitCode.NOT_FOUND, "STOR /nodir/"),
        ("usage", ExitCode.USAGE, "--timeout"),
    ],
)
def test_bad_inputs(explicit: Served, tmp_path: Path, case: str, code: int, words: str) -> None:
    url = explicit.url
    local = tmp_path / "x.csv"
    local.write_text("x")
    if case == "wrong-password":
        result = CliRunner().invoke(
            cli,
            [
                "ls",
                url("/"),
                "--password-env",
                "FM_PW",
                "--retries",
                "0",
                "--ca-file",
                str(explicit.server.pki.ca_cert),
            ],  # type: ignore[union-attr]
            env={"FM_PW": "wrong"},
        )
    elif case == "untrusted":
        result = run(explicit, "ls", url("/"), auth=False)
        assert explicit.server.pki is not None
        assert explicit.server.pki.server_fingerprint in result.stderr
    elif case == "implicit-on-explicit":
        result = run(explicit, "ls", url("/").replace("ftpes://", "ftps://"))
    elif case == "refused":
        result = run(explicit, "ls", f"ftpes://u@127.0.0.1:{_closed_port()}/")
    elif case == "crlf":
        result = run(explicit, "rm", url("/a%0d%0aDELE%20out/a.csv"))
    elif case == "scheme":
        result = run(explicit, "ls", "http://127.0.0.1/")
    elif case == "missing":
        result = run(explicit, "get", url("/out/none.csv"), str(tmp_path))
    elif case == "put-missing-dir":
        result = run(explicit, "put", str(local), url("/nodir/x.csv"))
    else:
        result = CliRunner().invoke(cli, ["ls", url("/"), "--timeout", "-1"])
    assert result.exit_code == code, result.output
    assert words in result.output
    assert PASSWORD not in result.output
    assert (explicit.root / "out/a.csv").exists()


def test_named_connection_and_test_command(explicit: Served, tmp_path: Path) -> None:
    assert explicit.server.pki is not None
    (tmp_path / "ca.pem").write_bytes(explicit.server.pki.ca_cert.read_bytes())
    file = tmp_path / "connections.yaml"
    file.write_text(
        f"partner:\n  url: {explicit.url('/')}\n  password_env: FM_PW\n  ca_file: ca.pem\n"
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["ls", "partner:/out/", "--connections", str(file)], env=ENV)
    assert result.exit_code == 0 and "a.csv" in result.stdout, result.output
    env = {**ENV, "FERRYMAN_CONNECTIONS": str(file)}
    result = runner.invoke(cli, ["test", "partner", "--json"], env=env)
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert set(checks) == {"tcp", "greeting", "tls", "login", "features", "data-epsv", "data-pasv"}
    assert all(c["ok"] for c in checks.values())
    assert checks["data-pasv"]["data"]["tls_session_resumed"] is True
    result = runner.invoke(cli, ["ls", "nobody:/", "--connections", str(file)], env=ENV)
    assert result.exit_code == ExitCode.USAGE and "known: partner" in result.stderr
    file.write_text("partner:\n  host: h\n  tiemout: 3\n")
    result = runner.invoke(cli, ["ls", "partner:/", "--connections", str(file)], env=ENV)
    assert result.exit_code == ExitCode.USAGE and f"{file}:3:3" in result.stderr


def test_test_command_diagnoses_failures(explicit: Served) -> None:
    result = run(explicit, "test", f"ftpes://u@127.0.0.1:{_closed_port()}")
    assert result.exit_code == ExitCode.CONNECTION and "FAIL tcp" in result.stdout
    result = run(explicit, "test", explicit.url("/"), auth=False)
    assert result.exit_code == ExitCode.TLS and "--fingerprint" in result.stdout


def test_verbose_transcript_masks_the_password(explicit: Served, tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    result = run(explicit, "ls", explicit.url("/out/"), "-v", "--log", str(log))
    assert result.exit_code == 0
    assert "> PASS ****" in result.stderr and "> PASS ****" in log.read_text()
    assert PASSWORD not in result.stderr + log.read_text()
    url_secret = explicit.url("/").replace("@", f":{PASSWORD}@", 1)
    result = CliRunner().invoke(cli, ["ls", url_secret, "-v", "--retries", "0"])
    assert PASSWORD not in result.output


def test_demo_help_and_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "resumed on every data connection: yes" in result.stdout
    transcript = (tmp_path / "demo/transcript.log").read_text()
    assert "> PASS ****" in transcript
    assert (tmp_path / "demo/server/inbound/report.csv").read_text() == "files,rows\n3,300\n"
    assert "Exit codes" in CliRunner().invoke(cli, ["--help"]).stdout
    version = subprocess.run(
        [sys.executable, "-m", "ferryman", "--version"], capture_output=True, text=True, check=True
    )
    assert "ferryman, version" in version.stdout
