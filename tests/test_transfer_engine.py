"""The engine: safe copies (temporary name, verification, publish), the source action after a
verified copy, retries and resume after faults, files still being written, the worker pool,
and the run summary. Unit level over the in-memory backend (fault injection) and the disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ferryman.backends.base import Backend, Capabilities, Entry
from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend, MemoryWriteStream
from ferryman.errors import (
    ConnectError,
    FerrymanError,
    NotFoundError,
    PermissionDeniedError,
    TransferError,
    VerificationError,
)
from ferryman.retry import RetryPolicy
from ferryman.transfer import (
    PARTIAL_SUFFIX,
    FileOutcome,
    IfExists,
    Job,
    SourceAction,
    Status,
    Summary,
    TransferOptions,
    build_plan,
    copy_file,
    transfer,
    transfer_plan,
)
from ferryman.transfer.copy import partial_name, source_tag

T0 = datetime(2026, 10, 15, 12, 0, 0, tzinfo=UTC)
FAST = RetryPolicy(retries=3, delay=0.001)


def options(**overrides: object) -> TransferOptions:
    fields: dict[str, object] = {"retry": FAST, "parallel": 1, "chunk_size": 32768}
    fields.update(overrides)
    return TransferOptions(**fields)  # type: ignore[arg-type]


def part_of(src: Backend, source: str, target: str) -> str:
    """The temporary name of a copy of ``source`` (as it is now) to ``target``."""
    return partial_name(target, source_tag(src, source, src.stat(source).size))


def no_partials(backend: MemoryBackend) -> bool:
    return not any(PARTIAL_SUFFIX in path for path in backend.snapshot())


class Events:
    """Events that record what happened, and optionally act on each progress report."""

    def __init__(self, on_progress: object = None) -> None:
        self.starts: list[tuple[str, int]] = []
        self.progress = 0
        self.outcomes: list[FileOutcome] = []
        self.on_progress = on_progress
        self.lock = threading.Lock()

    def started(self, job: Job, offset: int) -> None:
        with self.lock:
            self.starts.append((job.target, offset))

    def advanced(self, job: Job, nbytes: int) -> None:
        with self.lock:
            self.progress += nbytes
        if callable(self.on_progress):
            self.on_progress(job)

    def finished(self, outcome: FileOutcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


class FlippingWriteStream(MemoryWriteStream):
    """Writes one byte inverted: data corrupted on the way."""

    flip_at = 1000

    def write(self, data: bytes | memoryview) -> None:
        chunk = bytearray(data)
        index = self.flip_at - self.bytes_transferred
        if 0 <= index < len(chunk):
            chunk[index] ^= 0xFF
        super().write(chunk)


class CorruptingMemory(MemoryBackend):
    """A memory backend whose next ``corrupt`` write streams (None: all) corrupt one byte."""

    def __init__(self, corrupt: int | None = 1) -> None:
        super().__init__()
        self.corrupt = corrupt

    def open_write(self, path: str, offset: int = 0) -> MemoryWriteStream:
        stream = super().open_write(path, offset)
        if self.corrupt is not None:
            if self.corrupt == 0:
                return stream
            self.corrupt -= 1
        return FlippingWriteStream(self, stream._node, path, offset, stream._cut)


# --- one safe copy ------------------------------------------------------------------------------


def test_data_goes_to_a_temporary_name_then_is_renamed_into_place() -> None:
    payload = os.urandom(200_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", payload)
    during: list[tuple[bool, bool]] = []
    temporary = part_of(src, "/out/f.bin", "/in/f.bin")
    assert temporary.startswith("/in/f.bin.") and temporary.endswith(PARTIAL_SUFFIX)
    events = Events(lambda job: during.append((dst.exists("/in/f.bin"), dst.exists(temporary))))
    summary = transfer(src, "/out/f.bin", dst, "/in/", options(), events=events)
    assert summary.ok
    assert during and all(state == (False, True) for state in during)
    assert dst.get("/in/f.bin") == payload
    assert no_partials(dst)
    assert dst.calls["rename"] == 1
    assert events.progress == len(payload)
    assert events.starts == [("/in/f.bin", 0)]
    assert [o.status for o in events.outcomes] == [Status.COPIED]


def test_verification_methods() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/a", b"abc")
    result = copy_file(src, "/a", dst, "/b")
    assert result.verified == "size+sha256" and result.size == 3 and result.bytes == 3
    result = copy_file(src, "/a", dst, "/c", verify_hash=False)
    assert result.verified == "size"
    assert dst.calls["hash"] == 1


def test_local_to_local_verifies_by_size(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    with LocalBackend() as one, LocalBackend() as two:
        result = copy_file(one, str(tmp_path / "a"), two, str(tmp_path / "b"))
    assert result.verified == "size"
    assert (tmp_path / "b").read_bytes() == b"abc"


def test_copy_file_refuses_one_backend_for_both_sides_and_a_directory() -> None:
    from ferryman.errors import ConfigError

    backend = MemoryBackend()
    backend.put("/d/a", b"a")
    with pytest.raises(ConfigError):
        copy_file(backend, "/d/a", backend, "/d/b")
    with pytest.raises(ConfigError, match="is a directory"):
        copy_file(backend, "/d", MemoryBackend(), "/x")


def test_a_hash_mismatch_publishes_nothing() -> None:
    payload = os.urandom(50_000)
    src, dst = MemoryBackend(), CorruptingMemory()
    src.put("/a.bin", payload)
    with pytest.raises(VerificationError) as info:
        copy_file(src, "/a.bin", dst, "/b.bin")
    assert "sha256 of the copy differs" in info.value.message
    assert info.value.exit_code == 8
    assert dst.snapshot() == {}


def test_a_copy_shorter_than_the_listed_size_publishes_nothing() -> None:
    payload = os.urandom(50_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/a.bin", payload)
    listed = dataclasses.replace(src.stat("/a.bin"), size=60_000)  # it shrank since listed
    with pytest.raises(VerificationError, match="copied 50000 bytes, but the source has 60000"):
        copy_file(src, "/a.bin", dst, "/a.out", source_entry=listed)
    assert dst.snapshot() == {}


def test_a_copy_corrupted_once_is_copied_again_from_the_start() -> None:
    payload = os.urandom(100_000)
    src, dst = MemoryBackend(), CorruptingMemory(corrupt=1)
    src.put("/out/a.bin", payload)
    [outcome] = transfer(src, "/out/a.bin", dst, "/in/", options()).files
    assert outcome.status is Status.COPIED
    assert outcome.retries == 1 and outcome.resumed_from == 0
    assert dst.get("/in/a.bin") == payload


def test_a_copy_corrupted_every_time_fails_verification_and_publishes_nothing() -> None:
    payload = os.urandom(100_000)
    src, dst = MemoryBackend(), CorruptingMemory(corrupt=None)
    src.put("/out/a.bin", payload)
    opts = options(after=SourceAction.DELETE)
    [outcome] = transfer(src, "/out/a.bin", dst, "/in/", opts).files
    assert outcome.status is Status.FAILED
    assert isinstance(outcome.error, VerificationError)
    assert src.get("/out/a.bin") == payload  # never deleted: its copy did not verify
    assert not dst.exists("/in/a.bin")
    assert no_partials(dst)


def test_preserve_mtime(tmp_path: Path) -> None:
    src = MemoryBackend()
    src.put("/out/kept.csv", b"k", mtime=T0)
    src.put("/out/fresh.csv", b"f", mtime=T0)
    with LocalBackend() as disk:
        transfer(src, "/out/kept.csv", disk, str(tmp_path), options(preserve_mtime=True))
        transfer(src, "/out/fresh.csv", disk, str(tmp_path), options())
    assert (tmp_path / "kept.csv").stat().st_mtime == T0.timestamp()
    assert (tmp_path / "fresh.csv").stat().st_mtime > T0.timestamp() + 86400


def test_preserve_mtime_where_the_destination_cannot_is_not_fatal() -> None:
    src = MemoryBackend()
    src.put("/a", b"a", mtime=T0)
    dst = MemoryBackend(capabilities=Capabilities(atomic_rename_replace=True))
    [outcome] = transfer(src, "/a", dst, "/in/", options(preserve_mtime=True)).files
    assert outcome.status is Status.COPIED
    assert dst.get("/in/a") == b"a"
    assert dst.stat("/in/a").mtime != T0


def test_a_link_planted_as_the_temporary_name_cannot_redirect_the_write(tmp_path: Path) -> None:
    src = MemoryBackend()
    src.put("/out/a.csv", b"downloaded data")
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"precious")
    Path(part_of(src, "/out/a.csv", str(dest / "a.csv"))).symlink_to(victim)
    with LocalBackend() as disk:
        for policy in (IfExists.FAIL, IfExists.RESUME):
            transfer(src, "/out/a.csv", disk, str(dest), options(if_exists=policy))
            assert victim.read_bytes() == b"precious"
    assert list(outside.iterdir()) == [victim]


# --- after a verified copy: delete or move the source -------------------------------------------


def test_delete_source_after_the_verified_copy() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"a")
    src.put("/out/b.csv", b"b")
    summary = transfer(src, "/out/*.csv", dst, "/in", options(after=SourceAction.DELETE))
    assert [f.source_action for f in summary.files] == ["deleted", "deleted"]
    assert src.list("/out") == []
    assert dst.get("/in/a.csv") == b"a" and dst.get("/in/b.csv") == b"b"


def test_delete_source_on_the_local_disk(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/a.csv").write_bytes(b"a")
    dst = MemoryBackend()
    with LocalBackend() as disk:
        summary = transfer(
            disk, str(tmp_path / "out/a.csv"), dst, "/in/", options(after=SourceAction.DELETE)
        )
    assert summary.ok
    assert dst.get("/in/a.csv") == b"a"
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("action", [SourceAction.DELETE, SourceAction.MOVE])
def test_the_source_stays_when_the_copy_fails(action: SourceAction) -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"a")
    src.put("/out/b.csv", b"b")
    temporary = part_of(src, "/out/a.csv", "/in/a.csv")
    dst.fail_next("open_write", PermissionDeniedError("denied"), path=temporary)
    opts = options(after=action, move_to="/archive")
    summary = transfer(src, "/out/*.csv", dst, "/in", opts)
    files = {f.source: f for f in summary.files}
    assert files["/out/a.csv"].status is Status.FAILED
    assert files["/out/a.csv"].source_action is None
    assert src.get("/out/a.csv") == b"a"  # kept: its copy failed
    assert not dst.exists("/in/a.csv")
    assert files["/out/b.csv"].status is Status.COPIED
    assert not src.exists("/out/b.csv")


class LyingSizeMemory(MemoryBackend):
    """A server that lists and stats every file one byte longer than it is."""

    def _entry(self, name: str, node: Any) -> Entry:
        entry = super()._entry(name, node)
        return dataclasses.replace(entry, size=entry.size + 1) if entry.is_file else entry


def test_the_source_stays_when_verification_fails() -> None:
    src, dst = LyingSizeMemory(), MemoryBackend()
    src.put("/out/a.bin", os.urandom(10_000))
    summary = transfer(src, "/out/a.bin", dst, "/in/", options(after=SourceAction.DELETE))
    [outcome] = summary.files
    assert outcome.status is Status.FAILED and outcome.source_action is None
    assert isinstance(outcome.error, VerificationError)
    assert "but the source has 10001" in outcome.reason
    assert src.exists("/out/a.bin")
    assert not dst.exists("/in/a.bin")
    assert no_partials(dst)


@pytest.mark.parametrize("destination", ["data", "data/", "data/a.csv", "data/../data/"])
def test_a_file_copied_onto_itself_is_never_deleted(tmp_path: Path, destination: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/a.csv").write_bytes(b"the only copy")
    destination = f"{tmp_path}/{destination}"
    opts = options(if_exists=IfExists.OVERWRITE, after=SourceAction.DELETE)
    with LocalBackend() as one, LocalBackend() as two:
        summary = transfer(one, str(tmp_path / "data/a.csv"), two, destination, opts)
    assert (tmp_path / "data/a.csv").read_bytes() == b"the only copy"
    assert summary.files[0].source_action is None


def test_a_destination_that_links_to_a_directory_receives_the_file(tmp_path: Path) -> None:
    src = MemoryBackend()
    src.put("/out/a.csv", b"a")
    (tmp_path / "real").mkdir()
    (tmp_path / "inbox").symlink_to(tmp_path / "real")
    skip = options(if_exists=IfExists.SKIP)
    with LocalBackend() as disk:
        for destination in (f"{tmp_path}/inbox", f"{tmp_path}/inbox/"):
            summary = transfer(src, "/out/a.csv", disk, destination, skip)
            assert summary.ok, summary.failures
    assert (tmp_path / "inbox").is_symlink()
    assert (tmp_path / "real/a.csv").read_bytes() == b"a"


def test_move_source_keeps_the_relative_path_in_the_archive() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"a")
    src.put("/out/2026/b.csv", b"b")
    opts = options(after=SourceAction.MOVE, move_to="/archive")
    summary = transfer(src, "/out", dst, "/in", opts, recursive=True)
    assert summary.ok
    actions = sorted(f.source_action or "" for f in summary.files)
    assert actions == ["moved to /archive/2026/b.csv", "moved to /archive/a.csv"]
    assert src.get("/archive/a.csv") == b"a" and src.get("/archive/2026/b.csv") == b"b"
    assert not src.exists("/out/a.csv") and not src.exists("/out/2026/b.csv")
    assert dst.get("/in/2026/b.csv") == b"b"


def test_move_source_never_overwrites_an_archived_file(tmp_path: Path) -> None:
    out, archive = tmp_path / "out", tmp_path / "archive"
    out.mkdir()
    archive.mkdir()
    (out / "a.csv").write_bytes(b"second delivery")
    (archive / "a.csv").write_bytes(b"first delivery")
    dst = MemoryBackend()
    opts = options(after=SourceAction.MOVE, move_to=str(archive))
    with LocalBackend() as disk:
        summary = transfer(disk, f"{out}/*.csv", dst, "/in", opts)
    assert summary.ok
    assert (archive / "a.csv").read_bytes() == b"first delivery"
    others = [p for p in archive.iterdir() if p.name != "a.csv"]
    assert len(others) == 1 and others[0].name.startswith("a.csv.")
    assert others[0].read_bytes() == b"second delivery"
    assert summary.files[0].source_action == f"moved to {others[0]}"
    assert list(out.iterdir()) == []


def test_a_failing_source_action_is_reported_but_the_copy_stands() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"a")
    src.fail_next("remove", PermissionDeniedError("cannot delete /out/a.csv"))
    [outcome] = transfer(src, "/out/a.csv", dst, "/in/", options(after=SourceAction.DELETE)).files
    assert outcome.status is Status.COPIED
    assert isinstance(outcome.error, PermissionDeniedError)
    assert dst.get("/in/a.csv") == b"a" and src.exists("/out/a.csv")


# --- retries and resume after faults ------------------------------------------------------------


def test_a_dropped_read_resumes_where_it_stopped() -> None:
    payload = os.urandom(1_000_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/big.bin", payload)
    src.truncate_reads_after("/out/big.bin", 400_000)
    events = Events()
    [outcome] = transfer(src, "/out/big.bin", dst, "/in/", options(), events=events).files
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.retries == 1
    assert outcome.resumed_from == 400_000 and outcome.bytes == 600_000
    assert outcome.verified == "size+sha256"
    assert dst.get("/in/big.bin") == payload
    assert no_partials(dst)
    assert events.starts == [("/in/big.bin", 0), ("/in/big.bin", 400_000)]


def test_a_dropped_write_resumes_where_it_stopped(tmp_path: Path) -> None:
    payload = os.urandom(700_000)
    (tmp_path / "big.bin").write_bytes(payload)
    dst = MemoryBackend()
    temporary = part_of(LocalBackend(), str(tmp_path / "big.bin"), "/in/big.bin")
    dst.truncate_writes_after(temporary, 250_000, times=2)
    with LocalBackend() as disk:
        [outcome] = transfer(disk, str(tmp_path / "big.bin"), dst, "/in/", options()).files
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.retries == 2
    assert outcome.resumed_from == 500_000
    assert dst.get("/in/big.bin") == payload


def test_resume_from_the_local_partial_after_a_drop(tmp_path: Path) -> None:
    payload = os.urandom(600_000)
    src = MemoryBackend()
    src.put("/out/big.bin", payload)
    src.truncate_reads_after("/out/big.bin", 100_000, times=3)
    with LocalBackend() as disk:
        [outcome] = transfer(src, "/out/big.bin", disk, str(tmp_path), options()).files
    assert outcome.status is Status.COPIED and outcome.retries == 3
    assert outcome.resumed_from == 300_000
    assert (tmp_path / "big.bin").read_bytes() == payload
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]


def test_the_source_changed_between_attempts_restarts_from_zero() -> None:
    old, new = os.urandom(300_000), os.urandom(350_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", old, mtime=T0)
    src.truncate_reads_after("/out/f.bin", 100_000)
    changed = threading.Event()

    def change(job: Job) -> None:
        if not changed.is_set():
            changed.set()
            src.put("/out/f.bin", new, mtime=T0 + timedelta(minutes=5))

    events = Events(change)
    [outcome] = transfer(src, "/out/f.bin", dst, "/in/", options(), events=events).files
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.retries == 1 and outcome.resumed_from == 0
    assert outcome.size == len(new) and outcome.bytes == len(new)
    assert dst.get("/in/f.bin") == new
    assert events.starts == [("/in/f.bin", 0), ("/in/f.bin", 0)]


def test_retries_run_out(tmp_path: Path) -> None:
    src = MemoryBackend()
    src.put("/out/f.bin", os.urandom(100_000))
    src.truncate_reads_after("/out/f.bin", 10_000, times=None)  # every attempt drops
    with LocalBackend() as disk:
        [outcome] = transfer(
            src, "/out/f.bin", disk, str(tmp_path), options(retry=RetryPolicy(2, 0.001))
        ).files
    assert outcome.status is Status.FAILED
    assert isinstance(outcome.error, TransferError) and outcome.error.retriable
    assert src.calls["open_read"] == 3  # the first attempt and two retries
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_the_retry_count_is_the_number_of_retries() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a", b"a")
    src.put("/out/b", b"b")
    src.fail_next("open_read", TransferError("dropped"), times=3, path="/out/a")
    src.fail_next("open_read", PermissionDeniedError("denied"), path="/out/b")
    files = transfer(src, "/out/*", dst, "/in", options(retry=RetryPolicy(2, 0.001))).files
    a, b = files
    assert a.status is Status.FAILED and b.status is Status.FAILED
    assert src.calls["open_read"] == 4  # a: 1 + 2 retries; b: 1
    assert a.retries == 2
    assert b.retries == 0


def test_a_permanent_failure_is_not_retried() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", b"data")
    src.fail_next("open_read", PermissionDeniedError("denied"), times=5)
    [outcome] = transfer(src, "/out/f.bin", dst, "/in/", options()).files
    assert outcome.status is Status.FAILED
    assert isinstance(outcome.error, PermissionDeniedError)
    assert src.calls["open_read"] == 1
    assert dst.snapshot() == {"/in": None}


def test_a_failure_closing_the_upload_is_retried_from_the_partial() -> None:
    payload = os.urandom(200_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", payload)
    dst.fail_next("close_write", TransferError("426 on close"))
    [outcome] = transfer(src, "/out/f.bin", dst, "/in/", options()).files
    assert outcome.status is Status.COPIED and outcome.retries == 1
    assert dst.get("/in/f.bin") == payload


def test_the_total_retry_time_is_bounded() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f", b"x" * 1000)
    src.fail_next("open_read", ConnectError("refused"), times=50)
    policy = RetryPolicy(retries=50, delay=0.01, max_total=0.05)
    [outcome] = transfer(src, "/out/f", dst, "/in/", options(retry=policy)).files
    assert outcome.status is Status.FAILED
    assert src.calls["open_read"] < 50  # gave up on the time bound, not the count


# --- files still being written ------------------------------------------------------------------


def test_stable_for_skips_files_that_changed_during_the_wait() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/growing.log", b"line 1\n", mtime=T0)
    src.put("/out/stable.log", b"done\n", mtime=T0)
    plan = build_plan(src, "/out/*.log")
    src.put("/out/growing.log", b"line 1\nline 2\n", mtime=T0 + timedelta(seconds=1))
    summary = transfer_plan(plan, src, dst, "/in", options(stable_for=0.05))
    files = {f.source: f for f in summary.files}
    growing = files["/out/growing.log"]
    assert growing.status is Status.SKIPPED and growing.error is None
    assert growing.reason == "still being written (changed within 0.05 s)"
    assert files["/out/stable.log"].status is Status.COPIED
    assert dst.get("/in/stable.log") == b"done\n"
    assert not dst.exists("/in/growing.log")
    assert summary.ok


def test_stable_for_with_a_file_appended_to_during_the_wait(tmp_path: Path) -> None:
    (tmp_path / "growing.log").write_bytes(b"start\n")
    (tmp_path / "stable.log").write_bytes(b"done\n")
    stop = threading.Event()

    def append() -> None:
        with open(tmp_path / "growing.log", "ab") as log:
            while not stop.wait(0.01):
                log.write(b"more\n")
                log.flush()

    writer = threading.Thread(target=append)
    dst = MemoryBackend()
    with LocalBackend() as disk:
        plan = build_plan(disk, f"{tmp_path}/*.log")
        writer.start()
        try:
            summary = transfer_plan(plan, disk, dst, "/in", options(stable_for=0.3))
        finally:
            stop.set()
            writer.join()
    files = {Path(f.source).name: f for f in summary.files}
    assert files["growing.log"].status is Status.SKIPPED
    assert "still being written" in files["growing.log"].reason
    assert files["stable.log"].status is Status.COPIED
    assert dst.get("/in/stable.log") == b"done\n"
    assert not dst.exists("/in/growing.log")


# --- the worker pool ----------------------------------------------------------------------------


def test_many_files_in_parallel_all_arrive() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    payloads = {f"/out/d{i % 3}/f{i:03}.bin": os.urandom(1000 + i) for i in range(60)}
    for path, data in payloads.items():
        src.put(path, data)
    events = Events()
    summary = transfer(src, "/out", dst, "/in", options(parallel=8), recursive=True, events=events)
    assert summary.ok and summary.count(Status.COPIED) == 60
    for path, data in payloads.items():
        assert dst.get(path.replace("/out/", "/in/", 1)) == data
    assert [f.source for f in summary.files] == sorted(payloads)  # reported in plan order
    assert len(events.outcomes) == 60 and events.progress == sum(map(len, payloads.values()))


class LimitedLocal(LocalBackend):
    """The disk behind a server that allows ``limit`` connections in all."""

    def __init__(self, limit: int, counter: list[int] | None = None) -> None:
        super().__init__()
        self.limit = limit
        self.counter = counter if counter is not None else [1]

    def sibling(self) -> LocalBackend:
        return LimitedLocal(self.limit, self.counter)

    def connect(self) -> LimitedLocal:
        if self.counter[0] >= self.limit:
            raise ConnectError("421 Too many connections from the same IP address.")
        self.counter[0] += 1
        return self


def test_workers_whose_connection_is_refused_retire(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    for i in range(20):
        (tmp_path / "out" / f"f{i:02}").write_bytes(b"%d" % i)
    dst = MemoryBackend()
    source: Backend = LimitedLocal(limit=2)
    summary = transfer(source, f"{tmp_path}/out/*", dst, "/in", options(parallel=8))
    assert summary.ok, [f.reason for f in summary.files if f.error]
    assert summary.count(Status.COPIED) == 20
    assert all(dst.get(f"/in/f{i:02}") == b"%d" % i for i in range(20))


# --- the summary --------------------------------------------------------------------------------


def test_the_summary_document() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"aaaa")
    src.put("/out/b.csv", b"bb")
    src.put("/out/c.csv", b"c")
    dst.put("/in/b.csv", b"old")
    src.fail_next("open_read", NotFoundError("gone"), path="/out/c.csv")
    summary = transfer(src, "/out/*.csv", dst, "/in", options(if_exists=IfExists.SKIP))
    doc = json.loads(json.dumps(summary.to_dict()))
    assert doc["ok"] is False and doc["dry_run"] is False
    assert doc["counts"] == {"copied": 1, "skipped": 1, "failed": 1, "planned": 0, "deleted": 0}
    assert doc["bytes"] == 4
    assert doc["skipped_names"] == [] and doc["errors"] == []
    a, b, c = doc["files"]
    assert set(a) == {
        "source",
        "target",
        "status",
        "reason",
        "bytes",
        "size",
        "seconds",
        "retries",
        "verified",
        "resumed_from",
        "source_action",
        "error",
    }
    assert a["status"] == "copied" and a["reason"] == "new" and a["bytes"] == 4
    assert a["verified"] == "size+sha256" and a["retries"] == 0 and a["error"] is None
    assert a["seconds"] >= 0
    assert b["status"] == "skipped" and b["reason"] == "exists" and b["bytes"] == 0
    assert c["status"] == "failed" and c["error"]["error"] == "NotFoundError"
    assert c["error"]["exit_code"] == 6
    assert summary.failures and isinstance(summary.failures[0], FerrymanError)


def test_an_empty_summary_is_ok() -> None:
    summary = Summary().finish()
    assert summary.ok and summary.to_dict()["counts"]["copied"] == 0


def test_with_resume_a_copy_that_runs_out_of_retries_keeps_its_partial_for_the_next_run() -> None:
    payload = os.urandom(500_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/big.bin", payload)
    src.truncate_reads_after("/out/big.bin", 200_000, times=None)  # every attempt drops
    few = options(retry=RetryPolicy(retries=1, delay=0.001), if_exists=IfExists.RESUME)
    [failed] = transfer(src, "/out/big.bin", dst, "/in/", few).files
    assert failed.status is Status.FAILED and failed.retries == 1
    assert not dst.exists("/in/big.bin")
    kept = dst.get(part_of(src, "/out/big.bin", "/in/big.bin"))
    assert len(kept) == 400_000 and kept == payload[:400_000]  # two attempts, 200 000 each
    src.clear_faults()
    [done] = transfer(src, "/out/big.bin", dst, "/in/", few).files
    assert done.status is Status.COPIED and done.resumed_from == 400_000
    assert dst.get("/in/big.bin") == payload and no_partials(dst)


def test_without_resume_a_copy_that_runs_out_of_retries_leaves_nothing() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/big.bin", os.urandom(300_000))
    src.truncate_reads_after("/out/big.bin", 100_000, times=None)
    few = options(retry=RetryPolicy(retries=1, delay=0.001))
    [failed] = transfer(src, "/out/big.bin", dst, "/in/", few).files
    assert failed.status is Status.FAILED
    assert no_partials(dst) and not dst.exists("/in/big.bin")


def test_temporary_files_of_other_runs_in_the_source_are_not_taken() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"a")
    src.put("/out/b.csv" + PARTIAL_SUFFIX, b"half")
    summary = transfer(src, "/out/*", dst, "/in/", options())
    assert [f.source for f in summary.files] == ["/out/a.csv"]
    assert [s.path for s in summary.skipped_names] == ["/out/b.csv" + PARTIAL_SUFFIX]
    assert summary.ok  # skipped, not refused: nothing unsafe


def test_a_policy_given_as_a_string_means_that_policy() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"new")
    dst.put("/in/a.csv", b"old")
    [outcome] = transfer(src, "/out/a.csv", dst, "/in/", options(if_exists="skip")).files
    assert outcome.status is Status.SKIPPED and dst.get("/in/a.csv") == b"old"
