"""The ``ferryman`` command line, run in-process with click's CliRunner.

Every command over explicit TLS (verified with --ca-file), one run each over implicit TLS and
plain FTP, every bad input with its exit code and message, named connections, ``ferryman
test``, the transcript (-v, --log), ``ferryman demo``, --help and --version. The password
travels through ``--password-env FM_PW``; only one test puts one in a URL, to prove that it
never shows.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ferryman import __version__
from ferryman.cli import cli
from ferryman.errors import ExitCode
from ferryman.transfer.copy import PARTIAL_SUFFIX
from ferryman.wirelog import configure_logging

from .conftest import PASSWORD, Served, ServerFactory

ENV: dict[str, str | None] = {"FM_PW": PASSWORD}
FAST = ["--retries", "0", "--timeout", "5"]


# --- helpers -------------------------------------------------------------------------------


def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """Run ``ferryman ARGS`` in-process; exceptions other than exits fail the test."""
    result = CliRunner().invoke(cli, [str(a) for a in args], env=ENV if env is None else env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ca_of(served: Served) -> list[str]:
    assert served.server.pki is not None
    return ["--ca-file", str(served.server.pki.ca_cert)]


def run(served: Served, *args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """A command against ``served`` with the password from $FM_PW (and its CA for TLS)."""
    extra = ["--password-env", "FM_PW", *FAST]
    if served.server.pki is not None:
        extra += ca_of(served)
    return invoke(*args, *extra, env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    assert PASSWORD not in result.output
    return result


def failed(result: Result, code: int, *words: str) -> Result:
    """Assert the exit code, the one-line error, and that each word is in stderr."""
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}\n{result.output}"
    for word in words:
        assert word in result.stderr, f"{word!r} not in stderr:\n{result.stderr}"
    assert PASSWORD not in result.output
    return result


def hint_of(result: Result) -> str:
    hints = [line for line in result.stderr.splitlines() if line.startswith("ferryman: hint:")]
    assert hints, f"no hint in stderr:\n{result.stderr}"
    return hints[0]


def partials(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob(f"*{PARTIAL_SUFFIX}*")]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """-v, --log and demo configure the process-wide logger; put it back afterwards."""
    yield
    configure_logging(0, None)


def _fill(root: Path) -> None:
    (root / "out").mkdir()
    (root / "out/a.csv").write_text("id\n1\n")
    (root / "out/b.csv").write_text("id\n2\n22\n")
    (root / "out/c.txt").write_text("x")
    (root / "out/sub").mkdir()


@pytest.fixture
def explicit(ftp_server: ServerFactory) -> Served:
    """An explicit-TLS server with /out/{a.csv, b.csv, c.txt, sub/}."""
    served = ftp_server("explicit")
    _fill(served.root)
    return served


@pytest.fixture
def local(tmp_path: Path) -> Path:
    path = tmp_path / "local"
    path.mkdir()
    return path


# --- ls ------------------------------------------------------------------------------------


def test_ls_text_lists_dirs_first_with_sizes(explicit: Served) -> None:
    result = ok(run(explicit, "ls", explicit.url("/out/")))
    lines = result.stdout.splitlines()
    assert [line.split()[-1] for line in lines] == ["sub", "a.csv", "b.csv", "c.txt"]
    assert lines[0].startswith("d ")
    assert lines[1].split()[:2] == ["-", "5"]
    assert lines[2].split()[:2] == ["-", "8"]
    assert result.stderr == ""


def test_ls_json(explicit: Served) -> None:
    result = ok(run(explicit, "ls", explicit.url("/out/"), "--json"))
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["path"] == "/out/"
    entries = {e["name"]: e for e in doc["entries"]}
    assert set(entries) == {"sub", "a.csv", "b.csv", "c.txt"}
    assert entries["sub"]["type"] == "dir"
    assert entries["b.csv"]["type"] == "file" and entries["b.csv"]["size"] == 8


def test_ls_glob_filters_names(explicit: Served) -> None:
    result = ok(run(explicit, "ls", explicit.url("/out/*.csv"), "--json"))
    assert [e["name"] for e in json.loads(result.stdout)["entries"]] == ["a.csv", "b.csv"]
    text = ok(run(explicit, "ls", explicit.url("/out/*.csv")))
    assert [line.split()[-1] for line in text.stdout.splitlines()] == ["a.csv", "b.csv"]


def test_ls_a_file_path_lists_that_file(explicit: Served) -> None:
    result = ok(run(explicit, "ls", explicit.url("/out/b.csv")))
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].split()[0] == "-" and lines[0].split()[1] == "8"
    assert lines[0].endswith("b.csv")


def test_ls_glob_in_a_directory_part_is_a_usage_error(explicit: Served) -> None:
    failed(run(explicit, "ls", explicit.url("/o*/*.csv")), ExitCode.USAGE, "wildcards")


# --- get -----------------------------------------------------------------------------------


def test_get_single_file_into_a_directory(explicit: Served, local: Path) -> None:
    result = ok(run(explicit, "get", explicit.url("/out/a.csv"), local))
    assert (local / "a.csv").read_text() == "id\n1\n"
    assert "/out/a.csv ->" in result.stdout and "5 bytes" in result.stdout
    assert sorted(p.name for p in local.iterdir()) == ["a.csv"]
    assert partials(local, explicit.root) == []


def test_get_single_file_to_a_file_name(explicit: Served, local: Path) -> None:
    target = local / "renamed.csv"
    ok(run(explicit, "get", explicit.url("/out/b.csv"), target))
    assert target.read_text() == "id\n2\n22\n"
    assert sorted(p.name for p in local.iterdir()) == ["renamed.csv"]


def test_get_glob_into_a_directory(explicit: Served, local: Path) -> None:
    result = ok(run(explicit, "get", explicit.url("/out/*.csv"), local, "--json"))
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["errors"] == []
    assert sorted(f["source"] for f in doc["files"]) == ["/out/a.csv", "/out/b.csv"]
    assert sorted(p.name for p in local.iterdir()) == ["a.csv", "b.csv"]
    assert (local / "b.csv").read_text() == "id\n2\n22\n"


def test_get_glob_without_matches_is_not_found(explicit: Served, local: Path) -> None:
    failed(run(explicit, "get", explicit.url("/out/*.xml"), local), ExitCode.NOT_FOUND, "*.xml")
    assert list(local.iterdir()) == []


def test_get_refuses_an_existing_file_then_overwrite_replaces_it(
    explicit: Served, local: Path
) -> None:
    existing = local / "a.csv"
    existing.write_text("keep me")
    result = failed(
        run(explicit, "get", explicit.url("/out/a.csv"), local),
        ExitCode.TRANSFER,
        "already exists",
    )
    assert "--overwrite" in hint_of(result)
    assert existing.read_text() == "keep me"
    assert partials(local) == []
    ok(run(explicit, "get", explicit.url("/out/a.csv"), local, "--overwrite"))
    assert existing.read_text() == "id\n1\n"
    assert partials(local) == []


def test_get_onto_a_directory_is_refused_before_writing(explicit: Served, local: Path) -> None:
    # a.csv cannot replace a directory, even with --overwrite; b.csv still arrives.
    (local / "a.csv").mkdir()
    (local / "a.csv/keep").write_text("k")
    result = failed(
        run(explicit, "get", explicit.url("/out/*.csv"), local, "--overwrite", "-v"),
        ExitCode.TRANSFER,
        "a.csv is a directory at the destination",
    )
    assert "RETR /out/a.csv" not in result.stderr  # decided before anything was read
    assert "/out/b.csv ->" in result.stdout
    assert (local / "b.csv").read_text() == "id\n2\n22\n"
    assert (local / "a.csv/keep").read_text() == "k"
    assert partials(local) == []


def test_get_missing_remote_file_is_not_found(explicit: Served, local: Path) -> None:
    result = failed(
        run(explicit, "get", explicit.url("/out/none.csv"), local), ExitCode.NOT_FOUND, "550"
    )
    assert "/out/none.csv" in result.stderr
    assert list(local.iterdir()) == []


# --- put -----------------------------------------------------------------------------------


def test_put_into_a_directory_keeps_the_local_name(explicit: Served, local: Path) -> None:
    source = local / "report.csv"
    source.write_text("r\n1\n")
    result = ok(run(explicit, "put", source, explicit.url("/out/sub/")))
    assert (explicit.root / "out/sub/report.csv").read_text() == "r\n1\n"
    assert "-> /out/sub/report.csv" in result.stdout
    assert partials(explicit.root) == []


def test_put_onto_a_name(explicit: Served, local: Path) -> None:
    source = local / "report.csv"
    source.write_text("r\n1\n")
    ok(run(explicit, "put", source, explicit.url("/out/sub/final.csv")))
    assert (explicit.root / "out/sub/final.csv").read_text() == "r\n1\n"
    assert not (explicit.root / "out/sub/report.csv").exists()


def test_put_onto_an_existing_directory_name_goes_inside(explicit: Served, local: Path) -> None:
    source = local / "report.csv"
    source.write_text("r")
    ok(run(explicit, "put", source, explicit.url("/out/sub")))
    assert (explicit.root / "out/sub/report.csv").read_text() == "r"


def test_put_refuses_an_existing_remote_file(explicit: Served, local: Path) -> None:
    source = local / "a.csv"
    source.write_text("new")
    result = failed(
        run(explicit, "put", source, explicit.url("/out/")), ExitCode.TRANSFER, "already exists"
    )
    assert "--overwrite" in hint_of(result)
    assert (explicit.root / "out/a.csv").read_text() == "id\n1\n"
    ok(run(explicit, "put", source, explicit.url("/out/"), "--overwrite"))
    assert (explicit.root / "out/a.csv").read_text() == "new"
    assert partials(explicit.root) == []


def test_put_into_a_missing_directory_creates_it(explicit: Served, local: Path) -> None:
    source = local / "x.csv"
    source.write_text("x")
    result = run(explicit, "put", source, explicit.url("/nodir/deeper/x.csv"))
    assert result.exit_code == 0, result.output
    assert (explicit.root / "nodir/deeper/x.csv").read_text() == "x"
    assert partials(explicit.root) == []


@pytest.mark.usefixtures("restore_logging")
def test_put_onto_a_remote_directory_is_refused_before_upload(
    explicit: Served, local: Path
) -> None:
    # A non-empty directory stands at out/sub/data.csv: --overwrite cannot replace it.
    (explicit.root / "out/sub/data.csv").mkdir()
    (explicit.root / "out/sub/data.csv/keep").write_text("k")
    source = local / "data.csv"
    source.write_text("payload")
    result = run(explicit, "put", source, explicit.url("/out/sub"), "--overwrite", "-v")
    assert result.exit_code == ExitCode.TRANSFER, result.output
    assert "STOR" not in result.stderr
    assert "data.csv is a directory at the destination" in result.stderr
    assert (explicit.root / "out/sub/data.csv/keep").read_text() == "k"
    assert partials(explicit.root) == []


# --- mv, rm, mkdir, rmdir ------------------------------------------------------------------


def test_mv_relative_and_absolute(explicit: Served) -> None:
    ok(run(explicit, "mv", explicit.url("/out/a.csv"), "z.csv"))
    assert (explicit.root / "out/z.csv").read_text() == "id\n1\n"
    assert not (explicit.root / "out/a.csv").exists()
    result = ok(run(explicit, "mv", explicit.url("/out/z.csv"), "/out/sub/y.csv", "--json"))
    assert json.loads(result.stdout) == {
        "ok": True,
        "command": "mv",
        "path": "/out/z.csv",
        "new_path": "/out/sub/y.csv",
    }
    assert (explicit.root / "out/sub/y.csv").exists()
    assert not (explicit.root / "out/z.csv").exists()


def test_mv_missing_source_is_not_found(explicit: Served) -> None:
    failed(run(explicit, "mv", explicit.url("/out/none"), "x"), ExitCode.NOT_FOUND, "/out/none")


def test_rm(explicit: Served) -> None:
    ok(run(explicit, "rm", explicit.url("/out/c.txt")))
    assert not (explicit.root / "out/c.txt").exists()
    assert (explicit.root / "out/a.csv").exists()
    failed(run(explicit, "rm", explicit.url("/out/c.txt")), ExitCode.NOT_FOUND, "/out/c.txt")


def test_rm_of_the_root_is_refused(explicit: Served) -> None:
    failed(run(explicit, "rm", explicit.url("/")), ExitCode.USAGE, "needs a path")


def test_mkdir_and_rmdir(explicit: Served) -> None:
    result = ok(run(explicit, "mkdir", explicit.url("/new"), "--json"))
    assert json.loads(result.stdout) == {"ok": True, "command": "mkdir", "path": "/new"}
    assert (explicit.root / "new").is_dir()
    ok(run(explicit, "rmdir", explicit.url("/new")))
    assert not (explicit.root / "new").exists()


def test_rmdir_of_a_non_empty_directory_fails_and_says_why(explicit: Served) -> None:
    result = run(explicit, "rmdir", explicit.url("/out"))
    assert result.exit_code not in (0, ExitCode.USAGE), result.output
    assert result.stderr.startswith("ferryman: error: RMD /out")
    assert "not empty" in result.stderr.lower()
    assert (explicit.root / "out/a.csv").exists()


@pytest.mark.parametrize(("command", "path"), [("rmdir", "/out"), ("mkdir", "/out")])
def test_refusals_that_are_not_not_found_do_not_exit_6(
    explicit: Served, command: str, path: str
) -> None:
    result = run(explicit, command, explicit.url(path))
    assert result.exit_code == ExitCode.TRANSFER, result.output
    assert "check the path" not in result.stderr


# --- implicit TLS and plain FTP ------------------------------------------------------------


@pytest.mark.parametrize(("tls", "scheme"), [("implicit", "ftps://"), ("none", "ftp://")])
def test_round_trip_over_implicit_tls_and_plain_ftp(
    ftp_server: ServerFactory, local: Path, tls: str, scheme: str
) -> None:
    served = ftp_server(tls)
    assert served.url("/").startswith(scheme)
    source = local / "up.csv"
    source.write_text("u\n1\n")
    ok(run(served, "mkdir", served.url("/in")))
    ok(run(served, "put", source, served.url("/in/")))
    assert (served.root / "in/up.csv").read_text() == "u\n1\n"
    listed = ok(run(served, "ls", served.url("/in/"), "--json"))
    assert [e["name"] for e in json.loads(listed.stdout)["entries"]] == ["up.csv"]
    down = local / "down"
    down.mkdir()
    ok(run(served, "get", served.url("/in/up.csv"), down))
    assert (down / "up.csv").read_text() == "u\n1\n"
    ok(run(served, "mv", served.url("/in/up.csv"), "moved.csv"))
    ok(run(served, "rm", served.url("/in/moved.csv")))
    ok(run(served, "rmdir", served.url("/in")))
    assert list(served.root.iterdir()) == []
    assert partials(local) == []


def test_ca_file_with_plain_ftp_is_a_usage_error(ftp_server: ServerFactory) -> None:
    plain = ftp_server("none")
    explicit = ftp_server("explicit")
    result = invoke("ls", plain.url("/"), "--password-env", "FM_PW", *FAST, *ca_of(explicit))
    failed(result, ExitCode.USAGE, "only apply to TLS")


# --- bad inputs ----------------------------------------------------------------------------


def test_wrong_password_is_an_authentication_error(explicit: Served) -> None:
    result = run(explicit, "ls", explicit.url("/"), env={"FM_PW": "not-the-password"})
    failed(result, ExitCode.AUTHENTICATION, "530", "login as demo")
    assert "not-the-password" not in result.output


def test_untrusted_certificate_names_its_fingerprint(explicit: Served) -> None:
    assert explicit.server.pki is not None
    fingerprint = explicit.server.pki.server_fingerprint
    result = invoke("ls", explicit.url("/"), "--password-env", "FM_PW", *FAST)
    failed(result, ExitCode.TLS, "not trusted")
    hint = hint_of(result)
    assert fingerprint in hint and "--fingerprint" in hint


def test_pinned_fingerprint_works_without_ca_file(explicit: Served) -> None:
    assert explicit.server.pki is not None
    fingerprint = explicit.server.pki.server_fingerprint
    args = ["--password-env", "FM_PW", *FAST, "--fingerprint", fingerprint]
    result = ok(invoke("ls", explicit.url("/out/"), *args))
    assert "a.csv" in result.stdout


def test_wrong_pinned_fingerprint_is_refused(explicit: Served) -> None:
    wrong = ":".join(["AB"] * 32)
    result = invoke(
        "ls", explicit.url("/"), "--password-env", "FM_PW", *FAST, "--fingerprint", wrong
    )
    failed(result, ExitCode.TLS, wrong)


def test_implicit_scheme_against_the_explicit_server_hints_at_ftpes(explicit: Served) -> None:
    url = explicit.url("/").replace("ftpes://", "ftps://", 1)
    result = failed(run(explicit, "ls", url), ExitCode.TLS, "TLS")
    assert "ftpes://" in hint_of(result)


def test_unreachable_port_is_a_connection_error(explicit: Served) -> None:
    port = closed_port()
    url = f"ftpes://demo@127.0.0.1:{port}/"
    result = failed(run(explicit, "ls", url), ExitCode.CONNECTION, "refused the connection")
    assert "server running" in hint_of(result)
    error = next(line for line in result.stderr.splitlines() if "error:" in line)
    assert error.count(f"127.0.0.1:{port}") == 1  # the server is named once


def test_crlf_in_a_path_is_refused_before_anything_is_sent(explicit: Served) -> None:
    result = run(explicit, "rm", explicit.url("/out/a.csv%0d%0aDELE%20/out/b.csv"))
    failed(result, ExitCode.USAGE, "contains a CR")
    assert (explicit.root / "out/a.csv").exists() and (explicit.root / "out/b.csv").exists()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1/", "unknown scheme 'http'"),
        ("127.0.0.1/out", "neither a URL nor NAME:PATH"),
        ("ftpes://127.0.0.1:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_are_usage_errors(url: str, words: str) -> None:
    failed(invoke("ls", url, *FAST), ExitCode.USAGE, words)


def test_negative_timeout_is_a_click_usage_error(explicit: Served) -> None:
    result = invoke("ls", explicit.url("/"), "--timeout", "-1")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "Invalid value for '--timeout'" in result.stderr
    assert result.stdout == ""


def test_missing_remote_directory_is_not_found(explicit: Served) -> None:
    failed(run(explicit, "ls", explicit.url("/nope/")), ExitCode.NOT_FOUND, "/nope/", "550")


def test_unset_password_variable_is_a_usage_error(explicit: Served) -> None:
    result = run(explicit, "ls", explicit.url("/"), env={"FM_PW": None})
    failed(result, ExitCode.USAGE, "environment variable FM_PW")


def test_password_file(explicit: Served, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    result = invoke(
        "ls", explicit.url("/out/"), "--password-file", secret, *FAST, *ca_of(explicit), env={}
    )
    assert "a.csv" in ok(result).stdout


# --- named connections ---------------------------------------------------------------------


def write_connections(served: Served, tmp_path: Path) -> Path:
    """A connections file with password_env and a ca_file relative to the file."""
    assert served.server.pki is not None
    folder = tmp_path / "conf"
    (folder / "certs").mkdir(parents=True)
    (folder / "certs/ca.pem").write_bytes(served.server.pki.ca_cert.read_bytes())
    file = folder / "connections.yaml"
    file.write_text(
        "partner:\n"
        f"  url: {served.url('/')}\n"
        "  password_env: FM_PW\n"
        "  ca_file: certs/ca.pem\n"
        "  timeout: 5\n"
        "  retries: 0\n"
    )
    return file


def test_named_connection_via_option(explicit: Served, tmp_path: Path, local: Path) -> None:
    file = write_connections(explicit, tmp_path)
    result = ok(invoke("ls", "partner:/out/*.csv", "--connections", file))
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["a.csv", "b.csv"]
    ok(invoke("get", "partner:/out/a.csv", local, "--connections", file))
    assert (local / "a.csv").read_text() == "id\n1\n"
    ok(invoke("put", local / "a.csv", "partner:/out/sub/", "--connections", file))
    assert (explicit.root / "out/sub/a.csv").read_text() == "id\n1\n"


def test_named_connection_via_environment(explicit: Served, tmp_path: Path) -> None:
    file = write_connections(explicit, tmp_path)
    env = {**ENV, "FERRYMAN_CONNECTIONS": str(file)}
    result = ok(invoke("ls", "partner:/out/", env=env))
    assert "c.txt" in result.stdout
    ok(invoke("mkdir", "partner:/made", env=env))
    assert (explicit.root / "made").is_dir()


def test_unknown_connection_name(explicit: Served, tmp_path: Path) -> None:
    file = write_connections(explicit, tmp_path)
    result = failed(
        invoke("ls", "nobody:/", "--connections", file), ExitCode.USAGE, "'nobody'", str(file)
    )
    assert "known: partner" in hint_of(result)


def test_named_connection_without_a_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    failed(
        invoke("ls", "partner:/", "--connections", missing),
        ExitCode.USAGE,
        "no connections file",
        str(missing),
    )


@pytest.mark.parametrize(
    ("text", "line_col", "words"),
    [
        ("partner:\n  url: ftpes://h/\n  url: ftpes://g/\n", "3:3", "duplicate"),
        ("partner:\n  url: ftpes://h/\n  timeout: soon\n", "3:3", "timeout"),
        ("partner:\n  host: h\n  tiemout: 3\n", "3:3", "unknown setting"),
        ("partner:\n  url: ftpes://h/\n  - x\n", "3:3", "found '-'"),
    ],
)
def test_malformed_connections_file_names_file_line_column(
    tmp_path: Path, text: str, line_col: str, words: str
) -> None:
    file = tmp_path / "connections.yaml"
    file.write_text(text)
    result = invoke("ls", "partner:/", "--connections", file)
    failed(result, ExitCode.USAGE, f"{file}:{line_col}", words)


# --- ferryman test -------------------------------------------------------------------------

CHECKS = ["tcp", "greeting", "tls", "login", "features", "data-epsv", "data-pasv", "refusals"]


def test_test_command_passes_every_check(explicit: Served) -> None:
    result = ok(run(explicit, "test", explicit.url("/")))
    lines = result.stdout.splitlines()
    assert lines[0] == f"Testing ftpes://demo@127.0.0.1:{explicit.server.port}"
    marks = [line.split()[:2] for line in lines[1:]]
    assert marks == [["ok", name] for name in CHECKS]
    assert "logged in as demo (env FM_PW)" in result.stdout


def test_test_command_json(explicit: Served) -> None:
    result = ok(run(explicit, "test", explicit.url("/"), "--json"))
    doc = json.loads(result.stdout)
    assert doc["ok"] is True
    assert [c["name"] for c in doc["checks"]] == CHECKS
    assert all(c["ok"] and c["exit_code"] == 0 for c in doc["checks"])


def test_test_command_with_a_named_connection(explicit: Served, tmp_path: Path) -> None:
    file = write_connections(explicit, tmp_path)
    result = ok(invoke("test", "partner", "--connections", file))
    assert "FAIL" not in result.stdout and "ok   data-pasv" in result.stdout


def test_test_command_unreachable_port(explicit: Served) -> None:
    result = run(explicit, "test", f"ftpes://demo@127.0.0.1:{closed_port()}")
    assert result.exit_code == ExitCode.CONNECTION, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split()[:2] == ["FAIL", "tcp"]
    assert lines[2].strip().startswith("hint: check the host and port")


def test_test_command_wrong_password(explicit: Served) -> None:
    result = run(explicit, "test", explicit.url("/"), env={"FM_PW": "not-the-password"})
    assert result.exit_code == ExitCode.AUTHENTICATION, result.output
    assert "FAIL login" in result.stdout and "530" in result.stdout
    assert "not-the-password" not in result.output
    assert "data-epsv" not in result.stdout


def test_test_command_untrusted_certificate(explicit: Served) -> None:
    assert explicit.server.pki is not None
    result = invoke("test", explicit.url("/"), "--password-env", "FM_PW", *FAST)
    assert result.exit_code == ExitCode.TLS, result.output
    assert "FAIL greeting" in result.stdout
    assert f"--fingerprint {explicit.server.pki.server_fingerprint}" in result.stdout


def test_test_command_implicit_on_explicit(explicit: Served) -> None:
    url = explicit.url("/").replace("ftpes://", "ftps://", 1)
    result = run(explicit, "test", url)
    assert result.exit_code == ExitCode.TLS, result.output
    assert "use ftpes://" in result.stdout


# --- transcript ----------------------------------------------------------------------------


@pytest.mark.usefixtures("restore_logging")
def test_verbose_prints_the_masked_transcript(explicit: Served) -> None:
    result = ok(run(explicit, "ls", explicit.url("/out/"), "-v"))
    assert "> USER demo" in result.stderr
    assert "> PASS ****" in result.stderr
    assert "< 230" in result.stderr
    assert PASSWORD not in result.stderr
    assert "a.csv" in result.stdout and "> USER" not in result.stdout


@pytest.mark.usefixtures("restore_logging")
def test_log_file_gets_the_transcript(explicit: Served, tmp_path: Path) -> None:
    log = tmp_path / "logs/transcript.log"
    result = ok(run(explicit, "ls", explicit.url("/out/"), "--log", log))
    text = log.read_text()
    assert "> USER demo" in text and "> PASS ****" in text and "MLSD /out/" in text
    assert PASSWORD not in text
    assert result.stderr == ""  # without -v the transcript goes only to the file


@pytest.mark.usefixtures("restore_logging")
def test_password_in_a_url_never_shows(explicit: Served, tmp_path: Path) -> None:
    secret_url = explicit.url("/out/").replace("demo@", f"demo:{PASSWORD}@", 1)
    log = tmp_path / "t.log"
    result = ok(invoke("ls", secret_url, *FAST, *ca_of(explicit), "-v", "--log", log, env={}))
    assert "> PASS ****" in result.stderr and "a.csv" in result.stdout
    assert PASSWORD not in log.read_text()
    # Error messages that quote the URL mask it too.
    for bad, code in [
        (secret_url.replace("ftpes://", "http://", 1), ExitCode.USAGE),
        (re.sub(r":\d+/", ":99999/", secret_url), ExitCode.USAGE),
        (secret_url.replace("/out/", "/out/%0d%0a"), ExitCode.USAGE),
    ]:
        result = failed(invoke("ls", bad, *FAST, env={}), code, "ferryman: error:")
        assert PASSWORD not in result.output
    wrong_url = secret_url.replace(PASSWORD, "Wrong-secret-9")
    result = failed(
        invoke("ls", wrong_url, *FAST, *ca_of(explicit), "-v", env={}), ExitCode.AUTHENTICATION
    )
    assert "Wrong-secret-9" not in result.output


# --- JSON errors ---------------------------------------------------------------------------


def test_json_error_document_when_invoked_in_process(explicit: Served) -> None:
    result = run(explicit, "ls", explicit.url("/nope.csv"), "--json")
    assert result.exit_code == ExitCode.NOT_FOUND
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["exit_code"] == ExitCode.NOT_FOUND


def _subprocess(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FM_PW": PASSWORD}
    env.pop("FERRYMAN_CONNECTIONS", None)
    return subprocess.run(
        [sys.executable, "-m", "ferryman", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_json_error_document_from_the_real_command(explicit: Served) -> None:
    args = ["--password-env", "FM_PW", *FAST, *ca_of(explicit), "--json"]
    done = _subprocess("ls", explicit.url("/nope.csv"), *args)
    assert done.returncode == ExitCode.NOT_FOUND, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is False and doc["exit_code"] == ExitCode.NOT_FOUND
    assert "ferryman: error:" in done.stderr


def test_get_json_failure_is_one_json_document(explicit: Served, local: Path) -> None:
    (local / "a.csv").write_text("exists")
    args = ["--password-env", "FM_PW", *FAST, *ca_of(explicit), "--json"]
    done = _subprocess("get", explicit.url("/out/*.csv"), local, *args)
    assert done.returncode == ExitCode.TRANSFER, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is False
    assert "a.csv" in json.dumps(doc)


# --- demo, help, version -------------------------------------------------------------------


@pytest.mark.usefixtures("restore_logging")
def test_demo(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = ok(invoke("demo", "--workdir", workdir))
    out = result.stdout
    assert "resumed on every data connection: yes" in out
    assert "Run 1 (id 1): succeeded; took 3 new file(s), loaded 300 row(s)" in out
    assert "Run 2 (id 2): succeeded; took 1 new file(s), loaded 100 row(s)" in out
    logs = sorted((workdir / "logs/demo-orders").glob("*.log"))
    assert len(logs) == 2 and all(str(log) in out for log in logs)
    for log in logs:
        text = log.read_text()
        words = re.findall(r"PASS (\S+)", text)
        assert words, "the transcript has no PASS line"
        assert all(set(word) == {"*"} for word in words), words
    reports = sorted((workdir / "server/inbound").glob("report_run*.csv"))
    assert [r.name for r in reports] == ["report_run1.csv", "report_run2.csv"]
    assert reports[1].read_text().count("\n") == 5  # header + four days
    archived = sorted(p.name for p in (workdir / "server/outbound/archive").iterdir())
    assert len(archived) == 4
    # the file put back unchanged was not taken again
    assert [p.name for p in (workdir / "server/outbound").glob("*.csv")] == [
        "orders_2026-11-20.csv"
    ]
    # the output and the job file say how to run it again (the demo's server is gone) ...
    command = f"ferryman demo --workdir {workdir}"
    assert out.splitlines()[-1] == f"The demo's server has stopped; to run it all again: {command}"
    job_text = (workdir / "demo-job.yaml").read_text(encoding="utf-8")
    assert f"#   {command}\n" in job_text and "while a server is up" not in job_text
    # ... and that works: a second demo starts afresh
    again = ok(invoke("demo", "--workdir", workdir))
    assert "Run 1 (id 1): succeeded; took 3 new file(s)" in again.stdout
    assert again.stdout.splitlines()[-1].endswith(command)


def test_help_lists_the_exit_codes() -> None:
    result = ok(invoke("--help"))
    assert "Exit codes:" in result.stdout
    labels = {
        ExitCode.OK: "ok",
        ExitCode.FAILURE: "other failure",
        ExitCode.USAGE: "usage/config",
        ExitCode.CONNECTION: "connection/time-out",
        ExitCode.AUTHENTICATION: "authentication",
        ExitCode.TLS: "TLS/cert/host key",
        ExitCode.NOT_FOUND: "not found",
        ExitCode.TRANSFER: "transfer failed",
        ExitCode.VERIFICATION: "verification failed",
        ExitCode.LOAD: "database load/export failed",
        ExitCode.LOCKED: "job already running (locked)",
        ExitCode.PGP: "OpenPGP key/passphrase",
    }
    assert set(labels) == set(ExitCode)
    for code, label in labels.items():
        assert f"{int(code)} {label}" in result.stdout
    for command in ["ls", "get", "put", "sync", "mv", "rm", "mkdir", "rmdir", "test", "demo"]:
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ferryman", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ferryman, version {__version__}"


def test_unwritable_local_paths_give_one_readable_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--workdir", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "ferryman: error:" in result.stderr and "Traceback" not in result.output


def test_start_up_loads_no_heavy_optional_module() -> None:
    """Every command pays for what ``ferryman.cli`` imports: bars (rich), certificate
    details (cryptography), YAML (ruamel) and SSH (asyncssh) load only when used."""
    code = (
        "import sys, ferryman.cli, ferryman.backends.ftp; "
        "print(sorted(m for m in ('rich', 'cryptography', 'ruamel.yaml', 'asyncssh', 'jinja2')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
