"""Two writers of one destination (issue 11): each publishes exactly its own bytes.

Unit level first: the temporary's tag (stable for one source, different for another), resume
finding its own temporary and no other source's, the local claim (a held temporary sends the
writer to a fresh name) and the check before the rename (a temporary replaced under a writer
is never published). Then ``ferryman get`` / ``put`` *processes* against real servers on
loopback (pyftpdlib FTPS in-process, OpenSSH sshd), writing different sources of the same
size to one target: started together and repeated, and interleaved on purpose -- one process
held mid-transfer (a stalled data connection, then SIGSTOP) while the other runs to the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman.backends.base import Backend
from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend
from ferryman.errors import VerificationError
from ferryman.retry import RetryPolicy
from ferryman.transfer import (
    PARTIAL_SUFFIX,
    IfExists,
    Status,
    TransferOptions,
    build_plan,
    copy_file,
    transfer,
)
from ferryman.transfer.copy import identity_tag, partial_name, source_tag
from tests.servers.faulty_ftpd import DataFault, FaultyFtpServer
from tests.servers.sshd import RemoteDir, Sshd

from .conftest import PASSWORD

pytestmark = pytest.mark.timeout(120)

SIZE = 4_000_000  #: big enough for the two writes to overlap, small enough to stay quick
HELD_AT = 1_000_000  #: where the held process's data connection stalls


def part_of(src: Backend, source: str, target: str) -> str:
    return partial_name(target, source_tag(src, source, src.stat(source).size))


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(PARTIAL_SUFFIX))


# --- the tag --------------------------------------------------------------------------------


def test_the_tag_is_stable_for_one_source_and_differs_for_another(tmp_path: Path) -> None:
    one, again = MemoryBackend(), MemoryBackend()
    assert source_tag(one, "/out/a.bin", 10) == source_tag(again, "/out/a.bin", 10)
    tag = source_tag(one, "/out/a.bin", 10)
    assert len(tag) == 8 and int(tag, 16) >= 0
    others = {
        source_tag(one, "/out/b.bin", 10),  # another path
        source_tag(one, "/out/a.bin", 11),  # another size
        identity_tag("sftp://etl@host:22", "/out/a.bin", 10),  # another server
        identity_tag("ftpes://etl@host:21", "/out/a.bin", 10),  # another protocol
    }
    assert tag not in others and len(others) == 4
    # a local source is named by its absolute path: the same file however it was spelled
    disk = LocalBackend()
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        relative = source_tag(disk, "a.bin", 10)
    finally:
        os.chdir(here)
    assert relative == source_tag(disk, str(tmp_path / "a.bin"), 10)
    assert relative != source_tag(disk, str(tmp_path / "b.bin"), 10)


def test_every_temporary_name_keeps_the_suffix_listings_recognise() -> None:
    name = partial_name("/in/a.csv", "0123abcd")
    assert name == "/in/a.csv.0123abcd.ferryman-part" and name.endswith(PARTIAL_SUFFIX)
    src = MemoryBackend()
    src.put("/out/a.csv", b"a")
    src.put(name.replace("/in/", "/out/"), b"half")
    src.put("/out/b.csv.0123abcd-9f9f9f9f.ferryman-part", b"half")  # a fresh name
    plan = build_plan(src, "/out/*")
    assert [item.source for item in plan.items] == ["/out/a.csv"]
    assert len(plan.skipped) == 2


# --- resume finds its own temporary ---------------------------------------------------------

FAST = RetryPolicy(retries=2, delay=0.001)


def test_resume_continues_its_own_temporary_and_leaves_another_sources_alone() -> None:
    payload, other = os.urandom(300_000), os.urandom(300_000)
    src, elsewhere, dst = MemoryBackend(), MemoryBackend(), MemoryBackend()
    src.put("/out/big.bin", payload)
    elsewhere.put("/else/big.bin", other)
    mine = part_of(src, "/out/big.bin", "/in/big.bin")
    theirs = part_of(elsewhere, "/else/big.bin", "/in/big.bin")
    assert mine != theirs
    dst.put(theirs, other[:200_000])  # another source's copy, further along
    dst.put(mine, payload[:100_000])
    opts = TransferOptions(if_exists=IfExists.RESUME, retry=FAST, parallel=1)
    [outcome] = transfer(src, "/out/big.bin", dst, "/in/", opts).files
    assert outcome.status is Status.COPIED and outcome.resumed_from == 100_000
    assert dst.get("/in/big.bin") == payload
    assert dst.get(theirs) == other[:200_000]  # not taken, not removed
    assert not dst.exists(mine)


def test_a_local_temporary_is_found_again_by_the_next_run(tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    src = MemoryBackend()
    src.put("/out/big.bin", payload)
    src.truncate_reads_after("/out/big.bin", 80_000, times=None)
    opts = TransferOptions(
        if_exists=IfExists.RESUME, retry=RetryPolicy(retries=0, delay=0.001), parallel=1
    )
    with LocalBackend() as disk:
        [failed] = transfer(src, "/out/big.bin", disk, str(tmp_path), opts).files
        assert failed.status is Status.FAILED
        kept = Path(part_of(src, "/out/big.bin", str(tmp_path / "big.bin")))
        assert kept.read_bytes() == payload[:80_000]
        src.clear_faults()
        [done] = transfer(src, "/out/big.bin", disk, str(tmp_path), opts).files
    assert done.status is Status.COPIED and done.resumed_from == 80_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]


# --- the local claim and the check before the rename ---------------------------------------


def test_a_held_temporary_sends_the_writer_to_a_fresh_name(tmp_path: Path) -> None:
    payload = os.urandom(100_000)
    src = MemoryBackend()
    src.put("/out/a.bin", payload)
    target = str(tmp_path / "a.bin")
    tagged = part_of(src, "/out/a.bin", target)
    disk = LocalBackend()
    held = disk.claim(tagged)  # another live writer of the same source
    assert held is not None
    try:
        assert disk.claim(tagged) is None  # a second claim, even in this process, is refused
        seen: list[list[str]] = []
        result = copy_file(
            src, "/out/a.bin", disk, target, progress=lambda n: seen.append(temporaries(tmp_path))
        )
        assert result.size == len(payload)
        assert Path(target).read_bytes() == payload
        assert Path(tagged).read_bytes() == b""  # the holder's file: untouched
        fresh = {name for names in seen for name in names} - {Path(tagged).name}
        [name] = fresh
        assert name.startswith(Path(tagged).name.removesuffix(PARTIAL_SUFFIX) + "-")
        assert temporaries(tmp_path) == [Path(tagged).name]  # the fresh one was renamed
    finally:
        held.release()
    claimed = disk.claim(tagged)  # released: free again
    assert claimed is not None
    claimed.release()


def test_a_temporary_replaced_under_its_writer_is_never_published(tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    foreign = os.urandom(300_000)
    src = MemoryBackend()
    src.put("/out/a.bin", payload)
    target = tmp_path / "a.bin"
    tagged = Path(part_of(src, "/out/a.bin", str(target)))
    intruder = tmp_path / "intruder"
    intruder.write_bytes(foreign)

    def swap(n: int) -> None:  # another program puts its file under the temporary name
        if intruder.exists():
            os.replace(intruder, tagged)

    with pytest.raises(VerificationError, match="replaced or removed by someone else"):
        copy_file(src, "/out/a.bin", LocalBackend(), str(target), chunk_size=65536, progress=swap)
    assert not target.exists()
    assert tagged.read_bytes() == foreign  # not ours to remove


def test_the_engine_retries_after_its_temporary_was_disturbed(tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    src = MemoryBackend()
    src.put("/out/a.bin", payload)
    target = tmp_path / "a.bin"
    tagged = Path(part_of(src, "/out/a.bin", str(target)))
    done: list[bool] = []

    class Disturb:
        def started(self, job: object, offset: int) -> None:
            pass

        def advanced(self, job: object, nbytes: int) -> None:
            if not done and tagged.exists():  # removed once, behind the writer's back
                done.append(True)
                tagged.unlink()

        def finished(self, outcome: object) -> None:
            pass

    opts = TransferOptions(retry=FAST, parallel=1, chunk_size=65536)
    with LocalBackend() as disk:
        [outcome] = transfer(src, "/out/a.bin", disk, str(tmp_path), opts, events=Disturb()).files
    assert outcome.status is Status.COPIED and outcome.retries == 1
    assert outcome.resumed_from == 0  # a disturbed temporary is never continued
    assert target.read_bytes() == payload
    assert temporaries(tmp_path) == []


# --- processes against real servers ---------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def ftps(tmp_path: Path, sshd_workdir: RemoteDir) -> Iterator[FaultyFtpServer]:
    """pyftpdlib over explicit FTPS, serving the sshd test directory: the same remote files
    reachable over FTPS and SFTP. Its first RETR and first STOR stall at ``HELD_AT``
    (used by the interleaved tests; a stall given up after two seconds ends with a 426)."""
    faults = [
        DataFault("RETR", after=HELD_AT, action="stall", stall_seconds=2.0, name="held.bin"),
        DataFault("STOR", after=HELD_AT, action="stall", stall_seconds=2.0),
    ]
    server = FaultyFtpServer(sshd_workdir.local, tls="explicit", password=PASSWORD, faults=faults)
    server.start()
    yield server
    server.stop()


class Side:
    """How a ``ferryman`` process reaches one server: URL, options, environment."""

    def __init__(self, base: str, options: list[str], password: str, home: Path) -> None:
        self.base, self.options = base, options
        self.env = {**os.environ, "FM_PW": password, "HOME": str(home)}
        for name in ("FERRYMAN_CONNECTIONS", "SSH_AUTH_SOCK"):
            self.env.pop(name, None)

    def url(self, path: str) -> str:
        return self.base + path

    def start(self, *args: str | Path, verbose: bool = False) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "ferryman", *map(str, args), *self.options]
        command += ["--overwrite", "--json", "--retries", "3", "--timeout", "10"]
        if verbose:
            command.append("-v")
        return subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )


def ftps_side(server: FaultyFtpServer, home: Path) -> Side:
    assert server.pki is not None
    options = ["--password-env", "FM_PW", "--ca-file", str(server.pki.ca_cert)]
    return Side(server.url().rstrip("/"), options, PASSWORD, home)


def sftp_side(sshd: Sshd, home: Path) -> Side:
    options = ["--password-env", "FM_PW", "--fingerprint", sshd.fingerprints["ssh-ed25519"]]
    return Side(f"sftp://{sshd.user}@{sshd.host}:{sshd.port}", options, sshd.password, home)


class Finished:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        out, err = proc.communicate(timeout=60)
        self.code, self.stdout, self.stderr = proc.returncode, out.decode(), err.decode()

    def copied(self, size: int) -> None:
        """Exit 0, and the summary says this process copied the whole file."""
        assert self.code == 0, self.stderr
        [entry] = json.loads(self.stdout)["files"]
        assert entry["status"] == "copied" and entry["size"] == size, entry


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Watch(threading.Thread):
    """Records the digest of every version of ``path`` seen while it runs: under the final
    name there must only ever be a complete copy of one of the sources, never a mix."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.seen = path, set[str]()
        self.halt = threading.Event()

    def run(self) -> None:
        last: tuple[int, int, int] | None = None
        while not self.halt.is_set():
            try:
                with open(self.path, "rb") as file:
                    st = os.fstat(file.fileno())
                    key = (st.st_ino, st.st_size, st.st_mtime_ns)
                    if key != last:
                        self.seen.add(digest(file.read()))
                        last = key
            except FileNotFoundError:
                pass
            time.sleep(0.001)

    def __enter__(self) -> Watch:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.join(10)


