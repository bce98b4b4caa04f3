"""From what the user names to a plan: files, globs, recursion, filters, refusals, links and
names a listing must never turn into paths; and where planned files land (destination jobs).

Unit level, over the in-memory and local backends (the engine knows only the interface).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend
from ferryman.errors import ConfigError, ConnectError, ExitCode, NotFoundError
from ferryman.transfer import (
    PARTIAL_SUFFIX,
    Filters,
    Status,
    TransferOptions,
    build_plan,
    destination_jobs,
    parse_age_or_time,
    parse_size,
    split_glob,
    transfer,
)

T0 = datetime(2026, 10, 15, 12, 0, 0, tzinfo=UTC)


def memory(files: dict[str, bytes], *, mtime: datetime = T0) -> MemoryBackend:
    backend = MemoryBackend()
    for path, data in files.items():
        backend.put(path, data, mtime=mtime)
    return backend


def relatives(plan_items: list[object]) -> list[str]:
    return [item.relative for item in plan_items]  # type: ignore[attr-defined]


# --- what a source names --------------------------------------------------------------------


def test_split_glob() -> None:
    assert split_glob("/out/*.csv") == ("/out", "*.csv")
    assert split_glob("*.csv") == (".", "*.csv")
    assert split_glob("/out/a.csv") == ("/out/a.csv", None)
    assert split_glob("/out/[ab].csv") == ("/out", "[ab].csv")


def test_a_single_file() -> None:
    src = memory({"/out/a.csv": b"id\n1\n", "/out/b.csv": b"x"})
    plan = build_plan(src, "/out/a.csv")
    assert plan.single and plan.complete
    assert plan.root == "/out"
    assert [(i.source, i.relative, i.entry.size) for i in plan.items] == [
        ("/out/a.csv", "a.csv", 5)
    ]
    assert plan.total_bytes == 5
    assert plan.directories == [] and plan.skipped == []


def test_a_glob_takes_matching_files_of_that_directory_only() -> None:
    src = memory(
        {
            "/out/a.csv": b"a",
            "/out/b.csv": b"bb",
            "/out/c.txt": b"c",
            "/out/A.CSV": b"upper",
            "/out/sub/d.csv": b"deeper",
        }
    )
    plan = build_plan(src, "/out/*.csv")
    assert not plan.single
    assert relatives(plan.items) == ["a.csv", "b.csv"]  # case matters; no recursion
    assert [i.source for i in plan.items] == ["/out/a.csv", "/out/b.csv"]


def test_a_dated_glob() -> None:
    names = [
        "orders_2026-01-05.txt",
        "orders_2026-11-30_late.txt",
        "orders_2026-1-05.txt",  # one digit: ?? needs two
        "orders_2025-01-05.txt",
        "orders_2026-01-05.csv",
        "ORDERS_2026-01-05.txt",
    ]
    src = memory({f"/in/{n}": n.encode() for n in names})
    plan = build_plan(src, "/in/orders_2026-??-*.txt")
    assert relatives(plan.items) == ["orders_2026-01-05.txt", "orders_2026-11-30_late.txt"]


def test_a_character_class_glob() -> None:
    src = memory({"/out/a.csv": b"1", "/out/b.csv": b"2", "/out/c.csv": b"3"})
    assert relatives(build_plan(src, "/out/[ab].csv").items) == ["a.csv", "b.csv"]


def test_recursive_takes_the_contents_and_notes_every_directory() -> None:
    src = memory(
        {
            "/data/top.csv": b"t",
            "/data/2026/jan.csv": b"j",
            "/data/2026/q1/feb.csv": b"f",
        }
    )
    src.makedirs("/data/empty/inner")
    plan = build_plan(src, "/data", recursive=True)
    assert plan.root == "/data" and not plan.single
    assert sorted(relatives(plan.items)) == ["2026/jan.csv", "2026/q1/feb.csv", "top.csv"]
    assert sorted(plan.directories) == ["2026", "2026/q1", "empty", "empty/inner"]
    sources = {i.relative: i.source for i in plan.items}
    assert sources["2026/q1/feb.csv"] == "/data/2026/q1/feb.csv"


def test_recursive_into_local_recreates_empty_directories(tmp_path: Path) -> None:
    src = memory({"/data/a.csv": b"a", "/data/sub/b.csv": b"bb"})
    src.makedirs("/data/empty/inner")
    dest = tmp_path / "dest"
    with LocalBackend() as disk:
        summary = transfer(src, "/data", disk, str(dest), TransferOptions(), recursive=True)
    assert summary.ok and summary.count(Status.COPIED) == 2
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert found == ["a.csv", "empty", "empty/inner", "sub", "sub/b.csv"]
    assert (dest / "sub/b.csv").read_bytes() == b"bb"
    assert (dest / "empty/inner").is_dir()
    assert not (dest / "data").exists()  # the contents, not the directory itself


def test_a_directory_without_recursive_is_refused_with_a_hint() -> None:
    src = memory({"/data/a.csv": b"a"})
    with pytest.raises(ConfigError) as info:
        build_plan(src, "/data")
    assert "/data is a directory" in info.value.message
    assert info.value.hint is not None and "--recursive" in info.value.hint
    assert "dir/*.csv" in info.value.hint


@pytest.mark.parametrize("source", ["/o*/a.csv", "/out/*/a.csv", "/2026-??/x.csv", "/[ab]/x"])
def test_a_wildcard_in_a_directory_part_is_refused(source: str) -> None:
    src = memory({"/out/sub/a.csv": b"a"})
    with pytest.raises(ConfigError) as info:
        build_plan(src, source)
    assert "wildcards are allowed in the file name only" in info.value.message
    assert info.value.hint is not None and "--recursive" in info.value.hint
    assert src.calls["list"] == 0 and src.calls["stat"] == 0  # refused before asking


def test_a_glob_without_a_match_is_not_found() -> None:
    src = memory({"/out/a.csv": b"a"})
    with pytest.raises(NotFoundError) as info:
        build_plan(src, "/out/*.xml")
    assert "no file in /out matches *.xml" in info.value.message
    assert info.value.hint is not None and "case matters" in info.value.hint


def test_a_missing_file_or_directory_is_not_found() -> None:
    src = memory({"/out/a.csv": b"a"})
    with pytest.raises(NotFoundError):
        build_plan(src, "/out/none.csv")
    # a glob in a missing directory: the failed listing is the plan's error (reported, exit 6)
    plan = build_plan(src, "/nowhere/*.csv")
    assert plan.items == [] and not plan.complete
    assert [type(e) for e in plan.errors] == [NotFoundError]


def test_a_failed_listing_below_the_root_makes_the_plan_incomplete() -> None:
    src = memory({"/d/a.csv": b"a", "/d/sub/b.csv": b"b", "/d/other/c.csv": b"c"})
    src.fail_next("list", ConnectError("connection dropped"), path="/d/sub")
    plan = build_plan(src, "/d", recursive=True)
    assert not plan.complete
    assert [e.message for e in plan.errors] == ["connection dropped"]
    assert sorted(relatives(plan.items)) == ["a.csv", "other/c.csv"]


# --- filters ----------------------------------------------------------------------------------


def tree() -> MemoryBackend:
    return memory(
        {
            "/d/a.csv": b"a",
            "/d/b.txt": b"b",
            "/d/2026/c.csv": b"c",
            "/d/2026/old/d.csv": b"d",
            "/d/tmp/e.csv": b"e",
            "/d/2025/f.csv": b"f",
        }
    )


def test_include_without_a_slash_matches_the_name_at_any_depth() -> None:
    plan = build_plan(tree(), "/d", recursive=True, filters=Filters(include=["*.csv"]))
    assert sorted(relatives(plan.items)) == [
        "2025/f.csv",
        "2026/c.csv",
        "2026/old/d.csv",
        "a.csv",
        "tmp/e.csv",
    ]


def test_include_with_a_slash_matches_the_path_below_the_root() -> None:
    plan = build_plan(tree(), "/d", recursive=True, filters=Filters(include=["2026/*.csv"]))
    assert "2026/c.csv" in relatives(plan.items)
    assert "a.csv" not in relatives(plan.items)
    assert "2025/f.csv" not in relatives(plan.items)
    # a leading slash anchors at the root too
    anchored = build_plan(tree(), "/d", recursive=True, filters=Filters(include=["/a.csv"]))
    assert relatives(anchored.items) == ["a.csv"]


def test_several_includes_take_any_match() -> None:
    filters = Filters(include=["*.txt", "f.csv"])
    plan = build_plan(tree(), "/d", recursive=True, filters=filters)
    assert sorted(relatives(plan.items)) == ["2025/f.csv", "b.txt"]


def test_an_excluded_directory_is_not_even_listed() -> None:
    src = tree()
    # were /d/tmp listed, this fault would make the plan incomplete
    src.fail_next("list", ConnectError("must not be listed"), path="/d/tmp")
    plan = build_plan(src, "/d", recursive=True, filters=Filters(exclude=["tmp"]))
    assert plan.complete, plan.errors
    assert "tmp" not in plan.directories
    assert not any(r.startswith("tmp/") for r in relatives(plan.items))
    assert "a.csv" in relatives(plan.items)


def test_exclude_with_and_without_a_slash() -> None:
    by_path = build_plan(tree(), "/d", recursive=True, filters=Filters(exclude=["2026/old"]))
    assert "2026/old/d.csv" not in relatives(by_path.items)
    assert "2026/c.csv" in relatives(by_path.items)
    by_name = build_plan(tree(), "/d", recursive=True, filters=Filters(exclude=["*.csv"]))
    assert relatives(by_name.items) == ["b.txt"]


def test_include_and_exclude_together() -> None:
    filters = Filters(include=["*.csv"], exclude=["2026/*"])
    plan = build_plan(tree(), "/d", recursive=True, filters=filters)
    assert sorted(relatives(plan.items)) == ["2025/f.csv", "a.csv", "tmp/e.csv"]


def test_size_bounds_are_inclusive() -> None:
    files = {"/s/small": b"x" * 10239, "/s/exact": b"x" * 10240, "/s/big": b"x" * 20000}
    src = memory(files)
    at_least = build_plan(src, "/s/*", filters=Filters(min_size=parse_size("10K")))
    assert relatives(at_least.items) == ["big", "exact"]
    at_most = build_plan(src, "/s/*", filters=Filters(max_size=parse_size("10K")))
    assert relatives(at_most.items) == ["exact", "small"]
    between = Filters(min_size=10240, max_size=10240)
    assert relatives(build_plan(src, "/s/*", filters=between).items) == ["exact"]


def test_time_bounds() -> None:
    src = MemoryBackend()
    src.put("/t/old.csv", b"o", mtime=datetime(2026, 10, 1, tzinfo=UTC))
    src.put("/t/mid.csv", b"m", mtime=datetime(2026, 10, 31, 23, 0, tzinfo=UTC))
    src.put("/t/new.csv", b"n", mtime=datetime(2026, 11, 2, tzinfo=UTC))
    older = Filters(older_than=parse_age_or_time("2026-11-01"))
    assert relatives(build_plan(src, "/t/*", filters=older).items) == ["mid.csv", "old.csv"]
    newer = Filters(newer_than=parse_age_or_time("2026-10-31T00:00"))
    assert relatives(build_plan(src, "/t/*", filters=newer).items) == ["mid.csv", "new.csv"]
    window = Filters(newer_than=datetime(2026, 10, 15, tzinfo=UTC), older_than=older.older_than)
    assert relatives(build_plan(src, "/t/*", filters=window).items) == ["mid.csv"]


def test_newer_than_an_age() -> None:
    now = datetime.now(UTC)
    src = MemoryBackend()
    src.put("/t/fresh.log", b"f", mtime=now - timedelta(minutes=30))
    src.put("/t/stale.log", b"s", mtime=now - timedelta(hours=5))
    plan = build_plan(src, "/t/*.log", filters=Filters(newer_than=parse_age_or_time("2h")))
    assert relatives(plan.items) == ["fresh.log"]
    plan = build_plan(src, "/t/*.log", filters=Filters(older_than=parse_age_or_time("2h")))
    assert relatives(plan.items) == ["stale.log"]


def test_a_coarse_listing_time_is_compared_with_its_precision() -> None:
    # a listing that shows minutes: a file listed at 10:00 may have been written at 10:00:59
    src = MemoryBackend(clock=lambda: T0)
    src.capabilities = src.capabilities.__class__(
        hashes=("sha256",), set_mtime=True, atomic_rename_replace=True, mtime_precision=60
    )
    src.put("/t/a.csv", b"a", mtime=datetime(2026, 11, 1, 10, 0, 40, tzinfo=UTC))
    entry = src.stat("/t/a.csv")
    assert entry.mtime == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert entry.mtime_precision == 60
    newer = Filters(newer_than=datetime(2026, 11, 1, 10, 0, 30, tzinfo=UTC))
    assert relatives(build_plan(src, "/t/*", filters=newer).items) == ["a.csv"]


def test_size_and_time_bounds_never_guess_when_unknown() -> None:
    from ferryman.backends.base import Entry, EntryType

    unknown = Entry("x", EntryType.FILE)
    assert not Filters(min_size=1).accepts("x", unknown)
    assert not Filters(newer_than=T0).accepts("x", unknown)
    assert Filters().accepts("x", unknown)


def test_filters_active() -> None:
    assert not Filters().active
    assert Filters(include=["*"]).active
    assert Filters(min_size=0).active
    assert Filters(older_than=T0).active


@pytest.mark.parametrize(
    ("text", "size"),
    [("1500", 1500), ("10K", 10240), ("10k", 10240), ("2.5M", 2621440), ("1GiB", 1 << 30)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "10X", "-5", "1.2.3K"])
def test_parse_size_refuses_nonsense(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_size(text)
    assert "is not a size" in info.value.message


def test_parse_age_or_time() -> None:
    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    assert parse_age_or_time("2h", now) == now - timedelta(hours=2)
    assert parse_age_or_time("30m", now) == now - timedelta(minutes=30)
    assert parse_age_or_time("7d", now) == now - timedelta(days=7)
    assert parse_age_or_time("1w", now) == now - timedelta(weeks=1)
    assert parse_age_or_time("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    with_offset = parse_age_or_time("2026-11-01T06:00+01:00")
    assert with_offset == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)
    with pytest.raises(ConfigError) as info:
        parse_age_or_time("yesterday")
    assert info.value.hint is not None and "2h" in info.value.hint


# --- links, special files, hostile names -----------------------------------------------------


def test_links_are_not_followed_and_reported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "real").mkdir(parents=True)
    (src / "real/inside.csv").write_bytes(b"i")
    (src / "a.csv").write_bytes(b"a")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(b"s")
    (src / "to_file.csv").symlink_to(src / "a.csv")
    (src / "to_dir").symlink_to(outside)
    with LocalBackend() as disk:
        plan = build_plan(disk, str(src), recursive=True)
        glob = build_plan(disk, f"{src}/*.csv")
        with pytest.raises(ConfigError) as info:
            build_plan(disk, str(src / "to_file.csv"))
    assert sorted(relatives(plan.items)) == ["a.csv", "real/inside.csv"]
    assert plan.directories == ["real"]
    skipped = {Path(s.path).name: s for s in plan.skipped}
    assert set(skipped) == {"to_file.csv", "to_dir"}
    assert all("symbolic link" in s.reason and not s.unsafe for s in skipped.values())
    assert relatives(glob.items) == ["a.csv"]
    assert [Path(s.path).name for s in glob.skipped] == ["to_file.csv"]
    assert "symbolic link" in info.value.message


def test_special_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"a")
    os.mkfifo(tmp_path / "pipe")
    with LocalBackend() as disk:
        plan = build_plan(disk, f"{tmp_path}/*")
    assert relatives(plan.items) == ["a.csv"]
    assert [(Path(s.path).name, s.unsafe) for s in plan.skipped] == [("pipe", False)]
    assert "not a regular file" in plan.skipped[0].reason


HOSTILE = ["..\\evil.csv", "C:x.csv", "bell\x07.csv", "esc\x1b[31m.csv", "del\x7f.csv"]


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_hostile_names_are_refused_one_by_one(kind: str, tmp_path: Path) -> None:
    files = {name: name.encode() for name in [*HOSTILE, "good.csv"]}
    if kind == "memory":
        backend: MemoryBackend | LocalBackend = memory({f"/in/{n}": d for n, d in files.items()})
        root = "/in"
    else:
        backend = LocalBackend()
        (tmp_path / "in").mkdir()
        for name, data in files.items():
            (tmp_path / "in" / name).write_bytes(data)
        root = str(tmp_path / "in")
    plan = build_plan(backend, f"{root}/*.csv")
    assert relatives(plan.items) == ["good.csv"]
    assert sorted(s.path for s in plan.skipped) == sorted(f"{root}/{n}" for n in HOSTILE)
    assert all(s.unsafe and s.reason.startswith("unsafe name:") for s in plan.skipped)
    reasons = {s.path.rsplit("/", 1)[1]: s.reason for s in plan.skipped}
    assert "path separator" in reasons["..\\evil.csv"]
    assert "drive letter" in reasons["C:x.csv"]
    assert "control characters" in reasons["bell\x07.csv"]


def test_a_glob_matching_only_hostile_names_reports_them() -> None:
    src = memory({"/in/C:x.csv": b"x", "/in/bell\x07.csv": b"y"})
    plan = build_plan(src, "/in/*.csv")
    assert plan.items == []
    assert len(plan.skipped) == 2 and all(s.unsafe for s in plan.skipped)


# --- where planned files land -----------------------------------------------------------------


def test_one_file_into_an_existing_directory_or_onto_a_name(tmp_path: Path) -> None:
    src = memory({"/out/a.csv": b"a"})
    plan = build_plan(src, "/out/a.csv")
    (tmp_path / "dir").mkdir()
    with LocalBackend() as disk:
        jobs, root, refused = destination_jobs(plan, disk, str(tmp_path / "dir"))
        assert [j.target for j in jobs] == [str(tmp_path / "dir/a.csv")] and refused == []
        jobs, root, _ = destination_jobs(plan, disk, f"{tmp_path}/new/")
        assert [j.target for j in jobs] == [str(tmp_path / "new/a.csv")]
        jobs, root, _ = destination_jobs(plan, disk, str(tmp_path / "renamed.csv"))
        assert [j.target for j in jobs] == [str(tmp_path / "renamed.csv")]
        assert root == str(tmp_path)


def test_several_files_always_go_into_a_directory_created_when_missing(tmp_path: Path) -> None:
    src = memory({"/out/a.csv": b"a", "/out/b.csv": b"bb"})
    dest = tmp_path / "made/deeper"
    with LocalBackend() as disk:
        summary = transfer(src, "/out/*.csv", disk, str(dest), TransferOptions())
    assert summary.ok
    assert sorted(p.name for p in dest.iterdir()) == ["a.csv", "b.csv"]
    assert (dest / "b.csv").read_bytes() == b"bb"
    assert not list(tmp_path.rglob(f"*{PARTIAL_SUFFIX}"))


def test_a_remote_destination_mirrors_relative_paths() -> None:
    src = memory({"/d/a.csv": b"a", "/d/s/b.csv": b"b"})
    dst = MemoryBackend()
    plan = build_plan(src, "/d", recursive=True)
    jobs, root, refused = destination_jobs(plan, dst, "/in/")
    assert sorted(j.target for j in jobs) == ["/in/a.csv", "/in/s/b.csv"]
    assert root == "/in" and refused == []


def test_a_symlink_on_the_local_destination_cannot_lead_writes_outside(tmp_path: Path) -> None:
    src = memory({"/d/ok.csv": b"ok", "/d/sub/x.csv": b"x", "/d/sub/deeper/y.csv": b"y"})
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    with LocalBackend() as disk:
        summary = transfer(src, "/d", disk, str(dest), TransferOptions(), recursive=True)
    assert list(outside.iterdir()) == []
    assert (dest / "ok.csv").read_bytes() == b"ok"
    assert not summary.ok
    refused = [s for s in summary.skipped_names if s.unsafe]
    assert {"/d/sub/x.csv", "/d/sub/deeper/y.csv"} <= {s.path for s in refused}
    assert all("outside the destination" in s.reason for s in refused)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest", "outside"]


def test_a_file_where_a_destination_directory_should_be_fails_only_its_files(
    tmp_path: Path,
) -> None:
    src = memory({"/d/a.csv": b"a", "/d/sub/c.csv": b"c", "/d/z.csv": b"z"})
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").write_bytes(b"a file in the way")
    with LocalBackend() as disk:
        summary = transfer(src, "/d", disk, str(dest), TransferOptions(), recursive=True)
    assert (dest / "a.csv").read_bytes() == b"a"
    assert (dest / "z.csv").read_bytes() == b"z"
    assert (dest / "sub").read_bytes() == b"a file in the way"
    assert not summary.ok
    assert summary.failures[0].exit_code == ExitCode.TRANSFER
