"""``ferryman get`` / ``put`` over in-process pyftpdlib: what a source names, filters, bad
input and its exit codes, overwrite policies, --dry-run, source actions, files still being
written, faults with the JSON summary, and a run killed with SIGKILL then run again.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console
from rich.progress import Progress

from ferryman.backends.base import Entry, EntryType
from ferryman.cli import cli
from ferryman.cli.progress import BarEvents, transfer_progress
from ferryman.errors import ExitCode
from ferryman.transfer import PARTIAL_SUFFIX, FileOutcome, Job, PlanItem, Status
from ferryman.transfer.copy import identity_tag, partial_name
from tests.servers.faulty_ftpd import DataFault, FaultyFtpServer
from tests.servers.scripted import Reply, ScriptedFtpServer

from .conftest import PASSWORD, Served, ServerFactory

pytestmark = pytest.mark.timeout(60)

ENV = {"FM_PW": PASSWORD}


def invoke(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], env=ENV if env is None else env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert PASSWORD not in result.output
    return result


def run(served: Served, *args: str | Path) -> Result:
    extra = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "5"]
    if served.server.pki is not None:
        extra += ["--ca-file", str(served.server.pki.ca_cert)]
    return invoke(*args, *extra)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return result


def failed(result: Result, code: int, *words: str) -> Result:
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}\n{result.output}"
    for word in words:
        assert word in result.stderr, f"{word!r} not in stderr:\n{result.stderr}"
    return result


def hint(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("ferryman: hint:")]
    assert lines, result.stderr
    return lines[0]


def partials(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob(f"*{PARTIAL_SUFFIX}")]


def state(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every path below ``root`` with its content and modification time."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def set_age(path: Path, age: timedelta) -> None:
    when = (datetime.now(UTC) - age).timestamp()
    os.utime(path, (when, when))


@pytest.fixture
def served(ftp_server: ServerFactory) -> Served:
    """Plain FTP with /out/{a.csv, b.csv, c.txt, 2026/d.csv, 2026/old/e.csv, empty/}."""
    server = ftp_server("none")
    out = server.root / "out"
    (out / "2026/old").mkdir(parents=True)
    (out / "empty").mkdir()
    (out / "a.csv").write_bytes(b"id\n1\n")
    (out / "b.csv").write_bytes(b"id\n2\n22\n")
    (out / "c.txt").write_bytes(b"text")
    (out / "2026/d.csv").write_bytes(b"d" * 10240)
    (out / "2026/old/e.csv").write_bytes(b"e" * 10239)
    return server


@pytest.fixture
def local(tmp_path: Path) -> Path:
    path = tmp_path / "local"
    path.mkdir()
    return path


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[FaultyFtpServer] = []

    def start(faults: list[DataFault], **options: object) -> Served:
        root = tmp_path / f"faulty{len(started)}"
        root.mkdir()
        server = FaultyFtpServer(root, tls="none", password=PASSWORD, faults=faults, **options)  # type: ignore[arg-type]
        started.append(server.start())
        return Served(server, root)

    yield start
    for server in started:
        server.stop()


# --- what a source names ----------------------------------------------------------------------


def test_get_one_file_with_the_json_summary(served: Served, local: Path) -> None:
    result = ok(run(served, "get", served.url("/out/a.csv"), local, "--json"))
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and doc["dry_run"] is False
    assert doc["counts"] == {"copied": 1, "skipped": 0, "failed": 0, "planned": 0, "deleted": 0}
    assert doc["bytes"] == 5 and doc["skipped_names"] == [] and doc["errors"] == []
    [entry] = doc["files"]
    assert entry["source"] == "/out/a.csv" and entry["target"] == str(local / "a.csv")
    assert entry["status"] == "copied" and entry["reason"] == "new"
    assert entry["bytes"] == 5 and entry["size"] == 5
    assert isinstance(entry["seconds"], float) and entry["seconds"] >= 0
    assert entry["retries"] == 0 and entry["resumed_from"] == 0
    assert entry["verified"] == "size"
    assert entry["source_action"] is None and entry["error"] is None
    assert (local / "a.csv").read_bytes() == b"id\n1\n"
    assert sorted(p.name for p in local.iterdir()) == ["a.csv"]


def test_get_into_the_current_directory_by_default(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    args = ["get", served.url("/out/*.csv"), "--password-env", "FM_PW", "--retries", "0"]
    result = CliRunner().invoke(cli, args, env=ENV)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in here.iterdir()) == ["a.csv", "b.csv"]
    assert (here / "a.csv").read_bytes() == b"id\n1\n"


def test_get_a_glob_prints_one_line_per_file(served: Served, local: Path) -> None:
    result = ok(run(served, "get", served.url("/out/*.csv"), local))
    lines = result.stdout.splitlines()
    assert lines[0].startswith("copied   /out/a.csv -> ") and "5 bytes" in lines[0]
    assert lines[1].startswith("copied   /out/b.csv -> ") and "size" in lines[1]
    assert lines[-1].startswith("2 copied; 13 bytes in ")
    assert sorted(p.name for p in local.iterdir()) == ["a.csv", "b.csv"]


def test_get_a_dated_glob(served: Served, local: Path, tmp_path: Path) -> None:
    out = served.root / "out"
    for name in ["orders_2026-01-05.txt", "orders_2026-11-30_b.txt", "orders_2026-1-5.txt"]:
        (out / name).write_bytes(name.encode())
    wanted = ["orders_2026-01-05.txt", "orders_2026-11-30_b.txt"]
    # in a URL '?' starts a query: it is refused with a hint, and works percent-encoded
    refused = run(served, "get", served.url("/out/orders_2026-??-*.txt"), local)
    assert refused.exit_code == ExitCode.USAGE and "%3F" in hint(refused)
    ok(run(served, "get", served.url("/out/orders_2026-%3F%3F-*.txt"), local / "url"))
    assert sorted(p.name for p in (local / "url").iterdir()) == wanted
    # a named connection takes the glob as written
    file = connections_file(served, tmp_path, timeout=5, retries=0)
    ok(invoke("get", "srv:/out/orders_2026-??-*.txt", local / "named", "--connections", file))
    assert sorted(p.name for p in (local / "named").iterdir()) == wanted
    assert (local / "named/orders_2026-01-05.txt").read_bytes() == b"orders_2026-01-05.txt"


def test_get_recursive_copies_the_contents_and_empty_directories(
    served: Served, local: Path
) -> None:
    ok(run(served, "get", served.url("/out"), local / "copy", "-r"))
    copy = local / "copy"
    assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == [
        "2026",
        "2026/d.csv",
        "2026/old",
        "2026/old/e.csv",
        "a.csv",
        "b.csv",
        "c.txt",
        "empty",
    ]
    assert (copy / "2026/old/e.csv").read_bytes() == b"e" * 10239


def test_put_recursive_to_the_server(served: Served, local: Path) -> None:
    (local / "tree/x/y").mkdir(parents=True)
    (local / "tree/x/y/z.bin").write_bytes(os.urandom(300_000))
    (local / "tree/top.txt").write_bytes(b"top")
    (local / "tree/hollow").mkdir()
    ok(run(served, "put", local / "tree", served.url("/in/"), "-r", "-P", "3"))
    assert state(served.root / "in").keys() == {
        "hollow",
        "top.txt",
        "x",
        "x/y",
        "x/y/z.bin",
    }
    assert (served.root / "in/x/y/z.bin").read_bytes() == (local / "tree/x/y/z.bin").read_bytes()
    assert partials(served.root) == []


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--include", "*.csv"], ["2026/d.csv", "2026/old/e.csv", "a.csv", "b.csv"]),
        (["--include", "2026/*.csv", "--exclude", "old"], ["2026/d.csv"]),
        (["--exclude", "2026"], ["a.csv", "b.csv", "c.txt"]),
        (["--exclude", "*.csv"], ["c.txt"]),
        (["--min-size", "10K"], ["2026/d.csv"]),
        (["--max-size", "10239", "--include", "*.csv"], ["2026/old/e.csv", "a.csv", "b.csv"]),
    ],
)
def test_filters(served: Served, local: Path, options: list[str], expected: list[str]) -> None:
    ok(run(served, "get", served.url("/out"), local, "-r", *options))
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert files == expected


def test_time_filters(served: Served, local: Path) -> None:
    out = served.root / "out"
    set_age(out / "a.csv", timedelta(minutes=30))
    set_age(out / "b.csv", timedelta(days=20))
    set_age(out / "c.txt", timedelta(days=3))
    ok(run(served, "get", served.url("/out/*"), local / "fresh", "--newer-than", "2h"))
    assert sorted(p.name for p in (local / "fresh").iterdir()) == ["a.csv"]
    cutoff = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    ok(run(served, "get", served.url("/out/*"), local / "old", "--older-than", cutoff))
    assert sorted(p.name for p in (local / "old").iterdir()) == ["b.csv"]
    window = ["--newer-than", "7d", "--older-than", "1d"]
    ok(run(served, "get", served.url("/out/*"), local / "window", *window))
    assert sorted(p.name for p in (local / "window").iterdir()) == ["c.txt"]


# --- bad input ----------------------------------------------------------------------------------


def test_a_wildcard_in_a_directory_part(served: Served, local: Path) -> None:
    result = failed(run(served, "get", served.url("/o*/*.csv"), local), ExitCode.USAGE, "wildcards")
    assert "name the directory literally" in hint(result)
    assert list(local.iterdir()) == []


def test_a_directory_without_recursive(served: Served, local: Path) -> None:
    result = failed(
        run(served, "get", served.url("/out"), local), ExitCode.USAGE, "/out is a directory"
    )
    assert "--recursive" in hint(result)
    assert list(local.iterdir()) == []


def test_a_local_directory_without_recursive(served: Served, local: Path) -> None:
    failed(run(served, "put", local, served.url("/in/")), ExitCode.USAGE, "is a directory")
    assert not (served.root / "in").exists()


def test_no_match(served: Served, local: Path) -> None:
    result = failed(
        run(served, "get", served.url("/out/*.xml"), local),
        ExitCode.NOT_FOUND,
        "no file in /out matches *.xml",
    )
    assert "case matters" in hint(result)
    assert list(local.iterdir()) == []


def test_a_missing_directory_in_a_glob(served: Served, local: Path) -> None:
    failed(run(served, "get", served.url("/nope/*.csv"), local), ExitCode.NOT_FOUND, "/nope")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--min-size", "ten"], "'ten' is not a size"),
        (["--max-size", "1.2.3"], "is not a size"),
        (["--newer-than", "yesterday"], "'yesterday' is neither an age nor a date"),
        (["--older-than", "2026-13-45"], "is neither an age nor a date"),
        (["--delete-source", "--move-source-to", "/arch"], "not both"),
        (["--if-exists", "sometimes"], "Invalid value for '--if-exists'"),
        (["--parallel", "0"], "Invalid value for '-P' / '--parallel'"),
    ],
)
def test_bad_options_are_usage_errors(
    served: Served, local: Path, options: list[str], words: str
) -> None:
    result = run(served, "get", served.url("/out/*.csv"), local, *options)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert words in result.stderr
    assert list(local.iterdir()) == []
    assert (served.root / "out/a.csv").exists()


# --- overwrite policies -------------------------------------------------------------------------


def test_fail_is_the_default(served: Served, local: Path) -> None:
    (local / "a.csv").write_bytes(b"keep me")
    result = failed(
        run(served, "get", served.url("/out/*.csv"), local, "--json"),
        ExitCode.TRANSFER,
        "already exists at the destination",
    )
    assert "--if-exists" in hint(result)
    doc = json.loads(result.stdout)
    files = {Path(f["target"]).name: f for f in doc["files"]}
    assert files["a.csv"]["status"] == "failed"
    assert files["a.csv"]["error"]["error"] == "TargetExistsError"
    assert files["a.csv"]["error"]["exit_code"] == ExitCode.TRANSFER
    assert files["b.csv"]["status"] == "copied"
    assert (local / "a.csv").read_bytes() == b"keep me"
    assert partials(local) == []


def test_skip_overwrite_newer_different(served: Served, local: Path) -> None:
    out = served.root / "out"
    (local / "a.csv").write_bytes(b"keep me")
    ok(run(served, "get", served.url("/out/a.csv"), local, "--if-exists", "skip"))
    assert (local / "a.csv").read_bytes() == b"keep me"
    # newer: the local copy is newer than the server's file: kept
    set_age(out / "a.csv", timedelta(hours=3))
    result = ok(run(served, "get", served.url("/out/a.csv"), local, "--if-exists", "newer"))
    assert "skipped" in result.stdout and "destination is as new" in result.stdout
    assert (local / "a.csv").read_bytes() == b"keep me"
    set_age(local / "a.csv", timedelta(days=1))
    ok(run(served, "get", served.url("/out/a.csv"), local, "--if-exists", "newer"))
    assert (local / "a.csv").read_bytes() == b"id\n1\n"
    # different: same size and time (copied with --preserve-mtime): skipped; then changed
    ok(run(served, "get", served.url("/out/b.csv"), local, "--preserve-mtime"))
    result = ok(
        run(
            served,
            "get",
            served.url("/out/b.csv"),
            local,
            "--if-exists",
            "different",
            "--preserve-mtime",
        )
    )
    assert "same size and time" in result.stdout
    (out / "b.csv").write_bytes(b"id\n3\n333\n999\n")
    ok(run(served, "get", served.url("/out/b.csv"), local, "--if-exists", "different"))
    assert (local / "b.csv").read_bytes() == b"id\n3\n333\n999\n"
    (out / "b.csv").write_bytes(b"final")
    ok(run(served, "get", served.url("/out/b.csv"), local, "--overwrite"))
    assert (local / "b.csv").read_bytes() == b"final"
    assert partials(local) == []


def test_resume_via_the_command(served: Served, local: Path) -> None:
    payload = os.urandom(1_500_000)
    (served.root / "out/big.bin").write_bytes(payload)
    set_age(served.root / "out/big.bin", timedelta(hours=1))
    tag = identity_tag(served.url(""), "/out/big.bin", len(payload))
    (local / partial_name("big.bin", tag)).write_bytes(payload[:600_000])
    result = ok(run(served, "get", served.url("/out/big.bin"), local, "--if-exists", "resume"))
    assert "resumed at 600000" in result.stdout
    assert (local / "big.bin").read_bytes() == payload
    assert partials(local) == []
    # a shorter file under the final name on the server: continued, published complete
    (local / "up.bin").write_bytes(payload)
    set_age(local / "up.bin", timedelta(hours=1))
    (served.root / "in").mkdir()
    (served.root / "in/up.bin").write_bytes(payload[:200_000])
    result = ok(
        run(served, "put", local / "up.bin", served.url("/in/"), "--if-exists", "resume", "--json")
    )
    [entry] = json.loads(result.stdout)["files"]
    assert entry["resumed_from"] == 200_000 and entry["reason"] == "resuming at byte 200000"
    assert (served.root / "in/up.bin").read_bytes() == payload
    assert partials(served.root) == []


# --- dry run ------------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_changes_nothing(served: Served, local: Path) -> None:
    (local / "dest").mkdir()
    (local / "dest/a.csv").write_bytes(b"exists")
    server_before, local_before = state(served.root), state(local)
    result = ok(
        run(
            served,
            "get",
            served.url("/out"),
            local / "dest",
            "-r",
            "--dry-run",
            "--if-exists",
            "skip",
            "--delete-source",
        )
    )
    lines = result.stdout.splitlines()
    assert "skipped  /out/a.csv -> " in lines[0] and "(exists)" in lines[0]
    planned = [line for line in lines if line.startswith("planned  ")]
    assert len(planned) == 4
    assert any("/out/2026/old/e.csv -> " in line and "(new)" in line for line in planned)
    assert lines[-1].startswith("1 skipped, 4 planned; 0 bytes")
    assert state(served.root) == server_before
    assert state(local) == local_before
    doc = json.loads(
        ok(
            run(
                served,
                "put",
                local / "dest",
                served.url("/out/"),
                "-r",
                "--dry-run",
                "--json",
                "--overwrite",
            )
        ).stdout
    )
    assert doc["dry_run"] is True and doc["counts"]["planned"] == 1
    assert state(served.root) == server_before


# --- after a verified copy ----------------------------------------------------------------------


def test_delete_source_on_the_server_and_on_the_disk(served: Served, local: Path) -> None:
    result = ok(run(served, "get", served.url("/out/*.csv"), local, "--delete-source"))
    assert result.stdout.count("source deleted") == 2
    assert sorted(p.name for p in (served.root / "out").iterdir()) == ["2026", "c.txt", "empty"]
    assert (local / "b.csv").read_bytes() == b"id\n2\n22\n"
    ok(run(served, "put", local / "a.csv", served.url("/in/"), "--delete-source"))
    assert not (local / "a.csv").exists()
    assert (served.root / "in/a.csv").read_bytes() == b"id\n1\n"


def test_delete_source_never_after_a_failed_copy(served: Served, local: Path) -> None:
    (local / "a.csv").write_bytes(b"in the way")
    failed(
        run(served, "get", served.url("/out/a.csv"), local, "--delete-source"), ExitCode.TRANSFER
    )
    assert (served.root / "out/a.csv").read_bytes() == b"id\n1\n"
    assert (local / "a.csv").read_bytes() == b"in the way"


def test_move_source_to_an_archive_keeps_both_on_a_collision(served: Served, local: Path) -> None:
    archive = served.root / "archive"
    (archive / "2026").mkdir(parents=True)
    (archive / "2026/d.csv").write_bytes(b"archived yesterday")
    result = ok(
        run(
            served,
            "get",
            served.url("/out"),
            local,
            "-r",
            "--include",
            "*.csv",
            "--move-source-to",
            "/archive",
            "--json",
        )
    )
    doc = json.loads(result.stdout)
    actions = {f["source"]: f["source_action"] for f in doc["files"]}
    assert actions["/out/a.csv"] == "moved to /archive/a.csv"
    assert actions["/out/2026/old/e.csv"] == "moved to /archive/2026/old/e.csv"
    assert actions["/out/2026/d.csv"].startswith("moved to /archive/2026/d.csv.")
    assert (archive / "2026/d.csv").read_bytes() == b"archived yesterday"
    stamped = [p for p in (archive / "2026").iterdir() if p.name.startswith("d.csv.")]
    assert len(stamped) == 1 and stamped[0].read_bytes() == b"d" * 10240
    assert sorted(p.name for p in (served.root / "out").rglob("*.csv")) == []
    assert (served.root / "out/c.txt").exists()
    assert (local / "2026/d.csv").read_bytes() == b"d" * 10240


def test_put_reports_links_as_skipped_and_does_not_follow_them(
    served: Served, local: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.pem").write_bytes(b"private")
    (local / "real.csv").write_bytes(b"r")
    (local / "link.csv").symlink_to(local / "real.csv")
    (local / "linked-dir").symlink_to(secret)
    result = ok(run(served, "put", local, served.url("/in/"), "-r"))
    assert "skipped  " + str(local / "link.csv") in result.stdout
    assert "symbolic link (links are not followed)" in result.stdout
    assert sorted(p.name for p in (served.root / "in").iterdir()) == ["real.csv"]


# --- files still being written ------------------------------------------------------------------


def test_stable_for_skips_a_file_still_growing(served: Served, local: Path) -> None:
    (local / "growing.log").write_bytes(b"start\n")
    (local / "done.log").write_bytes(b"done\n")
    stop = threading.Event()

    def append() -> None:
        with open(local / "growing.log", "ab") as log:
            while not stop.wait(0.01):
                log.write(b"line\n")
                log.flush()

    writer = threading.Thread(target=append)
    writer.start()
    try:
        result = run(
            served, "put", f"{local}/*.log", served.url("/in/"), "--stable-for", "0.3", "--json"
        )
    finally:
        stop.set()
        writer.join()
    ok(result)
    files = {Path(f["source"]).name: f for f in json.loads(result.stdout)["files"]}
    assert files["growing.log"]["status"] == "skipped"
    assert files["growing.log"]["reason"] == "still being written (changed within 0.3 s)"
    assert files["done.log"]["status"] == "copied"
    assert sorted(p.name for p in (served.root / "in").iterdir()) == ["done.log"]


# --- faults, exit codes, the JSON summary -------------------------------------------------------


def connections_file(served: Served, tmp_path: Path, **settings: object) -> Path:
    file = tmp_path / "connections.yaml"
    lines = ["srv:", f"  url: {served.url('/')}", "  password_env: FM_PW"]
    lines += [f"  {key}: {value}" for key, value in settings.items()]
    file.write_text("\n".join(lines) + "\n")
    return file


def test_a_drop_midway_is_retried_and_resumed(
    faulty: Callable[..., Served], local: Path, tmp_path: Path
) -> None:
    fault = DataFault("RETR", after=250_000, action="426")
    served = faulty([fault])
    payload = os.urandom(800_000)
    (served.root / "big.bin").write_bytes(payload)
    file = connections_file(served, tmp_path, retries=2, retry_delay=0.01, timeout=5)
    result = ok(invoke("get", "srv:/big.bin", local, "--connections", file, "--json"))
    [entry] = json.loads(result.stdout)["files"]
    assert entry["status"] == "copied" and entry["retries"] == 1
    assert entry["resumed_from"] == 250_000 and entry["bytes"] == 550_000
    assert (local / "big.bin").read_bytes() == payload
    assert fault.hits == 1


def test_a_drop_with_no_retries_left_fails_with_exit_3_or_7(
    faulty: Callable[..., Served], local: Path, tmp_path: Path
) -> None:
    faults = [
        DataFault("RETR", after=1000, action="426", times=None, name="a.bin"),
        DataFault("RETR", after=1000, action="421", times=None, name="b.bin"),
    ]
    served = faulty(faults)
    (served.root / "a.bin").write_bytes(os.urandom(50_000))
    (served.root / "b.bin").write_bytes(os.urandom(50_000))
    file = connections_file(served, tmp_path, retries=0, timeout=5)
    result = invoke("get", "srv:/a.bin", local / "a", "--connections", file, "--json")
    assert result.exit_code == ExitCode.TRANSFER, result.output  # 426: the transfer failed
    [entry] = json.loads(result.stdout)["files"]
    assert entry["error"]["reply_code"] == 426 and entry["error"]["retriable"] is True
    result = invoke("get", "srv:/b.bin", local / "b", "--connections", file)
    assert result.exit_code == ExitCode.CONNECTION, result.output  # 421: the session ended
    assert "421" in result.stderr
    assert not (local / "a/a.bin").exists() and not (local / "b/b.bin").exists()
    assert partials(local) == []


def test_a_size_mismatch_is_a_verification_failure(local: Path) -> None:
    def retr(server: ScriptedFtpServer, _arg: str) -> Reply:
        server.reply("150 Opening BINARY mode data connection.")
        server.send_data(b"short")
        return "226 Transfer complete."

    rules = {"SIZE": "213 1000", "RETR": retr}
    with ScriptedFtpServer(rules, timeout=5) as server:
        url = f"ftp://bob@{server.host}:{server.port}/f.bin"
        result = invoke(
            "get",
            url,
            local,
            "--password-env",
            "FM_PW",
            "--retries",
            "0",
            "--timeout",
            "3",
            "-P",
            "1",
            "--json",
            env={"FM_PW": "pw"},
        )
    assert result.exit_code == ExitCode.VERIFICATION, result.output
    [entry] = json.loads(result.stdout)["files"]
    assert entry["status"] == "failed"
    assert entry["error"]["error"] == "VerificationError" and entry["error"]["exit_code"] == 8
    assert "copied 5 bytes, but the source has 1000" in result.stderr
    assert list(local.iterdir()) == []


# --- a run killed midway ------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["default", "resume"])
def test_a_run_killed_midway_leaves_no_final_file_and_a_rerun_converges(
    faulty: Callable[..., Served], local: Path, tmp_path: Path, policy: str
) -> None:
    fault = DataFault("RETR", after=1_000_000, action="stall")
    served = faulty([fault])
    payload = os.urandom(3_000_000)
    (served.root / "big.bin").write_bytes(payload)
    set_age(served.root / "big.bin", timedelta(hours=1))
    env = {**os.environ, "FM_PW": PASSWORD}
    env.pop("FERRYMAN_CONNECTIONS", None)
    command = [
        sys.executable,
        "-m",
        "ferryman",
        "get",
        served.url("/big.bin"),
        str(local),
        "--password-env",
        "FM_PW",
        "--timeout",
        "30",
        "--retries",
        "0",
    ]
    part = local / partial_name("big.bin", identity_tag(served.url(""), "/big.bin", len(payload)))
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 30
            while not (part.exists() and part.stat().st_size >= 1_000_000):
                assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
                assert time.monotonic() < deadline, "the transfer never got going"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert not (local / "big.bin").exists()  # nothing under the final name
    assert part.read_bytes() == payload[:1_000_000]
    args = ["--if-exists", "resume"] if policy == "resume" else []
    result = ok(run(served, "get", served.url("/big.bin"), local, "--json", *args))
    [entry] = json.loads(result.stdout)["files"]
    assert entry["status"] == "copied"
    assert entry["resumed_from"] == (1_000_000 if policy == "resume" else 0)
    assert (local / "big.bin").read_bytes() == payload
    assert sorted(p.name for p in local.iterdir()) == ["big.bin"]
    # and once more: converged, nothing left to do
    again = ok(run(served, "get", served.url("/big.bin"), local, "--if-exists", "resume"))
    assert "skipped" in again.stdout and "(complete)" in again.stdout


# --- progress bars ------------------------------------------------------------------------------


def test_progress_bars_follow_the_events() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    with Progress(console=console, transient=True) as bar:
        events = BarEvents(bar, files=2, total_bytes=300)
        entry = Entry("a.bin", EntryType.FILE, size=200)
        job = Job(PlanItem("/out/a.bin", "a.bin", entry), "/in/a.bin")
        events.started(job, 0)
        events.advanced(job, 120)
        task = bar.tasks[events.tasks["/in/a.bin"]]
        assert task.completed == 120 and task.total == 200
        events.started(job, 100)  # a retry continues at byte 100
        task = bar.tasks[events.tasks["/in/a.bin"]]
        assert task.completed == 100 and "(retry)" in task.description
        events.advanced(job, 100)
        events.finished(FileOutcome("/out/a.bin", "/in/a.bin", Status.COPIED))
        assert "/in/a.bin" not in events.tasks
        total = bar.tasks[events.total]
        assert total.description == "total 1/2 files" and total.completed == 220


def test_bars_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich is imported only when bars are drawn; the context yields events exactly then."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with transfer_progress(True, 2, 300) as events:  # pytest's stderr is no terminal
        assert events is None
    monkeypatch.setattr(sys, "stderr", Terminal())
    with transfer_progress(False, 2, 300) as events:  # --json
        assert events is None
    with transfer_progress(True, 0, 0) as events:  # nothing to copy
        assert events is None
    with transfer_progress(True, 2, 300) as events:
        assert isinstance(events, BarEvents) and events.files == 2