def race(first: tuple[Side, list[str | Path]], second: tuple[Side, list[str | Path]]) -> None:
    """Start two processes together; both must copy their whole file."""
    procs = [first[0].start(*first[1]), second[0].start(*second[1])]
    for proc in procs:
        Finished(proc).copied(SIZE)


def test_two_gets_from_ftps_and_sftp_to_one_local_file(
    ftps: FaultyFtpServer, sshd: Sshd, sshd_workdir: RemoteDir, home: Path, tmp_path: Path
) -> None:
    one, two = os.urandom(SIZE), os.urandom(SIZE)
    sshd_workdir.write("one/src.bin", one)
    sshd_workdir.write("two/src.bin", two)
    local = tmp_path / "local"
    local.mkdir()
    target = local / "t.bin"
    over_ftps, over_sftp = ftps_side(ftps, home), sftp_side(sshd, home)
    for _ in range(3):
        with Watch(target) as watch:
            race(
                (over_ftps, ["get", over_ftps.url("/one/src.bin"), target]),
                (over_sftp, ["get", over_sftp.url(sshd_workdir.remote("two/src.bin")), target]),
            )
        assert watch.seen and watch.seen <= {digest(one), digest(two)}
        assert digest(target.read_bytes()) in (digest(one), digest(two))
        assert sorted(p.name for p in local.iterdir()) == ["t.bin"]


