"""The state file: location, permissions, schema versions and migrations, bad files."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from ferryman.errors import ConfigError, ExitCode, FerrymanError
from ferryman.state import SCHEMA_VERSION, StateStore, job_lock, state_path
from ferryman.state.schema import APPLICATION_ID, MIGRATIONS

TABLES = {"runs", "steps", "files", "ledger", "source_actions", "publications", "schedule_marks"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _pragma(path: Path, name: str) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows if not r[0].startswith("sqlite_")}


@pytest.fixture
def umask_002() -> Iterator[None]:
    """A permissive umask, to show that the state's modes do not depend on it."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


# -- location -------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FERRYMAN_STATE", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return home


def test_configured_path_wins_and_is_relative_to_the_job_file(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRYMAN_STATE", str(tmp_path / "env.db"))
    job = tmp_path / "jobs" / "nightly.yaml"
    assert state_path(job, Path("state/nightly.db")) == tmp_path / "jobs/state/nightly.db"
    assert state_path(job, tmp_path / "abs.db") == tmp_path / "abs.db"
    assert state_path(job, Path("~/x.db")) == clean_env / "x.db"


def test_environment_variable_comes_next(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRYMAN_STATE", str(tmp_path / "env.db"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert state_path(tmp_path / "job.yaml", None) == tmp_path / "env.db"


def test_xdg_data_home_then_home(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = tmp_path / "job.yaml"
    assert state_path(job, None) == clean_env / ".local/share/ferryman/state.db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert state_path(job, None) == tmp_path / "xdg/ferryman/state.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # the XDG spec says: ignore it
    assert state_path(job, None) == clean_env / ".local/share/ferryman/state.db"


# -- permissions ----------------------------------------------------------------------------


def test_created_directories_are_0700_and_files_0600(tmp_path: Path, umask_002: None) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)  # noqa: S103 - a typical existing directory
    path = existing / "a" / "b" / "state.db"
    with StateStore(path) as store:
        store.start_run("nightly")  # a write: the WAL and its index exist now
        assert _mode(existing / "a") == 0o700
        assert _mode(existing / "a" / "b") == 0o700
        assert _mode(path) == 0o600
        for companion in ("state.db-wal", "state.db-shm"):
            assert _mode(path.parent / companion) == 0o600
        with job_lock(path, "nightly") as lock:
            assert _mode(lock.path.parent) == 0o700
            assert _mode(lock.path) == 0o600
    assert _mode(existing) == 0o755  # directories that existed are not ours to change


def test_an_existing_state_file_keeps_its_content(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        run_id = store.start_run("nightly")
    with StateStore(path) as store:
        assert [r.id for r in store.runs()] == [run_id]


def test_a_directory_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as caught:
        StateStore(blocker / "sub" / "state.db")
    assert str(blocker / "sub") in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_directory_as_the_state_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        StateStore(tmp_path / "state.db")


# -- schema and migrations ------------------------------------------------------------------


def test_a_new_file_gets_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert _pragma(path, "user_version") == SCHEMA_VERSION
    assert _pragma(path, "application_id") == APPLICATION_ID
    assert _tables(path) == TABLES
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migration_from_version_0(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as conn:  # an empty SQLite database: version 0
        conn.execute("PRAGMA user_version = 0")
        conn.execute("VACUUM")  # writes the header: a real, empty database file
    assert path.stat().st_size > 0 and _pragma(path, "user_version") == 0
    with StateStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.start_run("nightly")
    assert _pragma(path, "user_version") == SCHEMA_VERSION
    assert _tables(path) == TABLES


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store, pytest.raises(ValueError):
        store.record_step(12345, "no-such-run", "succeeded")


def test_forward_migrations_run_in_order_and_each_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path):
        pass
    failing = (*MIGRATIONS, ("ALTER TABLE runs ADD COLUMN note TEXT", "THIS IS NOT SQL"))
    with pytest.raises(FerrymanError):
        StateStore(path, migrations=failing)
    assert _pragma(path, "user_version") == SCHEMA_VERSION  # rolled back, column and all
    with closing(sqlite3.connect(path)) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    assert "note" not in columns

    upgraded = (
        *MIGRATIONS,
        ("ALTER TABLE runs ADD COLUMN note TEXT",),
        ("CREATE INDEX runs_by_note ON runs (note)",),
    )
    with StateStore(path, migrations=upgraded) as store:
        assert store.schema_version == SCHEMA_VERSION + 2
        store.start_run("nightly")  # the store works on the upgraded file
    assert _pragma(path, "user_version") == SCHEMA_VERSION + 2


def test_a_file_from_a_newer_ferryman_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path):
        pass
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    before = path.read_bytes()
    with pytest.raises(ConfigError) as caught:
        StateStore(path)
    assert str(path) in caught.value.message
    assert f"schema version {SCHEMA_VERSION + 7}" in caught.value.message
    assert caught.value.hint is not None and "upgrade ferryman" in caught.value.hint
    assert _pragma(path, "user_version") == SCHEMA_VERSION + 7
    assert path.read_bytes() == before


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        conn.commit()
    with pytest.raises(ConfigError, match="not a ferryman state file") as caught:
        StateStore(path)
    assert "orders" in caught.value.message
    assert _tables(path) == {"orders"} and _pragma(path, "user_version") == 0
    with closing(sqlite3.connect(path)) as conn:  # not even its journal mode was touched
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_another_applications_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA application_id = 1234")
        conn.execute("VACUUM")
    with pytest.raises(ConfigError, match="another application"):
        StateStore(path)
    assert _pragma(path, "user_version") == 0 and _tables(path) == set()


# -- bad files ------------------------------------------------------------------------------


def test_a_file_that_is_not_sqlite_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not an SQLite database, it is a shopping list\n" * 100)
    with pytest.raises(ConfigError) as caught:
        StateStore(path)
    error = caught.value
    assert str(path) in error.message
    assert error.hint is not None and "move it away" in error.hint and str(path) in error.hint
    assert error.exit_code == ExitCode.USAGE


def test_a_damaged_state_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        for n in range(50):
            store.start_run(f"job-{n}", variables={"padding": "x" * 500})
    data = bytearray(path.read_bytes())
    assert len(data) > 8192
    data[100:] = b"\xa5" * (len(data) - 100)  # the header stays, every page is garbage
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as caught:
        with StateStore(path) as store:
            store.runs()
    assert str(path) in caught.value.message
    assert caught.value.hint is not None and "move it away" in caught.value.hint


def test_a_read_only_store_says_so(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        store._db.conn.execute("PRAGMA query_only = ON")  # SQLite refuses every write
        with pytest.raises(ConfigError) as caught:
            store.start_run("nightly")
        assert "read-only" in caught.value.message and str(path) in caught.value.message
        assert caught.value.hint is not None and "writable" in caught.value.hint
        store._db.conn.execute("PRAGMA query_only = OFF")
        store.start_run("nightly")  # the failed write left no transaction behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write read-only files")
def test_a_read_only_directory_and_file_are_a_config_error(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    path = directory / "state.db"
    with StateStore(path):
        pass
    os.chmod(path, 0o400)
    os.chmod(directory, 0o500)
    try:
        with pytest.raises(ConfigError) as caught, StateStore(path) as store:
            store.start_run("nightly")
        assert str(path) in caught.value.message
    finally:
        os.chmod(directory, 0o700)
        os.chmod(path, 0o600)


def test_a_full_disk_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        run_id = store.start_run("nightly")
        pages = store._db.conn.execute("PRAGMA page_count").fetchone()[0]
        store._db.conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk full"
        records = [(f"/out/{n:05d}-{'x' * 100}.csv", n, None) for n in range(5000)]
        with pytest.raises(FerrymanError) as caught:
            store.remember("nightly", "ftp://u@h:21", records, run_id)
        assert "full" in caught.value.message and str(path) in caught.value.message
        assert store.taken("nightly") == []
    with StateStore(path) as store:
        assert store.taken("nightly") == []
        store.remember("nightly", "ftp://u@h:21", records, run_id)
        assert len(store.taken("nightly")) == 5000


def test_a_closed_store_cannot_be_used(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.close()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.runs()
