"""The transfer engine over real servers: pyftpdlib with faults injected into its data
connections (a connection cut after N bytes with 426 or 421, a stall), a scripted server for
quirks no real server here shows (hostile names in a listing, a 226 that never comes), the
worker pool against a server that limits connections, and vsftpd (require_ssl_reuse).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.local import LocalBackend
from ferryman.cli import cli
from ferryman.errors import ExitCode, TimeoutError, TransferError
from ferryman.retry import RetryPolicy
from ferryman.transfer import (
    PARTIAL_SUFFIX,
    FileOutcome,
    Job,
    Status,
    Summary,
    TransferOptions,
    hostlimits,
    transfer,
)
from ferryman.transfer.copy import identity_tag, partial_name, source_tag
from tests.servers.faulty_ftpd import DataFault, FaultyFtpServer
from tests.servers.scripted import Reply, ScriptedFtpServer, multiline, transfer_out
from tests.servers.vsftpd import Vsftpd, Workdir

from .conftest import PASSWORD, Served

pytestmark = pytest.mark.timeout(60)

OPTS = TransferOptions(retry=RetryPolicy(retries=2, delay=0.01), parallel=1)
FaultyFactory = Callable[..., Served]


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[FaultyFactory]:
    """Start :class:`FaultyFtpServer` instances; all are stopped after the test."""
    started: list[FaultyFtpServer] = []

    def start(tls: str = "none", faults: list[DataFault] | None = None, **opts: object) -> Served:
        root = tmp_path / f"server{len(started)}"
        root.mkdir()
        server = FaultyFtpServer(root, tls=tls, password=PASSWORD, faults=faults, **opts)  # type: ignore[arg-type]
        server.start()
        started.append(server)
        return Served(server, root)

    yield start
    for server in started:
        server.stop()


def partials(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob(f"*{PARTIAL_SUFFIX}")]


def download(
    served: Served,
    source: str,
    dest: Path,
    opts: TransferOptions = OPTS,
    events: object = None,
    **conn: object,
) -> Summary:
    fields: dict[str, object] = {"timeout": 2}
    fields.update(conn)
    with FtpBackend(served.connection(**fields)).connect() as ftp, LocalBackend() as disk:
        return transfer(ftp, source, disk, f"{dest}/", opts, events=events)  # type: ignore[arg-type]


def upload(
    served: Served,
    source: Path,
    destination: str,
    opts: TransferOptions = OPTS,
    events: object = None,
    **conn: object,
) -> Summary:
    fields: dict[str, object] = {"timeout": 2}
    fields.update(conn)
    with FtpBackend(served.connection(**fields)).connect() as ftp, LocalBackend() as disk:
        return transfer(disk, str(source), ftp, destination, opts, events=events)  # type: ignore[arg-type]


class OnProgress:
    """Events that call ``action`` on every progress report."""

    def __init__(self, action: Callable[[Job], None]) -> None:
        self.action = action

    def started(self, job: Job, offset: int) -> None:
        pass

    def advanced(self, job: Job, nbytes: int) -> None:
        self.action(job)

    def finished(self, outcome: FileOutcome) -> None:
        pass


# --- a data connection cut midway ---------------------------------------------------------------


@pytest.mark.parametrize("tls", ["none", "explicit"])
@pytest.mark.parametrize("action", ["426", "421"])
def test_a_download_cut_midway_resumes(
    faulty: FaultyFactory, tmp_path: Path, tls: str, action: str
) -> None:
    fault = DataFault("RETR", after=300_000, action=action)  # type: ignore[arg-type]
    served = faulty(tls, [fault])
    payload = os.urandom(1_000_000)
    (served.root / "big.bin").write_bytes(payload)
    dest = tmp_path / "dest"
    [outcome] = download(served, "/big.bin", dest).files
    assert outcome.status is Status.COPIED, outcome.reason
    assert fault.hits == 1
    assert outcome.retries == 1
    assert outcome.resumed_from == 300_000 and outcome.bytes == 700_000
    assert outcome.verified == "size"
    assert (dest / "big.bin").read_bytes() == payload
    assert partials(dest) == []


@pytest.mark.parametrize("action", ["426", "421"])
def test_an_upload_cut_midway_resumes(faulty: FaultyFactory, tmp_path: Path, action: str) -> None:
    fault = DataFault("STOR", after=300_000, action=action)  # type: ignore[arg-type]
    served = faulty("none", [fault])
    payload = os.urandom(2_000_000)
    (tmp_path / "up.bin").write_bytes(payload)
    seen: set[tuple[str, ...]] = set()

    def look(job: Job) -> None:  # what the server's directory holds while the data flows
        seen.add(tuple(sorted(p.name for p in (served.root / "in").iterdir())))

    [outcome] = upload(served, tmp_path / "up.bin", "/in/", events=OnProgress(look)).files
    assert outcome.status is Status.COPIED, outcome.reason
    tag = source_tag(LocalBackend(), str(tmp_path / "up.bin"), len(payload))
    assert seen == {(partial_name("up.bin", tag),)}  # never the final name before the end
    assert fault.hits == 1 and outcome.retries == 1
    assert 300_000 <= outcome.resumed_from < len(payload)
    assert outcome.bytes == len(payload) - outcome.resumed_from
    assert (served.root / "in/up.bin").read_bytes() == payload
    assert partials(served.root) == []


def test_an_upload_cut_midway_over_ftps_resumes(faulty: FaultyFactory, tmp_path: Path) -> None:
    fault = DataFault("STOR", after=300_000, action="426")
    served = faulty("explicit", [fault])
    payload = os.urandom(8_000_000)  # still being sent when the server drops the connection
    (tmp_path / "up.bin").write_bytes(payload)
    [outcome] = upload(served, tmp_path / "up.bin", "/in/").files
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.resumed_from > 0
    assert (served.root / "in/up.bin").read_bytes() == payload


def test_a_download_cut_every_time_fails_cleanly(faulty: FaultyFactory, tmp_path: Path) -> None:
    fault = DataFault("RETR", after=50_000, times=None)
    served = faulty("none", [fault])
    (served.root / "f.bin").write_bytes(os.urandom(400_000))
    dest = tmp_path / "dest"
    offsets: list[int] = []

    class Starts(OnProgress):
        def started(self, job: Job, offset: int) -> None:
            offsets.append(offset)

    summary = download(served, "/f.bin", dest, events=Starts(lambda job: None))
    [outcome] = summary.files
    assert outcome.status is Status.FAILED
    assert isinstance(outcome.error, TransferError) and outcome.error.reply_code == 426
    assert offsets == [0, 50_000, 100_000]  # each retry continued where the last one stopped
    assert fault.hits == 3
    assert list(dest.iterdir()) == []  # no file, no temporary
    assert not summary.ok


def test_the_source_changed_between_attempts_restarts_from_zero(
    faulty: FaultyFactory, tmp_path: Path
) -> None:
    fault = DataFault("RETR", after=100_000)
    served = faulty("none", [fault])
    old, new = os.urandom(400_000), os.urandom(450_000)
    target = served.root / "f.bin"
    target.write_bytes(old)
    stamp = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(target, (stamp, stamp))
    replaced = threading.Event()

    def replace_once(job: Job) -> None:
        if not replaced.is_set():
            replaced.set()
            fresh = served.root / "f.bin.new"
            fresh.write_bytes(new)
            os.replace(fresh, target)  # the server keeps reading the old file

    dest = tmp_path / "dest"
    [outcome] = download(served, "/f.bin", dest, events=OnProgress(replace_once)).files
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.retries == 1 and outcome.resumed_from == 0
    assert outcome.size == len(new)
    assert (dest / "f.bin").read_bytes() == new


# --- servers that stop talking -----------------------------------------------------------------


def test_a_server_that_never_sends_data_fails_within_the_time_out(
    faulty: FaultyFactory, tmp_path: Path
) -> None:
    fault = DataFault("RETR", after=0, action="stall", times=None)
    served = faulty("none", [fault])
    (served.root / "f.bin").write_bytes(b"x" * 100_000)
    dest = tmp_path / "dest"
    opts = TransferOptions(retry=RetryPolicy(retries=1, delay=0.01), parallel=1)
    summary = download(served, "/f.bin", dest, opts, timeout=1)
    [outcome] = summary.files
    assert outcome.status is Status.FAILED
    assert isinstance(outcome.error, TimeoutError)
    assert "did not answer in time" in outcome.reason
    assert outcome.error.hint is not None and "--timeout" in outcome.error.hint
    assert fault.hits == 2  # tried, then retried once
    assert list(dest.iterdir()) == []


def test_a_download_stalled_midway_resumes_after_the_time_out(
    faulty: FaultyFactory, tmp_path: Path
) -> None:
    fault = DataFault("RETR", after=200_000, action="stall")
    served = faulty("none", [fault])
    payload = os.urandom(600_000)
    (served.root / "f.bin").write_bytes(payload)
    dest = tmp_path / "dest"
    [outcome] = download(served, "/f.bin", dest, timeout=1).files
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.resumed_from == 200_000 and outcome.retries == 1
    assert (dest / "f.bin").read_bytes() == payload


def test_complete_data_without_a_226_is_never_published(tmp_path: Path) -> None:
    payload = b"0123456789" * 1000

    def retr(server: ScriptedFtpServer, _arg: str) -> Reply:
        server.reply("150 Opening BINARY mode data connection.")
        server.send_data(payload)
        return None  # ... and the 226 never comes

    rules = {"SIZE": f"213 {len(payload)}", "RETR": retr}
    dest = tmp_path / "dest"
    dest.mkdir()
    with ScriptedFtpServer(rules, timeout=5) as server:
        url = f"ftp://bob@{server.host}:{server.port}/out/data.bin"
        result = invoke(
            "get",
            url,
            dest,
            "--password-env",
            "FM_PW",
            "--timeout",
            "1",
            "--retries",
            "0",
            "-P",
            "1",
            env={"FM_PW": "pw"},
        )
    assert result.exit_code == ExitCode.CONNECTION, result.output
    assert "RETR /out/data.bin" in result.stderr and "did not answer in time" in result.stderr
    assert "RETR /out/data.bin" in server.commands
    assert list(dest.iterdir()) == []


# --- names from a hostile server ----------------------------------------------------------------

GOOD = {"good.txt": b"good\n", "also good.csv": b"a,b\n1,2\n"}
HOSTILE = [
    "../evil.txt",
    "../../../../tmp/evil2.txt",
    "/etc/passwd",
    "sub/inner.txt",
    "C:evil.txt",
    "c:\\windows\\evil.txt",
    "..\\evil.txt",
    "esc\x1b[2Jname.txt",
    "bell\x07.txt",
    "tab\tname.txt",
]


def invoke(*args: str | Path, env: dict[str, str | None]) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_hostile_names_in_a_listing_are_refused_and_the_rest_transfers(tmp_path: Path) -> None:
    names = [*HOSTILE[:4], "good.txt", *HOSTILE[4:], "also good.csv", ".", ".."]
    listing = "".join(
        f"type={'dir' if n in ('.', '..') else 'file'};size={len(GOOD.get(n, b'evil'))};"
        f"modify=20260101000000; {n}\r\n"
        for n in names
    ).encode()
    retrieved: list[str] = []

    def retr(server: ScriptedFtpServer, arg: str) -> Reply:
        retrieved.append(arg)
        data = GOOD.get(arg.removeprefix("/out/"))
        if data is None:
            return "550 No such file."
        server.reply("150 Opening BINARY mode data connection.")
        server.send_data(data)
        return "226 Transfer complete."

    work = tmp_path / "work"
    dest = work / "dest"
    dest.mkdir(parents=True)
    # FEAT lists MLST: a server that has MLSD advertises it (RFC 3659 section 7.8)
    feat = multiline("211", ["Features:", " EPSV", " MLST type*;size*;modify*;"], "End")
    rules = {"FEAT": feat, "MLSD": transfer_out(listing), "RETR": retr}
    with ScriptedFtpServer(rules, timeout=5) as server:
        url = f"ftp://bob@{server.host}:{server.port}/out/*"
        result = invoke(
            "get",
            url,
            dest,
            "--password-env",
            "FM_PW",
            "--timeout",
            "3",
            "--retries",
            "0",
            "-P",
            "1",
            "--json",
            env={"FM_PW": "pw"},
        )
    assert result.exit_code == ExitCode.TRANSFER, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    refused = {s["path"]: s for s in doc["skipped_names"]}
    expected_paths = {n if n.startswith("/") else f"/out/{n}" for n in HOSTILE}
    assert set(refused) == expected_paths
    assert all(
        s["unsafe"] is True and s["reason"].startswith("unsafe name") for s in refused.values()
    )
    assert sorted(retrieved) == ["/out/also good.csv", "/out/good.txt"]
    assert [f["status"] for f in doc["files"]] == ["copied", "copied"]
    assert sorted(p.name for p in dest.iterdir()) == ["also good.csv", "good.txt"]
    assert (dest / "also good.csv").read_bytes() == GOOD["also good.csv"]
    assert sorted(p.name for p in work.iterdir()) == ["dest"]  # nothing beside the destination
    assert not Path("/tmp/evil2.txt").exists()
    assert "refused 10 unsafe name(s) from the server" in result.stderr


# --- the worker pool over a real server ---------------------------------------------------------


def ferryman(served: Served, *args: str | Path) -> Result:
    extra = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "5"]
    if served.server.pki is not None:
        extra += ["--ca-file", str(served.server.pki.ca_cert)]
    result = invoke(*args, *extra, env={"FM_PW": PASSWORD})
    assert PASSWORD not in result.output
    return result


def small_files(root: Path, count: int) -> dict[str, bytes]:
    files = {f"d{i % 4}/f{i:03}.dat": os.urandom(100 + i * 7) for i in range(count)}
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return files


def test_parallel_get_and_put_of_many_small_files_over_ftps(
    faulty: FaultyFactory, tmp_path: Path
) -> None:
    served = faulty("explicit")
    files = small_files(served.root / "out", 60)
    down = tmp_path / "down"
    result = ferryman(served, "get", served.url("/out"), down, "-r", "--parallel", "4", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["counts"]["copied"] == 60 and doc["ok"]
    for relative, data in files.items():
        assert (down / relative).read_bytes() == data
    server = served.server
    assert isinstance(server, FaultyFtpServer)
    assert server.logins == 4 and server.peak_sessions == 4  # one connection per worker
    result = ferryman(served, "put", down, served.url("/back/"), "-r", "-P", "4")
    assert result.exit_code == 0, result.output
    for relative, data in files.items():
        assert (served.root / "back" / relative).read_bytes() == data
    assert partials(down, served.root) == []


def test_a_server_limiting_connections_shrinks_the_pool(
    faulty: FaultyFactory, tmp_path: Path
) -> None:
    served = faulty("none", max_connections_per_ip=2)
    files = small_files(served.root / "out", 40)
    down = tmp_path / "down"
    result = ferryman(served, "get", served.url("/out"), down, "-r", "--parallel", "8", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["counts"]["copied"] == 40 and doc["errors"] == []
    for relative, data in files.items():
        assert (down / relative).read_bytes() == data
    server = served.server
    assert isinstance(server, FaultyFtpServer)
    assert server.peak_sessions == 2 and server.logins == 2
    assert "refused" in result.stderr
    # remembered (issue 19): the automatic choice never asks this server for more again
    assert hostlimits.limit_for(f"ftp://{served.server.user}@127.0.0.1:{served.server.port}") == 2
    again = ferryman(served, "get", served.url("/out"), tmp_path / "again", "-r", "-v")
    assert again.exit_code == 0, again.output
    assert "refused" not in again.stderr
    assert "2 file(s) in flight" in again.stderr
    assert server.logins == 4 and server.peak_sessions == 2


# --- listings that show minutes (LIST) against times from MDTM ----------------------------------


#: connection overrides: LIST (minute precision) for listings, SIZE and MDTM for stat
BY_MINUTES: dict[str, object] = {"use_mlsd": False, "timeout": 2}


def at_half_past_a_minute(path: Path) -> None:
    when = (datetime.now(UTC) - timedelta(hours=1)).replace(second=30, microsecond=0)
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_a_drop_resumes_when_the_listing_shows_minutes(
    faulty: FaultyFactory, tmp_path: Path
) -> None:
    fault = DataFault("RETR", after=200_000)
    served = faulty("none", [fault])
    payload = os.urandom(500_000)
    (served.root / "out").mkdir()
    (served.root / "out/f.bin").write_bytes(payload)
    at_half_past_a_minute(served.root / "out/f.bin")
    dest = tmp_path / "dest"
    [outcome] = download(served, "/out/*.bin", dest, **BY_MINUTES).files
    assert outcome.status is Status.COPIED
    assert (dest / "f.bin").read_bytes() == payload
    assert outcome.resumed_from == 200_000


def test_stable_for_when_the_listing_shows_minutes(faulty: FaultyFactory, tmp_path: Path) -> None:
    served = faulty("none")
    (served.root / "out").mkdir()
    (served.root / "out/f.bin").write_bytes(b"stable")
    at_half_past_a_minute(served.root / "out/f.bin")
    dest = tmp_path / "dest"
    opts = TransferOptions(retry=RetryPolicy(0), parallel=1, stable_for=0.05)
    [outcome] = download(served, "/out/*.bin", dest, opts, **BY_MINUTES).files
    assert outcome.status is Status.COPIED, outcome.reason
    assert (dest / "f.bin").read_bytes() == b"stable"


def test_stable_for_over_mlsd(faulty: FaultyFactory, tmp_path: Path) -> None:
    served = faulty("none")
    (served.root / "out").mkdir()
    (served.root / "out/stable.bin").write_bytes(b"stable")
    (served.root / "out/growing.bin").write_bytes(b"start")
    at_half_past_a_minute(served.root / "out/stable.bin")
    stop = threading.Event()

    def grow() -> None:
        with open(served.root / "out/growing.bin", "ab") as out:
            while not stop.wait(0.01):
                out.write(b"more")
                out.flush()

    writer = threading.Thread(target=grow)
    writer.start()
    try:
        dest = tmp_path / "dest"
        opts = TransferOptions(retry=RetryPolicy(0), parallel=1, stable_for=0.3)
        summary = download(served, "/out/*.bin", dest, opts)
    finally:
        stop.set()
        writer.join()
    files = {Path(f.source).name: f for f in summary.files}
    assert files["stable.bin"].status is Status.COPIED
    assert files["growing.bin"].status is Status.SKIPPED
    assert "still being written" in files["growing.bin"].reason
    assert sorted(p.name for p in dest.iterdir()) == ["stable.bin"]


# --- vsftpd: require_ssl_reuse, no MLSD, no MFMT --------------------------------------------------


def vsftpd_run(server: Vsftpd, *args: str | Path) -> Result:
    extra = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "10"]
    if server.pki is not None:
        extra += ["--ca-file", str(server.pki.ca_cert)]
    result = invoke(*args, *extra, env={"FM_PW": server.password})
    assert server.password not in result.output
    return result


def vsftpd_url(server: Vsftpd, path: str) -> str:
    return f"{server.scheme}://{server.user}@{server.host}:{server.port}{path}"


def tree_of(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.vsftpd
def test_vsftpd_recursive_get_and_put_in_parallel(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir, tmp_path: Path
) -> None:
    files = {f"t/d{i % 3}/f{i:02}.csv": os.urandom(200 + 31 * i) for i in range(24)}
    files["t/big.bin"] = os.urandom(3_000_000)
    for relative, data in files.items():
        vsftpd_workdir.write(relative, data)
    vsftpd_workdir.mkdir("t/empty/inner")
    down = tmp_path / "down"
    url = vsftpd_url(vsftpd_explicit, vsftpd_workdir.ftp_path("t"))
    result = vsftpd_run(vsftpd_explicit, "get", url, down, "-r", "-P", "4", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["counts"]["copied"] == 25
    assert all(f["verified"] == "size" and f["retries"] == 0 for f in doc["files"])
    assert tree_of(down) == tree_of(vsftpd_workdir.local / "t")
    assert (down / "empty/inner").is_dir()
    up_url = vsftpd_url(vsftpd_explicit, vsftpd_workdir.ftp_path("up") + "/")
    result = vsftpd_run(vsftpd_explicit, "put", down, up_url, "-r", "-P", "4", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["copied"] == 25
    assert tree_of(vsftpd_workdir.local / "up") == tree_of(down)
    assert partials(down, vsftpd_workdir.local) == []
    # a second run with the default policy refuses to clobber: exit 7, nothing changes
    again = vsftpd_run(vsftpd_explicit, "put", down, up_url, "-r", "-P", "4")
    assert again.exit_code == ExitCode.TRANSFER, again.output
    assert "already exists" in again.stderr
    assert tree_of(vsftpd_workdir.local / "up") == tree_of(down)


@pytest.mark.vsftpd
def test_vsftpd_resumes_what_a_killed_run_left(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir, tmp_path: Path
) -> None:
    payload = os.urandom(3_000_000)
    # download: a local temporary holding the first megabyte
    vsftpd_workdir.write("down.bin", payload)
    old = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(vsftpd_workdir.local / "down.bin", (old, old))
    local = tmp_path / "local"
    local.mkdir()
    url = vsftpd_url(vsftpd_explicit, vsftpd_workdir.ftp_path("down.bin"))
    tag = identity_tag(
        vsftpd_url(vsftpd_explicit, ""), vsftpd_workdir.ftp_path("down.bin"), 3_000_000
    )
    (local / partial_name("down.bin", tag)).write_bytes(payload[:1_000_000])
    result = vsftpd_run(vsftpd_explicit, "get", url, local, "--if-exists", "resume", "--json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)["files"]
    assert entry["resumed_from"] == 1_000_000 and entry["bytes"] == 2_000_000
    assert (local / "down.bin").read_bytes() == payload
    assert sorted(p.name for p in local.iterdir()) == ["down.bin"]
    # upload: a remote temporary holding the first 1.5 megabytes
    (local / "up.bin").write_bytes(payload)
    os.utime(local / "up.bin", (old, old))
    tag = source_tag(LocalBackend(), str(local / "up.bin"), len(payload))
    vsftpd_workdir.write(partial_name("in/up.bin", tag), payload[:1_500_000])
    dest = vsftpd_url(vsftpd_explicit, vsftpd_workdir.ftp_path("in") + "/")
    result = vsftpd_run(
        vsftpd_explicit, "put", local / "up.bin", dest, "--if-exists", "resume", "--json"
    )
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)["files"]
    assert entry["resumed_from"] == 1_500_000 and entry["bytes"] == 1_500_000
    assert (vsftpd_workdir.local / "in/up.bin").read_bytes() == payload
    assert sorted(p.name for p in (vsftpd_workdir.local / "in").iterdir()) == ["up.bin"]
    assert "reused" in vsftpd_explicit.log_text()


@pytest.mark.vsftpd
def test_vsftpd_stable_for(vsftpd_plain: Vsftpd, vsftpd_workdir: Workdir, tmp_path: Path) -> None:
    vsftpd_workdir.write("s/f.csv", b"stable data")
    at_half_past_a_minute(vsftpd_workdir.local / "s/f.csv")
    url = vsftpd_url(vsftpd_plain, vsftpd_workdir.ftp_path("s") + "/*.csv")
    result = vsftpd_run(vsftpd_plain, "get", url, tmp_path, "--stable-for", "0.1", "--json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)["files"]
    assert entry["status"] == "copied", entry["reason"]
    assert (tmp_path / "f.csv").read_bytes() == b"stable data"


@pytest.mark.vsftpd
def test_vsftpd_sync_compares_sizes_where_times_cannot_be_set(
    vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir, tmp_path: Path
) -> None:
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    (local / "a.csv").write_bytes(b"a" * 10)
    (local / "sub/b.csv").write_bytes(b"b" * 20)
    url = vsftpd_url(vsftpd_explicit, vsftpd_workdir.ftp_path("mirror"))
    first = vsftpd_run(vsftpd_explicit, "sync", local, url, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["counts"]["copied"] == 2
    (local / "a.csv").write_bytes(b"A" * 11)
    second = vsftpd_run(vsftpd_explicit, "sync", local, url, "--json", "--if-exists", "different")
    doc = json.loads(second.stdout)
    assert doc["counts"] == {"copied": 1, "skipped": 1, "failed": 0, "planned": 0, "deleted": 0}
    assert (vsftpd_workdir.local / "mirror/a.csv").read_bytes() == b"A" * 11


# --- sync over a server whose listing fails -----------------------------------------------------


def test_sync_delete_after_a_failed_listing_deletes_nothing_and_says_why(
    faulty: FaultyFactory, tmp_path: Path
) -> None:
    served = faulty("none")
    mirror = served.root / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "a.csv").write_bytes(b"a")
    (mirror / "sub/b.csv").write_bytes(b"b")
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    (local / "a.csv").write_bytes(b"a")
    (local / "sub/b.csv").write_bytes(b"b")
    (local / "stale.csv").write_bytes(b"gone from the server")
    server = served.server
    assert isinstance(server, FaultyFtpServer)
    server.listing_faults["sub"] = 1
    result = ferryman(served, "sync", served.url("/mirror"), local, "--delete", "--force")
    assert result.exit_code == ExitCode.TRANSFER, result.output
    assert "MLSD /mirror/sub" in result.stderr and "451" in result.stderr
    assert "ferryman: error: not deleting anything: a listing failed" in result.stderr
    assert "deleted" not in result.stdout
    assert sorted(str(p.relative_to(local)) for p in local.rglob("*")) == [
        "a.csv",
        "stale.csv",
        "sub",
        "sub/b.csv",
    ]
    # the listing is retried when retries are allowed; then the deletion goes ahead
    server.listing_faults["sub"] = 1
    extra = ["--password-env", "FM_PW", "--timeout", "5", "--retries", "1"]
    result = invoke(
        "sync", served.url("/mirror"), local, "--delete", "--force", *extra, env={"FM_PW": PASSWORD}
    )
    assert result.exit_code == 0, result.output
    assert "1 deleted" in result.stdout
    assert not (local / "stale.csv").exists() and (local / "sub/b.csv").exists()