def test_two_puts_over_ftps_and_sftp_to_one_remote_file(
    ftps: FaultyFtpServer, sshd: Sshd, sshd_workdir: RemoteDir, home: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one.bin", tmp_path / "two.bin"
    one.write_bytes(os.urandom(SIZE))
    two.write_bytes(os.urandom(SIZE))
    sshd_workdir.write("in/.keep", b"")
    remote = sshd_workdir.local / "in"
    target = remote / "t.bin"
    ftps.faults.clear()  # no stall here
    over_ftps, over_sftp = ftps_side(ftps, home), sftp_side(sshd, home)
    wanted = {digest(one.read_bytes()), digest(two.read_bytes())}
    for _ in range(3):
        with Watch(target) as watch:
            race(
                (over_ftps, ["put", one, over_ftps.url("/in/t.bin")]),
                (over_sftp, ["put", two, over_sftp.url(sshd_workdir.remote("in/t.bin"))]),
            )
        assert watch.seen and watch.seen <= wanted
        assert digest(target.read_bytes()) in wanted
        assert sorted(p.name for p in remote.iterdir()) == [".keep", "t.bin"]


def test_two_puts_over_sftp_to_one_remote_file(
    sshd: Sshd, sshd_workdir: RemoteDir, home: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one.bin", tmp_path / "two.bin"
    one.write_bytes(os.urandom(SIZE))
    two.write_bytes(os.urandom(SIZE))
    target = sshd_workdir.local / "t.bin"
    over_sftp = sftp_side(sshd, home)
    url = over_sftp.url(sshd_workdir.remote("t.bin"))
    wanted = {digest(one.read_bytes()), digest(two.read_bytes())}
    for _ in range(3):
        with Watch(target) as watch:
            race((over_sftp, ["put", one, url]), (over_sftp, ["put", two, url]))
        assert watch.seen and watch.seen <= wanted
        assert digest(target.read_bytes()) in wanted
        assert sorted(p.name for p in sshd_workdir.local.iterdir()) == ["t.bin"]


def wait_for(what: str, check: object, proc: subprocess.Popen[bytes]) -> None:
    """Until ``check()`` holds; fails if the process ends first (no time-out of our own:
    pytest's bounds the test)."""
    assert callable(check)
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"the process ended before {what}: {proc.stderr and proc.stderr.read()!r}")
        time.sleep(0.005)


def size_of(directory: Path, pattern: str) -> int:
    return max((p.stat().st_size for p in directory.glob(pattern)), default=-1)


@pytest.mark.parametrize("same_source", [False, True], ids=["other-source", "same-source"])
def test_a_get_held_midway_while_another_publishes(
    ftps: FaultyFtpServer,
    sshd: Sshd,
    sshd_workdir: RemoteDir,
    home: Path,
    tmp_path: Path,
    same_source: bool,
) -> None:
    """Process A stalls after HELD_AT bytes and is stopped; B copies the whole file and
    exits; then A goes on. Each, when it exits 0, has just published its own bytes: after B
    the target is B's source, after A it is A's. With one source, A holds the claim on the
    shared temporary and B writes a fresh name instead of truncating A's file."""
    held, other = os.urandom(SIZE), os.urandom(SIZE)
    sshd_workdir.write("held.bin", held)
    sshd_workdir.write("other.bin", other)
    local = tmp_path / "local"
    local.mkdir()
    target = local / "t.bin"
    over_ftps, over_sftp = ftps_side(ftps, home), sftp_side(sshd, home)
    a = over_ftps.start("get", over_ftps.url("/held.bin"), target)
    try:
        wait_for("stalling", lambda: size_of(local, "t.bin*" + PARTIAL_SUFFIX) >= HELD_AT, a)
        a.send_signal(signal.SIGSTOP)  # so that its time-out cannot run out while B works
        if same_source:
            b = over_ftps.start("get", over_ftps.url("/held.bin"), target, verbose=True)
            b_bytes = held
        else:
            b = over_sftp.start("get", over_sftp.url(sshd_workdir.remote("other.bin")), target)
            b_bytes = other
        second = Finished(b)
        second.copied(SIZE)
        assert target.read_bytes() == b_bytes  # B published its own bytes
        parts = list(local.glob("t.bin*" + PARTIAL_SUFFIX))
        assert len(parts) == 1, f"A's temporary is not as A left it: {parts}"
        assert parts[0].read_bytes() == held[:HELD_AT]  # untouched by B
        if same_source:
            assert "being written by another process" in second.stderr
    finally:
        a.send_signal(signal.SIGCONT)
    first = Finished(a)
    first.copied(SIZE)
    assert target.read_bytes() == held  # A published its own bytes
    assert sorted(p.name for p in local.iterdir()) == ["t.bin"]


def test_a_put_held_midway_while_another_publishes(
    ftps: FaultyFtpServer, sshd: Sshd, sshd_workdir: RemoteDir, home: Path, tmp_path: Path
) -> None:
    held, other = tmp_path / "held.bin", tmp_path / "other.bin"
    held.write_bytes(os.urandom(SIZE))
    other.write_bytes(os.urandom(SIZE))
    remote = sshd_workdir.local
    target = remote / "t.bin"
    over_ftps, over_sftp = ftps_side(ftps, home), sftp_side(sshd, home)
    a = over_ftps.start("put", held, over_ftps.url("/t.bin"))
    try:
        wait_for("stalling", lambda: size_of(remote, "t.bin*" + PARTIAL_SUFFIX) >= HELD_AT // 2, a)
        a.send_signal(signal.SIGSTOP)
        b = over_sftp.start("put", other, over_sftp.url(sshd_workdir.remote("t.bin")))
        Finished(b).copied(SIZE)
        assert target.read_bytes() == other.read_bytes()  # B published its own bytes
    finally:
        a.send_signal(signal.SIGCONT)
    Finished(a).copied(SIZE)
    assert target.read_bytes() == held.read_bytes()  # A published its own bytes
    assert sorted(p.name for p in remote.iterdir()) == ["t.bin"]
