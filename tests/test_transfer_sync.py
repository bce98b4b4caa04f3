"""sync: mirror a directory in either direction, copy only what is missing or different, and
delete extras behind guards (complete listings, a share limit, excludes, never the root).

API level over the in-memory backend and the disk; the command over in-process pyftpdlib in
both directions.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend
from ferryman.cli import cli
from ferryman.errors import ConfigError, ConnectError, ExitCode
from ferryman.retry import RetryPolicy
from ferryman.transfer import (
    PARTIAL_SUFFIX,
    DeletionGuardError,
    Filters,
    IfExists,
    Status,
    Summary,
    SyncOptions,
    TransferOptions,
    sync,
)

from .conftest import PASSWORD, Served, ServerFactory

T0 = datetime(2026, 10, 15, 12, 0, 0, tzinfo=UTC)
OPTS = TransferOptions(if_exists=IfExists.DIFFERENT, retry=RetryPolicy(2, 0.001), parallel=2)


def by_status(summary: Summary) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for f in summary.files:
        result.setdefault(str(f.status), []).append(f.target)
    return {k: sorted(v) for k, v in result.items()}


def files_of(backend: MemoryBackend, root: str) -> dict[str, bytes | None]:
    prefix = root.rstrip("/") + "/"
    return {p[len(prefix) :]: d for p, d in backend.snapshot().items() if p.startswith(prefix)}


@pytest.fixture
def source() -> MemoryBackend:
    src = MemoryBackend()
    src.put("/src/a.csv", b"a1", mtime=T0)
    src.put("/src/b.csv", b"b1", mtime=T0)
    src.put("/src/sub/c.csv", b"c1", mtime=T0)
    src.makedirs("/src/empty")
    return src


def test_a_first_sync_copies_everything_and_keeps_times(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    summary = sync(source, "/src", dst, "/dst", OPTS)
    assert summary.ok
    assert by_status(summary) == {"copied": ["/dst/a.csv", "/dst/b.csv", "/dst/sub/c.csv"]}
    assert files_of(dst, "/dst") == {
        "a.csv": b"a1",
        "b.csv": b"b1",
        "empty": None,
        "sub": None,
        "sub/c.csv": b"c1",
    }
    assert dst.stat("/dst/sub/c.csv").mtime == T0


def test_a_second_sync_copies_only_what_is_missing_or_different(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    sync(source, "/src", dst, "/dst", OPTS)
    source.put("/src/a.csv", b"a2 longer", mtime=T0 + timedelta(minutes=1))  # changed
    source.put("/src/sub/d.csv", b"d1", mtime=T0)  # new
    dst.put("/dst/b.csv", b"B1", mtime=T0 + timedelta(hours=1))  # same size, touched
    summary = sync(source, "/src", dst, "/dst", OPTS)
    statuses = by_status(summary)
    assert statuses["copied"] == ["/dst/a.csv", "/dst/b.csv", "/dst/sub/d.csv"]
    assert statuses["skipped"] == ["/dst/sub/c.csv"]
    assert dst.get("/dst/a.csv") == b"a2 longer" and dst.get("/dst/b.csv") == b"b1"
    again = sync(source, "/src", dst, "/dst", OPTS)
    assert by_status(again) == {
        "skipped": ["/dst/a.csv", "/dst/b.csv", "/dst/sub/c.csv", "/dst/sub/d.csv"]
    }
    assert source.calls["open_read"] == 6  # 3 + 3, nothing on the third run


def test_sync_from_and_to_the_local_disk(tmp_path: Path, source: MemoryBackend) -> None:
    local = tmp_path / "mirror"
    with LocalBackend() as disk:
        down = sync(source, "/src", disk, str(local), OPTS)
        assert down.ok and down.count(Status.COPIED) == 3
        assert (local / "sub/c.csv").read_bytes() == b"c1"
        assert (local / "empty").is_dir()
        assert (local / "a.csv").stat().st_mtime == T0.timestamp()
        (local / "sub/new.csv").write_bytes(b"local only")
        back = MemoryBackend()
        up = sync(disk, str(local), back, "/up", OPTS)
        assert up.ok and up.count(Status.COPIED) == 4
        assert back.get("/up/sub/new.csv") == b"local only"
        assert back.get("/up/a.csv") == b"a1"
        assert sync(source, "/src", disk, str(local), OPTS).count(Status.COPIED) == 0


def test_sync_needs_a_directory(source: MemoryBackend) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        sync(source, "/src/a.csv", MemoryBackend(), "/dst", OPTS)


def test_delete_removes_extra_files_and_directories(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    for path in ["a.csv", "b.csv", "sub/c.csv", "x1", "x2", "sub/x3", "gone/deep/x4"]:
        dst.put(f"/dst/{path}", b"?" if path.startswith(("x", "sub/x", "gone")) else b"")
    dst.makedirs("/dst/gone/empty")
    summary = sync(source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True))
    assert summary.ok, summary.failures
    deleted = by_status(summary)["deleted"]
    assert deleted == sorted(
        [
            "/dst/x1",
            "/dst/x2",
            "/dst/sub/x3",
            "/dst/gone/deep/x4",
            "/dst/gone/deep",
            "/dst/gone/empty",
            "/dst/gone",
        ]
    )
    assert files_of(dst, "/dst") == files_of(source, "/src")
    assert all(f.reason == "not in the source" for f in summary.files if f.status == "deleted")


def test_delete_never_removes_the_root(source: MemoryBackend) -> None:
    empty = MemoryBackend()
    empty.makedirs("/src")
    dst = MemoryBackend()
    dst.put("/dst/a", b"a")
    dst.put("/dst/d/b", b"b")
    summary = sync(empty, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True))
    assert summary.ok
    assert dst.snapshot() == {"/dst": None}
    assert "/dst" not in [f.target for f in summary.files]


def test_delete_without_delete_keeps_extras(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    dst.put("/dst/extra", b"x")
    summary = sync(source, "/src", dst, "/dst", OPTS)
    assert summary.ok and summary.count(Status.DELETED) == 0
    assert dst.get("/dst/extra") == b"x"


def test_a_failed_source_listing_deletes_nothing_and_says_why(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    sync(source, "/src", dst, "/dst", OPTS)
    dst.put("/dst/extra", b"x")
    source.fail_next("list", ConnectError("connection reset while listing"), path="/src/sub")
    summary = sync(source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True))
    assert not summary.ok
    assert summary.count(Status.DELETED) == 0
    assert dst.get("/dst/extra") == b"x"
    assert dst.get("/dst/sub/c.csv") == b"c1"  # would have looked extra
    messages = [e.message for e in summary.errors]
    assert messages[0] == "connection reset while listing"
    guard = [e for e in summary.errors if isinstance(e, DeletionGuardError)]
    assert len(guard) == 1
    assert "not deleting anything: a listing failed" in guard[0].message
    assert "connection reset while listing" in guard[0].message


def test_a_failed_root_listing_deletes_nothing(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    dst.put("/dst/a.csv", b"a1")
    dst.put("/dst/keep", b"k")
    source.fail_next("list", ConnectError("dropped"), path="/src")
    summary = sync(source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True))
    assert summary.count(Status.DELETED) == 0 and not summary.ok
    assert set(files_of(dst, "/dst")) == {"a.csv", "keep"}


def test_a_failed_destination_listing_deletes_nothing(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    dst.put("/dst/sub/extra", b"x")
    dst.fail_next("list", ConnectError("dropped"), path="/dst/sub")
    summary = sync(source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True))
    assert summary.count(Status.DELETED) == 0
    assert any(isinstance(e, DeletionGuardError) for e in summary.errors)
    assert dst.get("/dst/sub/extra") == b"x"


def test_the_share_guard_refuses_and_force_proceeds(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    sync(source, "/src", dst, "/dst", OPTS)
    for i in range(4):
        dst.put(f"/dst/extra{i}", b"x")
    # 4 of the destination's 7 files would go: 57 % > 50 %
    summary = sync(source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True))
    assert summary.count(Status.DELETED) == 0 and not summary.ok
    [guard] = summary.errors
    assert isinstance(guard, DeletionGuardError)
    assert "4 of the destination's 7 files (57%)" in guard.message
    assert guard.hint is not None and "--force" in guard.hint
    assert all(dst.exists(f"/dst/extra{i}") for i in range(4))
    # a higher limit allows it
    higher = sync(source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, max_delete_share=0.6))
    assert higher.ok and higher.count(Status.DELETED) == 4
    for i in range(4):
        dst.put(f"/dst/extra{i}", b"x")
    forced = sync(source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True))
    assert forced.ok and forced.count(Status.DELETED) == 4
    assert files_of(dst, "/dst") == files_of(source, "/src")


def test_excludes_protect_destination_files(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    dst.put("/dst/notes.keep", b"mine")
    dst.put("/dst/local/state.db", b"state")
    dst.put("/dst/extra.csv", b"x")
    source.put("/src/skip.keep", b"not copied")
    filters = Filters(exclude=["*.keep", "local"])
    summary = sync(
        source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True), filters=filters
    )
    assert summary.ok
    assert dst.get("/dst/notes.keep") == b"mine"
    assert dst.get("/dst/local/state.db") == b"state"
    assert not dst.exists("/dst/extra.csv")
    assert not dst.exists("/dst/skip.keep")


def test_other_filters_choose_what_is_copied_but_never_cause_deletion(
    source: MemoryBackend,
) -> None:
    dst = MemoryBackend()
    dst.put("/dst/b.csv", b"old b")
    filters = Filters(include=["a.csv"])
    summary = sync(
        source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True), filters=filters
    )
    assert summary.ok
    assert dst.get("/dst/a.csv") == b"a1"
    assert dst.get("/dst/b.csv") == b"old b"  # not taken, but the source has it: kept
    assert not dst.exists("/dst/sub/c.csv")


def test_dry_run_changes_nothing_and_reports_the_plan(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    dst.put("/dst/a.csv", b"a1", mtime=T0)
    dst.put("/dst/extra", b"x")
    before = dst.snapshot()
    opts = TransferOptions(if_exists=IfExists.DIFFERENT, dry_run=True)
    summary = sync(source, "/src", dst, "/dst", opts, SyncOptions(delete=True, force=True))
    assert dst.snapshot() == before
    assert summary.dry_run and summary.ok
    statuses = by_status(summary)
    assert statuses["planned"] == ["/dst/b.csv", "/dst/extra", "/dst/sub/c.csv"]
    assert statuses["skipped"] == ["/dst/a.csv"]
    deletion = next(f for f in summary.files if f.target == "/dst/extra")
    assert deletion.reason == "would delete: not in the source"
    assert dst.calls["open_write"] == dst.calls["remove"] == dst.calls["mkdir"] == 0


def test_newer_policy_for_sync(source: MemoryBackend) -> None:
    dst = MemoryBackend()
    dst.put("/dst/a.csv", b"edited at the destination", mtime=T0 + timedelta(hours=1))
    opts = TransferOptions(if_exists=IfExists.NEWER)
    summary = sync(source, "/src", dst, "/dst", opts)
    assert dst.get("/dst/a.csv") == b"edited at the destination"
    assert by_status(summary)["skipped"] == ["/dst/a.csv"]


def test_a_failed_deletion_is_reported(source: MemoryBackend) -> None:
    from ferryman.errors import PermissionDeniedError

    dst = MemoryBackend()
    sync(source, "/src", dst, "/dst", OPTS)
    dst.put("/dst/locked", b"x")
    dst.fail_next("remove", PermissionDeniedError("denied"), path="/dst/locked")
    summary = sync(source, "/src", dst, "/dst", OPTS, SyncOptions(delete=True, force=True))
    [failed] = [f for f in summary.files if f.status == "failed"]
    assert failed.target == "/dst/locked" and failed.reason == "denied"
    assert not summary.ok


# --- the command, over pyftpdlib ---------------------------------------------------------------

ENV = {"FM_PW": PASSWORD}


def ferryman(served: Served, *args: str | Path) -> Result:
    extra = ["--password-env", "FM_PW", "--retries", "0", "--timeout", "5"]
    if served.server.pki is not None:
        extra += ["--ca-file", str(served.server.pki.ca_cert)]
    result = CliRunner().invoke(cli, [*map(str, args), *extra], env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert PASSWORD not in result.output
    return result


def tree_of(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def plain(ftp_server: ServerFactory) -> Served:
    return ftp_server("none")


def test_sync_up_and_down_over_ftp(plain: Served, tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "sub/deeper").mkdir(parents=True)
    (local / "empty").mkdir()
    (local / "a.csv").write_bytes(b"a" * 1000)
    (local / "sub/b.csv").write_bytes(os.urandom(70_000))
    (local / "sub/deeper/c.csv").write_bytes(b"c")
    stamp = T0.timestamp()
    for path in local.rglob("*.csv"):
        os.utime(path, (stamp, stamp))
    up = ferryman(plain, "sync", local, plain.url("/mirror"), "--json")
    assert up.exit_code == 0, up.output
    doc = json.loads(up.stdout)
    assert doc["ok"] and doc["counts"]["copied"] == 3
    assert tree_of(plain.root / "mirror") == tree_of(local)
    assert (plain.root / "mirror/a.csv").stat().st_mtime == stamp  # MFMT
    # a second run copies nothing
    again = json.loads(ferryman(plain, "sync", local, plain.url("/mirror"), "--json").stdout)
    assert again["counts"]["copied"] == 0 and again["counts"]["skipped"] == 3
    # down again into a fresh directory, then change the remote side and sync back
    down_dir = tmp_path / "down"
    down = ferryman(plain, "sync", plain.url("/mirror"), down_dir)
    assert down.exit_code == 0, down.output
    assert tree_of(down_dir) == tree_of(local)
    (plain.root / "mirror/sub/b.csv").write_bytes(b"changed on the server")
    (plain.root / "mirror/new.csv").write_bytes(b"new")
    (down_dir / "stale.csv").write_bytes(b"only here")
    result = ferryman(plain, "sync", plain.url("/mirror"), down_dir, "--delete", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["counts"]["copied"] == 2 and doc["counts"]["deleted"] == 1
    assert tree_of(down_dir) == tree_of(plain.root / "mirror")
    assert not list(tmp_path.rglob(f"*{PARTIAL_SUFFIX}"))
    assert not list(plain.root.rglob(f"*{PARTIAL_SUFFIX}"))


def test_sync_delete_guard_over_ftp(plain: Served, tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    (local / "keep.csv").write_bytes(b"k")
    mirror = plain.root / "mirror"
    mirror.mkdir()
    for i in range(3):
        (mirror / f"old{i}.csv").write_bytes(b"o")
    (mirror / "notes.txt").write_bytes(b"protected")
    refused = ferryman(plain, "sync", local, plain.url("/mirror"), "--delete", "--exclude", "*.txt")
    assert refused.exit_code == ExitCode.TRANSFER, refused.output
    assert (
        "ferryman: error: not deleting anything: 3 of the destination's 3 files" in refused.stderr
    )
    assert "--force" in refused.stderr
    assert sorted(p.name for p in mirror.iterdir()) == [
        "keep.csv",
        "notes.txt",
        "old0.csv",
        "old1.csv",
        "old2.csv",
    ]
    dry = ferryman(
        plain,
        "sync",
        local,
        plain.url("/mirror"),
        "--delete",
        "--force",
        "--dry-run",
        "--exclude",
        "*.txt",
    )
    assert dry.exit_code == 0, dry.output
    planned = [line for line in dry.stdout.splitlines() if line.startswith("planned ")]
    assert len(planned) == 3 and all("(would delete: not in the source)" in p for p in planned)
    assert "1 skipped, 3 planned" in dry.stdout
    assert len(list(mirror.iterdir())) == 5
    forced = ferryman(
        plain, "sync", local, plain.url("/mirror"), "--delete", "--force", "--exclude", "*.txt"
    )
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in mirror.iterdir()) == ["keep.csv", "notes.txt"]
    assert (mirror / "notes.txt").read_bytes() == b"protected"
    assert "3 deleted" in forced.stdout


def test_sync_of_a_missing_source_is_not_found(plain: Served, tmp_path: Path) -> None:
    result = ferryman(plain, "sync", plain.url("/nope"), tmp_path / "x", "--delete")
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    assert not (tmp_path / "x").exists()
