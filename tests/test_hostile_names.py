"""Names and texts from a server are data (issue 13): never terminal control, and one bad name
never aborts the others. Scripted FTP dialogues on loopback list what no real server would let
a test create on disk (a 5 000-character name, escape sequences, a path deeper than PATH_MAX).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ferryman.cli import cli
from ferryman.errors import ExitCode
from ferryman.paths import LocalDestination, LocalNameError
from tests.servers.scripted import CLOSE, ScriptedFtpServer
from tests.servers.scripted_files import file_rules
from tests.servers.sshd import RemoteDir, Sshd

pytestmark = pytest.mark.timeout(60)

ENV = {"FM_PW": "pw-for-hostile-names"}
CONN = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "5"]
COMMON = [*CONN, "-P", "1"]
LONG = "L" * 5000
CLEAR = "\x1b[2Jcleared.csv"  # CSI: clears the screen
TITLE = "\x1b]0;owned\x07title.csv"  # OSC: sets the window title, even off a terminal
VALID = {f"/in/f{n}.csv": f"row {n}\n".encode() for n in range(10)}


def invoke(*args: str | Path) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def url(server: ScriptedFtpServer, path: str) -> str:
    return f"ftp://bob@{server.host}:{server.port}{path}"


def serving(files: dict[str, bytes]) -> ScriptedFtpServer:
    return ScriptedFtpServer(file_rules(files), timeout=10, connections=4)


def raw_control(text: str) -> list[str]:
    """The control characters (C0 but LF, DEL, C1) in ``text``: none may reach a terminal."""
    return [c for c in text if (ord(c) < 32 and c != "\n") or 127 <= ord(c) < 160]


# --- one name the local file system cannot hold --------------------------------------------


def test_a_5000_character_name_is_refused_and_the_others_are_copied(tmp_path: Path) -> None:
    files = {**VALID, f"/in/{LONG}": b"long"}
    with serving(files) as server:
        result = invoke("get", url(server, "/in/*"), tmp_path, *COMMON)
    assert result.exit_code == ExitCode.TRANSFER, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n[4:] for n in VALID)
    assert (tmp_path / "f3.csv").read_bytes() == b"row 3\n"
    refused = [line for line in result.stdout.splitlines() if line.startswith("refused")]
    assert len(refused) == 1 and "too long for the local file system" in refused[0]
    assert "10 copied" in result.stdout
    assert "refused 1 name(s) from the server that the local file system cannot hold" in (
        result.stderr
    )
    assert "File name too long" not in result.output
    assert not [r for r in server.commands if r.startswith("RETR") and LONG in r]


def test_dry_run_plans_the_others(tmp_path: Path) -> None:
    files = {**VALID, f"/in/{LONG}": b"long"}
    with serving(files) as server:
        result = invoke("get", url(server, "/in/*"), tmp_path, "--dry-run", *COMMON)
    assert result.exit_code == ExitCode.TRANSFER, result.output
    assert "10 planned" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_json_prints_its_object_with_the_refused_name(tmp_path: Path) -> None:
    files = {**VALID, f"/in/{LONG}": b"long"}
    with serving(files) as server:
        result = invoke("get", url(server, "/in/*"), tmp_path, "--json", *COMMON)
    assert result.exit_code == ExitCode.TRANSFER, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["counts"]["copied"] == 10
    [skipped] = doc["skipped_names"]
    assert skipped["path"] == f"/in/{LONG}"  # the raw name, whole
    assert skipped["unsafe"] is True and skipped["local"] is True
    assert "5000 bytes in one name" in skipped["reason"]


def test_the_hint_works_a_long_named_file_alone_under_a_shorter_name(tmp_path: Path) -> None:
    files = {f"/in/{LONG}": b"long"}
    with serving(files) as server:
        into = invoke("get", url(server, f"/in/{LONG}"), f"{tmp_path}/", *COMMON)
        renamed = invoke("get", url(server, f"/in/{LONG}"), tmp_path / "short.csv", *COMMON)
    assert into.exit_code == ExitCode.TRANSFER, into.output
    assert "alone under a shorter local name" in into.stderr
    assert renamed.exit_code == 0, renamed.output
    assert [p.name for p in tmp_path.iterdir()] == ["short.csv"]
    assert (tmp_path / "short.csv").read_bytes() == b"long"


def test_json_prints_its_object_when_the_local_disk_fails_outside_a_transfer(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("not a directory")
    log = tmp_path / "file" / "run.log"
    result = invoke("ls", "ftp://127.0.0.1:1/", "--json", "--log", log, *CONN)
    assert result.exit_code == ExitCode.FAILURE
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and str(tmp_path / "file") in doc["message"]
    assert "ferryman: error:" in result.stderr


def test_a_name_that_leaves_no_room_for_the_temporary_name_is_refused(tmp_path: Path) -> None:
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    fits, too_long = "a" * (limit - 40), "b" * (limit - 10)  # the temporary adds 32 bytes
    files = {f"/in/{fits}": b"fits", f"/in/{too_long}": b"too long"}
    with serving(files) as server:
        result = invoke("get", url(server, "/in/*"), tmp_path, "--json", *COMMON)
    doc = json.loads(result.stdout)
    assert [f["status"] for f in doc["files"]] == ["copied"]
    assert (tmp_path / fits).read_bytes() == b"fits"
    assert [s["path"] for s in doc["skipped_names"]] == [f"/in/{too_long}"]
    assert result.exit_code == ExitCode.TRANSFER


def test_a_tree_deeper_than_path_max_copies_what_fits(tmp_path: Path) -> None:
    limit = os.pathconf(tmp_path, "PC_PATH_MAX")
    deep = "/in" + "".join(f"/{n:02d}" + "x" * 197 for n in range(limit // 200 + 1))
    files = {"/in/top.csv": b"top", f"{deep}/bottom.csv": b"bottom"}
    with serving(files) as server:
        result = invoke("get", "-r", url(server, "/in"), tmp_path / "out", "--json", *COMMON)
    doc = json.loads(result.stdout)
    assert (tmp_path / "out" / "top.csv").read_bytes() == b"top"
    copied = [f["source"] for f in doc["files"] if f["status"] == "copied"]
    assert copied == ["/in/top.csv"]
    refused = doc["skipped_names"]
    assert refused and all(s["local"] for s in refused)
    assert any("path too long" in s["reason"] for s in refused)
    assert result.exit_code == ExitCode.TRANSFER


def test_local_destination_refuses_by_the_file_systems_limits(tmp_path: Path) -> None:
    inside = LocalDestination(tmp_path, reserve=32)
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    assert inside.path("a" * (limit - 32)) == tmp_path.resolve() / ("a" * (limit - 32))
    with pytest.raises(LocalNameError, match="at most"):
        inside.path("a" * (limit - 31))
    with pytest.raises(LocalNameError):  # a directory part may use the whole NAME_MAX, not more
        inside.path("d" * (limit + 1) + "/x.csv")
    assert inside.path("d" * limit + "/x.csv").parent.name == "d" * limit
    # bytes count, not characters: é is two bytes in UTF-8
    with pytest.raises(LocalNameError, match=f"{2 * (limit - 32)} bytes"):
        inside.path("é" * (limit - 32))


# --- escape sequences in names, replies and banners ----------------------------------------


def test_ls_shows_escape_sequences_spelled_out_and_json_keeps_them(tmp_path: Path) -> None:
    files = {f"/in/{CLEAR}": b"x", f"/in/{TITLE}": b"y", "/in/\u202egnp.exe": b"z"}
    with serving(files) as server:
        human = invoke("ls", url(server, "/in/"), *CONN)
        machine = invoke("ls", url(server, "/in/"), "--json", *CONN)
    assert human.exit_code == 0, human.output
    assert raw_control(human.output) == [] and "\u202e" not in human.output
    assert "\\e[2Jcleared.csv" in human.stdout
    assert "\\e]0;owned\\x07title.csv" in human.stdout
    assert "\\u202egnp.exe" in human.stdout
    assert machine.exit_code == 0, machine.output
    assert raw_control(machine.stdout) == []  # JSON escapes them itself (\u001b)
    names = {e["name"] for e in json.loads(machine.stdout)["entries"]}
    assert names == {CLEAR, TITLE, "\u202egnp.exe"}


def test_get_refused_names_are_spelled_out(tmp_path: Path) -> None:
    files = {**VALID, f"/in/{CLEAR}": b"x", f"/in/{TITLE}": b"y"}
    with serving(files) as server:
        result = invoke("get", url(server, "/in/*"), tmp_path, *COMMON)
        as_json = invoke("get", url(server, "/in/*"), tmp_path / "j", "--json", *COMMON)
    assert result.exit_code == ExitCode.TRANSFER, result.output
    assert raw_control(result.output) == []
    assert "refused  /in/\\e]0;owned\\x07title.csv" in result.stdout
    assert "10 copied" in result.stdout
    assert "refused 2 unsafe name(s) from the server" in result.stderr
    assert raw_control(as_json.stdout) == []
    paths = {s["path"] for s in json.loads(as_json.stdout)["skipped_names"]}
    assert paths == {f"/in/{CLEAR}", f"/in/{TITLE}"}


def test_a_reply_text_with_escape_sequences_is_spelled_out(tmp_path: Path) -> None:
    rules = {**file_rules(VALID), "RETR": "550 \x1b]0;owned\x07\x1b[2Jno such file."}
    with ScriptedFtpServer(rules, timeout=10) as server:
        result = invoke("get", url(server, "/in/f1.csv"), tmp_path, *COMMON)
    assert result.exit_code != 0
    assert raw_control(result.output) == []
    assert "owned" in result.stderr and "no such file." in result.stderr


def test_ferryman_test_spells_out_the_banner(tmp_path: Path) -> None:
    banner = "220 \x1b]0;owned\x07Welcome\x9b2J \u202eftp"
    with ScriptedFtpServer(file_rules(VALID), banner=banner, timeout=10, connections=4) as server:
        result = invoke("test", url(server, "/"), *CONN)
    assert result.exit_code == 0, result.output
    assert raw_control(result.output) == [] and "\u202e" not in result.output
    assert "\\e]0;owned\\x07Welcome\\x9b2J \\u202eftp" in result.stdout


# --- a hint promises no retry that will not happen ("Exit codes", issue 13) -----------------


def test_a_dropped_session_with_retries_0_is_not_said_to_be_retried(tmp_path: Path) -> None:
    rules = {**file_rules(VALID), "RETR": CLOSE}
    with ScriptedFtpServer(rules, timeout=10) as server:
        result = invoke("get", url(server, "/in/f1.csv"), tmp_path, *COMMON)
    assert result.exit_code in (ExitCode.CONNECTION, ExitCode.TRANSFER), result.output
    assert "closed the connection" in result.stderr
    hints = [line for line in result.stderr.splitlines() if line.startswith("ferryman: hint:")]
    assert hints and all("retried" not in hint for hint in hints)
    assert "allow more retries" in hints[0]


# --- the same over SFTP: a real sshd serving hostile names created on disk ------------------


def test_sftp_names_with_escapes_and_line_breaks(
    sshd: Sshd, sshd_workdir: RemoteDir, tmp_path: Path
) -> None:
    sshd_workdir.write(f"out/{TITLE}", b"t")
    sshd_workdir.write("out/two\nlines.csv", b"n")
    sshd_workdir.write("out/ok.csv", b"ok")
    home = tmp_path / "home"
    home.mkdir()
    env = {"FM_PW": sshd.password, "HOME": str(home), "SSH_AUTH_SOCK": None}
    pin = ["--fingerprint", sshd.fingerprints["ssh-ed25519"]]
    where = f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{sshd_workdir.remote('out/')}"
    common = ["--password-env", "FM_PW", *pin, "--retries", "0", "--timeout", "10"]

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in (*args, *common)], env=env)

    listed = run("ls", where)
    assert listed.exit_code == 0, listed.output
    assert raw_control(listed.output) == []
    assert "\\e]0;owned\\x07title.csv" in listed.stdout
    assert "two\\nlines.csv" in listed.stdout  # one entry, one line
    assert len(listed.stdout.splitlines()) == 3
    got = run("-v", "get", where + "*", tmp_path / "in", "-P", "1")
    assert got.exit_code == ExitCode.TRANSFER, got.output
    assert raw_control(got.output) == []  # the report, the errors and the -v transcript
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["ok.csv"]
    assert "two\\nlines.csv  (unsafe name: it contains control characters)" in got.stdout


def test_hostile_and_too_long_names_are_both_named(tmp_path: Path) -> None:
    files = {**VALID, f"/in/{LONG}": b"long", f"/in/{CLEAR}": b"x"}
    with serving(files) as server:
        result = invoke("get", url(server, "/in/*"), tmp_path, *COMMON)
    assert result.exit_code == ExitCode.TRANSFER, result.output
    assert "refused 2 name(s) from the server (1 unsafe, 1 too long" in result.stderr
    hint = result.stderr.splitlines()[-1]
    assert "outside the destination" in hint and "shorter local name" in hint
    assert len(list(tmp_path.iterdir())) == 10


def test_c1_controls_in_names_are_refused_like_c0(tmp_path: Path) -> None:
    files = {"/in/csi\x9b2J.csv": b"c1", "/in/nel\x85.csv": b"c1", "/in/März ü.csv": b"ok"}
    with serving(files) as server:
        result = invoke("get", url(server, "/in/*"), tmp_path, "--json", *COMMON)
    doc = json.loads(result.stdout)
    assert [p.name for p in tmp_path.iterdir()] == ["März ü.csv"]  # printable Unicode is kept
    assert {s["path"] for s in doc["skipped_names"]} == {"/in/csi\x9b2J.csv", "/in/nel\x85.csv"}
    assert all("control characters" in s["reason"] for s in doc["skipped_names"])
    assert result.exit_code == ExitCode.TRANSFER
