"""What happens when the destination already has the file: the overwrite policies.

``decide`` on its own (every branch), then each policy through the engine over the in-memory
and local backends, checking the destination byte for byte and that no temporary file stays.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferryman.backends.base import Backend, Capabilities, Entry, EntryType
from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend
from ferryman.errors import TargetExistsError, TransferError
from ferryman.retry import RetryPolicy
from ferryman.transfer import (
    PARTIAL_SUFFIX,
    FileOutcome,
    IfExists,
    Job,
    Status,
    TransferOptions,
    decide,
    transfer,
)
from ferryman.transfer.copy import partial_name, source_tag

T0 = datetime(2026, 10, 15, 12, 0, 0, tzinfo=UTC)
FAST = RetryPolicy(retries=3, delay=0.001)


def entry(
    size: int | None = 100,
    mtime: datetime | None = T0,
    precision: int | None = 1,
    kind: EntryType = EntryType.FILE,
) -> Entry:
    return Entry("f", kind, size=size, mtime=mtime, mtime_precision=precision)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- decide() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", list(IfExists))
def test_nothing_at_the_destination_is_always_copied(policy: IfExists) -> None:
    decision = decide(policy, entry(), None)
    assert decision.copies and decision.reason == "new"
    assert decision.offset == 0 and not decision.replace


@pytest.mark.parametrize("policy", list(IfExists))
def test_a_directory_under_the_target_name_is_always_refused(policy: IfExists) -> None:
    with pytest.raises(TargetExistsError) as info:
        decide(policy, entry(), entry(None, kind=EntryType.DIR), target_name="/in/f")
    assert "/in/f is a directory at the destination" in info.value.message


def test_fail_refuses_with_a_hint() -> None:
    with pytest.raises(TargetExistsError) as info:
        decide(IfExists.FAIL, entry(), entry(), target_name="/in/f")
    assert "/in/f already exists at the destination" in info.value.message
    assert info.value.hint is not None
    assert "--if-exists" in info.value.hint and "--overwrite" in info.value.hint


def test_skip_and_overwrite() -> None:
    skip = decide(IfExists.SKIP, entry(), entry())
    assert not skip.copies and skip.reason == "exists"
    overwrite = decide(IfExists.OVERWRITE, entry(), entry(size=5))
    assert overwrite.copies and overwrite.replace and overwrite.offset == 0


@pytest.mark.parametrize(
    ("source_time", "target_time", "precision", "copies"),
    [
        (later(10), T0, 1, True),  # clearly newer
        (later(1), T0, 1, False),  # within the 1 s precision
        (T0, later(10), 1, False),  # the destination is newer
        (later(30), T0, 60, False),  # a LIST time showing minutes: not provably newer
        (later(90), T0, 60, True),
        (later(3600), T0, 86400, False),  # a date-only listing
    ],
)
def test_newer_compares_with_the_coarser_precision(
    source_time: datetime, target_time: datetime, precision: int, copies: bool
) -> None:
    decision = decide(
        IfExists.NEWER, entry(mtime=source_time, precision=precision), entry(mtime=target_time)
    )
    assert decision.copies is copies
    if copies:
        assert decision.replace and decision.reason == "source is newer"
    else:
        assert decision.reason == "destination is as new"


def test_newer_without_times_falls_back_to_sizes() -> None:
    differs = decide(IfExists.NEWER, entry(size=1, mtime=None), entry(size=2))
    assert differs.copies and differs.reason == "times unknown, sizes differ"
    same = decide(IfExists.NEWER, entry(mtime=None), entry(mtime=None))
    assert not same.copies and same.reason == "times unknown, same size"


@pytest.mark.parametrize(
    ("source", "target", "compare_times", "copies"),
    [
        (entry(), entry(), True, False),
        (entry(size=101), entry(), True, True),
        (entry(mtime=later(5)), entry(), True, True),
        (entry(mtime=later(5)), entry(), False, False),  # times ignored: copies lack them
        (entry(mtime=later(30), precision=60), entry(), True, False),
        (entry(mtime=later(0.5)), entry(), True, False),
        (entry(size=None, mtime=later(5)), entry(), True, True),
        (entry(size=None), entry(), False, True),  # nothing to compare: never assume the same
    ],
)
def test_different(source: Entry, target: Entry, compare_times: bool, copies: bool) -> None:
    decision = decide(IfExists.DIFFERENT, source, target, compare_times=compare_times)
    assert decision.copies is copies
    assert decision.replace is copies


def test_resume_continues_a_leftover_partial() -> None:
    decision = decide(IfExists.RESUME, entry(100), None, entry(40, mtime=later(5)))
    assert decision.copies and decision.offset == 40 and not decision.replace
    assert decision.reason == "resuming at byte 40"


@pytest.mark.parametrize(
    "partial",
    [
        entry(40, mtime=T0 - timedelta(seconds=5)),  # older than the source: other content
        entry(140, mtime=later(5)),  # longer than the source
        entry(0, mtime=later(5)),  # empty
    ],
)
def test_resume_restarts_from_an_unusable_partial(partial: Entry) -> None:
    decision = decide(IfExists.RESUME, entry(100), None, partial)
    assert decision.copies and decision.offset == 0 and decision.reason == "new"


def test_other_policies_never_continue_a_partial() -> None:
    for policy in (IfExists.FAIL, IfExists.OVERWRITE, IfExists.DIFFERENT):
        assert decide(policy, entry(100), None, entry(40, mtime=later(5))).offset == 0


def test_resume_with_a_file_under_the_final_name() -> None:
    complete = decide(IfExists.RESUME, entry(100), entry(100))
    assert not complete.copies and complete.reason == "complete"
    shorter = decide(IfExists.RESUME, entry(100), entry(40, mtime=later(5)))
    assert shorter.copies and shorter.offset == 40 and shorter.from_final and shorter.replace
    stale = decide(IfExists.RESUME, entry(100), entry(40, mtime=T0 - timedelta(hours=1)))
    assert stale.copies and stale.offset == 0 and not stale.from_final
    assert stale.reason == "different file"
    longer = decide(IfExists.RESUME, entry(100), entry(140))
    assert longer.copies and longer.offset == 0 and longer.replace


# --- the policies through the engine ------------------------------------------------------------


def run(
    src: MemoryBackend,
    source: str,
    dst: MemoryBackend | LocalBackend,
    destination: str,
    policy: IfExists,
    **options: object,
) -> list[FileOutcome]:
    opts = TransferOptions(if_exists=policy, retry=FAST, parallel=1, **options)  # type: ignore[arg-type]
    summary = transfer(src, source, dst, destination, opts)
    return summary.files


def part_of(src: Backend, source: str, target: str) -> str:
    """The temporary name of a copy of ``source`` (as it is now) to ``target``."""
    return partial_name(target, source_tag(src, source, src.stat(source).size))


def no_partials(backend: MemoryBackend) -> bool:
    return not any(PARTIAL_SUFFIX in path for path in backend.snapshot())


@pytest.fixture
def pair() -> tuple[MemoryBackend, MemoryBackend]:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"new a", mtime=later(60))
    src.put("/out/b.csv", b"new b", mtime=later(60))
    dst.put("/in/a.csv", b"old content of a", mtime=T0)
    return src, dst


def test_fail_is_the_default_and_writes_nothing(pair: tuple[MemoryBackend, MemoryBackend]) -> None:
    src, dst = pair
    assert TransferOptions().if_exists is IfExists.FAIL
    files = {f.source: f for f in run(src, "/out/*.csv", dst, "/in", IfExists.FAIL)}
    a, b = files["/out/a.csv"], files["/out/b.csv"]
    assert a.status is Status.FAILED and isinstance(a.error, TargetExistsError)
    assert "already exists" in a.reason
    assert b.status is Status.COPIED  # one refusal never stops the others
    assert dst.get("/in/a.csv") == b"old content of a"
    assert dst.get("/in/b.csv") == b"new b"
    assert src.calls["open_read"] == 1  # a.csv was never read
    assert no_partials(dst)


def test_skip(pair: tuple[MemoryBackend, MemoryBackend]) -> None:
    src, dst = pair
    files = {f.source: f for f in run(src, "/out/*.csv", dst, "/in", IfExists.SKIP)}
    assert files["/out/a.csv"].status is Status.SKIPPED
    assert files["/out/a.csv"].reason == "exists" and files["/out/a.csv"].error is None
    assert dst.get("/in/a.csv") == b"old content of a"
    assert dst.get("/in/b.csv") == b"new b"


def test_overwrite(pair: tuple[MemoryBackend, MemoryBackend]) -> None:
    src, dst = pair
    files = run(src, "/out/*.csv", dst, "/in", IfExists.OVERWRITE)
    assert [f.status for f in files] == [Status.COPIED, Status.COPIED]
    assert dst.get("/in/a.csv") == b"new a"
    assert no_partials(dst)


def test_overwrite_where_rename_cannot_replace() -> None:
    src = MemoryBackend()
    src.put("/a", b"fresh")
    dst = MemoryBackend(capabilities=Capabilities(hashes=("sha256",)))  # no atomic replace
    dst.put("/in/a", b"stale")
    [outcome] = run(src, "/a", dst, "/in/", IfExists.OVERWRITE)
    assert outcome.status is Status.COPIED, outcome.reason
    assert dst.get("/in/a") == b"fresh"
    assert no_partials(dst)


def test_newer_replaces_only_older_files() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/old-at-dst.csv", b"source is newer", mtime=later(120))
    src.put("/out/new-at-dst.csv", b"source is older", mtime=T0)
    dst.put("/in/old-at-dst.csv", b"old", mtime=T0)
    dst.put("/in/new-at-dst.csv", b"kept", mtime=later(120))
    files = {f.source: f for f in run(src, "/out/*", dst, "/in", IfExists.NEWER)}
    assert files["/out/old-at-dst.csv"].status is Status.COPIED
    assert files["/out/new-at-dst.csv"].status is Status.SKIPPED
    assert dst.get("/in/old-at-dst.csv") == b"source is newer"
    assert dst.get("/in/new-at-dst.csv") == b"kept"


def test_newer_with_a_coarse_source_listing() -> None:
    # the source lists minutes only: 40 s newer is not provably newer, 2 min is
    minutes = Capabilities(hashes=("sha256",), set_mtime=True, mtime_precision=60)
    src, dst = MemoryBackend(capabilities=minutes), MemoryBackend()
    src.put("/out/close.csv", b"close", mtime=later(40))
    src.put("/out/far.csv", b"far", mtime=later(180))
    dst.put("/in/close.csv", b"dst close", mtime=T0)
    dst.put("/in/far.csv", b"dst far", mtime=T0)
    files = {f.source: f for f in run(src, "/out/*", dst, "/in", IfExists.NEWER)}
    assert files["/out/close.csv"].status is Status.SKIPPED
    assert files["/out/far.csv"].status is Status.COPIED
    assert dst.get("/in/close.csv") == b"dst close"
    assert dst.get("/in/far.csv") == b"far"


def test_different_copies_only_what_differs(tmp_path: Path) -> None:
    src = MemoryBackend()
    src.put("/out/same.csv", b"same", mtime=T0)
    src.put("/out/size.csv", b"longer now", mtime=T0)
    src.put("/out/time.csv", b"tttt", mtime=later(3600))
    for name, data in [("same.csv", b"same"), ("size.csv", b"short"), ("time.csv", b"TTTT")]:
        (tmp_path / name).write_bytes(data)
        stamp = T0.timestamp()
        os.utime(tmp_path / name, (stamp, stamp))
    with LocalBackend() as disk:
        files = {
            f.source: f
            for f in run(
                src, "/out/*", disk, str(tmp_path), IfExists.DIFFERENT, preserve_mtime=True
            )
        }
    assert files["/out/same.csv"].status is Status.SKIPPED
    assert files["/out/size.csv"].status is Status.COPIED
    assert files["/out/time.csv"].status is Status.COPIED
    assert (tmp_path / "same.csv").read_bytes() == b"same"
    assert (tmp_path / "size.csv").read_bytes() == b"longer now"
    assert (tmp_path / "time.csv").read_bytes() == b"tttt"


def test_different_without_preserved_times_compares_sizes_only() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.csv", b"1234", mtime=later(3600))
    dst.put("/in/a.csv", b"abcd", mtime=T0)  # same size, other time: a copy's own time
    [outcome] = run(src, "/out/*", dst, "/in", IfExists.DIFFERENT)
    assert outcome.status is Status.SKIPPED
    assert dst.get("/in/a.csv") == b"abcd"


def test_resume_continues_a_leftover_partial_through_the_engine() -> None:
    payload = os.urandom(300_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/big.bin", payload, mtime=T0)
    dst.put(part_of(src, "/out/big.bin", "/in/big.bin"), payload[:120_000], mtime=later(5))
    [outcome] = run(src, "/out/big.bin", dst, "/in/", IfExists.RESUME)
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.resumed_from == 120_000
    assert outcome.bytes == 180_000 and outcome.size == 300_000
    assert outcome.verified == "size+sha256"
    assert dst.get("/in/big.bin") == payload
    assert no_partials(dst)


def test_resume_of_a_local_partial(tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    src = MemoryBackend()
    src.put("/out/big.bin", payload, mtime=T0)
    Path(part_of(src, "/out/big.bin", str(tmp_path / "big.bin"))).write_bytes(payload[:50_000])
    with LocalBackend() as disk:
        [outcome] = run(src, "/out/big.bin", disk, str(tmp_path), IfExists.RESUME)
    assert outcome.resumed_from == 50_000 and outcome.bytes == 150_000
    assert outcome.verified == "size+sha256"  # the source's hash of the whole file
    assert (tmp_path / "big.bin").read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]


def test_resume_never_publishes_a_partial_that_does_not_match_the_source() -> None:
    payload = os.urandom(100_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", payload, mtime=T0)
    # newer and shorter, but other bytes: the source's hash of the whole file catches it
    dst.put(part_of(src, "/out/f.bin", "/in/f.bin"), os.urandom(40_000), mtime=later(5))
    dst.capabilities = Capabilities(set_mtime=True, atomic_rename_replace=True)  # no hashes
    [outcome] = run(src, "/out/f.bin", dst, "/in/", IfExists.RESUME)
    if outcome.status is Status.COPIED:  # started over after the mismatch
        assert outcome.resumed_from == 0 and dst.get("/in/f.bin") == payload
    else:
        assert outcome.error is not None and "sha256" in outcome.error.message
        assert not dst.exists("/in/f.bin")
    assert src.calls["hash"] >= 1


def test_resume_continues_a_shorter_file_under_the_final_name() -> None:
    payload = os.urandom(300_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", payload, mtime=T0)
    dst.put("/in/f.bin", payload[:100_000], mtime=later(5))  # another tool stopped here
    seen_under_final: list[int] = []

    class Watch:
        def started(self, job: Job, offset: int) -> None:
            pass

        def advanced(self, job: Job, nbytes: int) -> None:
            if dst.exists("/in/f.bin"):
                seen_under_final.append(len(dst.get("/in/f.bin")))

        def finished(self, outcome: FileOutcome) -> None:
            pass

    opts = TransferOptions(if_exists=IfExists.RESUME, retry=FAST, parallel=1, chunk_size=32768)
    summary = transfer(src, "/out/f.bin", dst, "/in/", opts, events=Watch())
    [outcome] = summary.files
    assert outcome.status is Status.COPIED and outcome.resumed_from == 100_000
    assert seen_under_final == []  # while continuing, the final name held nothing incomplete
    assert dst.get("/in/f.bin") == payload
    assert no_partials(dst)


def test_resume_of_a_shorter_final_file_that_fails_leaves_no_incomplete_final_file() -> None:
    payload = os.urandom(300_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", payload, mtime=T0)
    dst.put("/in/f.bin", payload[:100_000], mtime=later(5))
    src.fail_next("open_read", TransferError("dropped", retriable=False))
    [outcome] = run(src, "/out/f.bin", dst, "/in/", IfExists.RESUME)
    assert outcome.status is Status.FAILED
    assert not dst.exists("/in/f.bin")  # never an incomplete file under the final name


def test_resume_restarts_a_stale_partial_older_than_the_source() -> None:
    payload = os.urandom(100_000)
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", payload, mtime=later(60))
    stale = part_of(src, "/out/f.bin", "/in/f.bin")
    dst.put(stale, b"G" * 50_000, mtime=T0)  # from an older version
    [outcome] = run(src, "/out/f.bin", dst, "/in/", IfExists.RESUME)
    assert outcome.status is Status.COPIED
    assert outcome.resumed_from == 0 and outcome.bytes == 100_000
    assert dst.get("/in/f.bin") == payload
    assert no_partials(dst)


def test_resume_skips_a_complete_file() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/f.bin", b"complete", mtime=T0)
    dst.put("/in/f.bin", b"complete", mtime=later(5))
    [outcome] = run(src, "/out/f.bin", dst, "/in/", IfExists.RESUME)
    assert outcome.status is Status.SKIPPED and outcome.reason == "complete"
    assert src.calls["open_read"] == 0


def test_a_directory_in_the_way_is_refused_before_reading(tmp_path: Path) -> None:
    src = MemoryBackend()
    src.put("/out/a.csv", b"a")
    (tmp_path / "a.csv").mkdir()
    (tmp_path / "a.csv/keep").write_bytes(b"k")
    with LocalBackend() as disk:
        [outcome] = run(src, "/out/*.csv", disk, str(tmp_path), IfExists.OVERWRITE)
    assert outcome.status is Status.FAILED
    assert isinstance(outcome.error, TargetExistsError)
    assert "is a directory at the destination" in outcome.reason
    assert src.calls["open_read"] == 0
    assert (tmp_path / "a.csv/keep").read_bytes() == b"k"


def test_many_files_in_one_directory_are_decided_from_one_listing() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    for i in range(12):
        src.put(f"/out/f{i:02}.csv", b"new %d" % i)
        if i % 2:
            dst.put(f"/in/f{i:02}.csv", b"old %d" % i)
    files = run(src, "/out/*.csv", dst, "/in", IfExists.SKIP)
    assert [f.status for f in files] == [Status.COPIED, Status.SKIPPED] * 6
    for i in range(12):
        expected = b"old %d" % i if i % 2 else b"new %d" % i
        assert dst.get(f"/in/f{i:02}.csv") == expected
    assert dst.calls["stat"] < 12  # not one stat per file
