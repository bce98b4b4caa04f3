"""The state file's schema, versioned with ``PRAGMA user_version``, and its forward migrations.

``MIGRATIONS[n]`` upgrades a file from version ``n`` to ``n + 1``; version 0 is an empty file.
Each step runs in its own ``BEGIN IMMEDIATE`` transaction together with the version bump, so a
file is always at exactly one version, whichever process (of several starting at once) gets
there first. A file from a *newer* ferryman is refused, never downgraded; an SQLite file that
is somebody else's database is refused, never written to.

Time stamps are UTC ISO 8601 text (``2024-05-01T02:00:00.123+00:00``); JSON columns hold
objects. The ledger key is (job, connection, path, size, mtime) with ``-1`` for an unknown size
and ``''`` for an unknown mtime (SQL NULLs would never compare equal).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Migration",
    "check_file",
    "migrate",
]

#: ``PRAGMA application_id`` of a ferryman state file ("FRYM"), so ``file(1)`` and ferryman
#: itself can tell it from other SQLite databases.
APPLICATION_ID = 0x4652594D

Migration = Sequence[str]

_V1: Migration = (
    f"PRAGMA application_id = {APPLICATION_ID}",
    """
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        job         TEXT    NOT NULL,
        job_file    TEXT,
        started     TEXT    NOT NULL,
        finished    TEXT,
        status      TEXT    NOT NULL
                    CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
        exit_code   INTEGER,
        error       TEXT,
        variables   TEXT    NOT NULL DEFAULT '{}',
        transcript  TEXT,
        host        TEXT    NOT NULL,
        pid         INTEGER NOT NULL,
        proc_start  TEXT
    )
    """,
    "CREATE INDEX runs_by_job ON runs (job, id)",
    "CREATE INDEX runs_running ON runs (status) WHERE status = 'running'",
    """
    CREATE TABLE steps (
        id          INTEGER PRIMARY KEY,
        run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        name        TEXT    NOT NULL,
        action      TEXT,
        status      TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed', 'skipped')),
        reason      TEXT,
        started     TEXT,
        finished    TEXT,
        seconds     REAL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        error       TEXT,
        hint        TEXT,
        exit_code   INTEGER,
        result      TEXT    NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX steps_by_run ON steps (run_id, position)",
    """
    CREATE TABLE files (
        id          INTEGER PRIMARY KEY,
        run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step        TEXT    NOT NULL,
        source      TEXT    NOT NULL,
        target      TEXT    NOT NULL,
        status      TEXT    NOT NULL,
        reason      TEXT,
        bytes       INTEGER NOT NULL DEFAULT 0,
        seconds     REAL    NOT NULL DEFAULT 0,
        retries     INTEGER NOT NULL DEFAULT 0,
        verified    TEXT,
        error       TEXT
    )
    """,
    "CREATE INDEX files_by_run ON files (run_id, step)",
    """
    CREATE TABLE ledger (
        job         TEXT    NOT NULL,
        connection  TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        size        INTEGER NOT NULL,
        mtime       TEXT    NOT NULL,
        run_id      INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        taken       TEXT    NOT NULL,
        PRIMARY KEY (job, connection, path, size, mtime)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX ledger_by_run ON ledger (run_id)",
)

#: Version 2 (issue 11, exactly once across crashes): the after: actions (archive, delete) of
#: only-new transfers, recorded in the same transaction as the ledger and removed once done, so
#: a run killed while archiving leaves them for the next run to finish; and the files a job
#: publishes with send, recorded before the upload, so a re-run after a crash recognizes its
#: own upload instead of refusing it as somebody else's file or sending it twice.
_V2: Migration = (
    """
    CREATE TABLE source_actions (
        job         TEXT    NOT NULL,
        connection  TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        size        INTEGER NOT NULL,
        mtime       TEXT    NOT NULL,
        action      TEXT    NOT NULL CHECK (action IN ('delete', 'move')),
        move_to     TEXT,
        relative    TEXT    NOT NULL,
        run_id      INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        recorded    TEXT    NOT NULL,
        PRIMARY KEY (job, connection, path, size, mtime)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE publications (
        job         TEXT    NOT NULL,
        connection  TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        size        INTEGER NOT NULL,
        sha256      TEXT    NOT NULL,
        run_id      INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        recorded    TEXT    NOT NULL,
        PRIMARY KEY (job, connection, path)
    ) WITHOUT ROWID
    """,
)

#: Version 3 (issue 16, ``ferryman serve``): per job and schedule, the latest scheduled time
#: serve has dealt with (started, skipped or given up by the catch-up policy), so that times
#: missed while serve was down can be caught up after a restart.
_V3: Migration = (
    """
    CREATE TABLE schedule_marks (
        job         TEXT    NOT NULL,
        schedule    TEXT    NOT NULL,
        fired       TEXT    NOT NULL,
        PRIMARY KEY (job, schedule)
    ) WITHOUT ROWID
    """,
)

#: Version 4 (issue 17, the web dashboard): indexes for its pages over a long history --
#: runs by status and by start time (the run list's filters, the charts' days), the files of
#: a run with status and bytes in the index itself (a run's totals and the per-day sums read
#: no table rows), and a job's ledger newest first.
_V4: Migration = (
    "CREATE INDEX runs_by_status ON runs (status, id)",
    "CREATE INDEX runs_by_started ON runs (started)",
    "CREATE INDEX files_totals ON files (run_id, status, bytes)",
    "CREATE INDEX ledger_by_taken ON ledger (job, taken)",
)

#: Every migration, in order; the schema version of this ferryman is their number.
MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3, _V4)
SCHEMA_VERSION = len(MIGRATIONS)


def _version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _check_ours(conn: sqlite3.Connection, path: Path, version: int, newest: int) -> None:
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if app_id not in (0, APPLICATION_ID):
        raise ConfigError(
            f"{path} is an SQLite database of another application "
            f"(application id {app_id:#x}), not a ferryman state file",
            hint="configure another state file (the job's `state:` or $FERRYMAN_STATE); "
            "ferryman does not write into other databases",
        )
    if version > newest:
        raise ConfigError(
            f"the state file {path} has schema version {version}, written by a newer ferryman "
            f"(this one knows versions up to {newest})",
            hint="upgrade ferryman, or configure another state file; the file was left as it "
            "is (ferryman never downgrades a state file)",
        )
    if version == 0:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        if tables:
            shown = ", ".join(sorted(tables)[:5])
            raise ConfigError(
                f"{path} is an SQLite database with other tables ({shown}), "
                "not a ferryman state file",
                hint="configure another state file (the job's `state:` or $FERRYMAN_STATE); "
                "ferryman does not write into other databases",
            )


def check_file(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """The schema version of the file behind ``conn``, read without writing anything.

    Raises :class:`ConfigError` for a file of a newer ferryman or of another application.
    """
    version = _version(conn)
    _check_ours(conn, path, version, len(migrations))
    return version


def migrate(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the file behind ``conn`` (autocommit mode) up to ``len(migrations)``.

    Returns the version reached. Raises :class:`ConfigError` for a newer or foreign file. A
    migration that fails is rolled back entirely: the file stays at the version before it.
    """
    newest = len(migrations)
    version = check_file(conn, path, migrations)
    while version < newest:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _version(conn)  # another process may have migrated meanwhile
            _check_ours(conn, path, version, newest)
            if version < newest:
                for statement in migrations[version]:
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version:d}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return version
