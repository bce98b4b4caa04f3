"""The journal of effects in the state file (issue 11): pending source actions recorded with
the ledger in one transaction, and the uploads a job is about to make."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ferryman.errors import ConfigError
from ferryman.state import PendingSourceAction, StateStore

T = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
CONN = "ftpes://orders@host:21"


def action(
    path: str, size: int | None = 10, kind: str = "move", mtime: datetime | None = T
) -> PendingSourceAction:
    return PendingSourceAction(CONN, path, size, mtime, kind, "/archive", path.rsplit("/", 1)[-1])


def test_taken_files_and_their_actions_commit_together(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        run = store.start_run("nightly")
        taken = {CONN: [("/out/a.csv", 10, T), ("/out/b.csv", None, None)]}
        actions = [action("/out/a.csv"), action("/out/b.csv", None, "delete", None)]
        store.commit_taken("nightly", taken, actions, run)
        assert sorted(t.path for t in store.taken("nightly")) == ["/out/a.csv", "/out/b.csv"]
        pending = store.pending_source_actions("nightly")
        assert [(p.path, p.size, p.action, p.run_id) for p in pending] == [
            ("/out/a.csv", 10, "move", run),
            ("/out/b.csv", None, "delete", run),
        ]
        assert pending[0].mtime == T.isoformat() and pending[1].mtime is None
        assert store.pending_source_actions("other job") == []
        store.source_actions_done("nightly", pending[:1])
        assert [p.path for p in store.pending_source_actions("nightly")] == ["/out/b.csv"]


def test_a_failing_commit_records_neither(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        run = store.start_run("nightly")
        with pytest.raises(ValueError, match="not a byte count"):
            store.commit_taken(
                "nightly", {CONN: [("/out/a.csv", 10, T)]}, [action("/out/x", -5)], run
            )
        assert store.taken("nightly") == []
        assert store.pending_source_actions("nightly") == []


def test_publications_remember_the_latest_intent_and_its_run(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        first = store.start_run("nightly")
        store.intend_publications("nightly", CONN, [("/in/r.csv", 3, "aa")], first)
        store.finish_run(first, "interrupted", 130)
        found = store.publications("nightly", CONN, ["/in/r.csv", "/in/other.csv"])
        assert list(found) == ["/in/r.csv"]
        assert (found["/in/r.csv"].sha256, found["/in/r.csv"].run_status) == ("aa", "interrupted")
        second = store.start_run("nightly")
        store.intend_publications("nightly", CONN, [("/in/r.csv", 4, "bb")], second)
        store.finish_run(second, "succeeded", 0)
        again = store.publications("nightly", CONN, ["/in/r.csv"])["/in/r.csv"]
        assert (again.size, again.sha256, again.run_id, again.run_status) == (
            4,
            "bb",
            second,
            "succeeded",
        )
        assert store.publications("nightly", "sftp://other@host:22", ["/in/r.csv"]) == {}


def test_a_version_1_file_is_migrated_with_its_ledger_kept(tmp_path: Path) -> None:
    from ferryman.state.schema import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "s.db"
    with StateStore(path, migrations=MIGRATIONS[:1]) as old:
        run = old.start_run("nightly")
        old.remember("nightly", CONN, [("/out/a.csv", 10, T)], run)
    with StateStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [t.path for t in store.taken("nightly")] == ["/out/a.csv"]
        assert store.pending_source_actions("nightly") == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    with pytest.raises(ConfigError, match="newer ferryman"):
        StateStore(path, migrations=MIGRATIONS[:1])
