"""One SQLite connection to the state file: pragmas, transactions, thread safety, errors.

Thread safety: a :class:`Database` owns **one** connection (opened with
``check_same_thread=False``) guarded by one re-entrant lock. Every public operation of the
store holds the lock for its whole transaction, so worker threads of the job runner may record
file outcomes concurrently; their writes are serialized, never interleaved. Do not use a store
across ``fork()``: open a new one in the child.

Several *processes* may use the same file at once: it is in WAL mode (readers never block the
writer), writes start with ``BEGIN IMMEDIATE`` and wait up to ``busy_timeout`` seconds for
another writer, and every write is ``synchronous=FULL`` (a committed ledger entry survives a
power loss, so a taken file is not taken twice).

Every ``sqlite3`` error leaving this module is translated into the project's tree: a damaged or
non-SQLite file and a read-only file are :class:`ConfigError` (exit 2) with what to do, a full
disk or a lock held too long a :class:`FerrymanError`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError, FerrymanError
from .location import ENV_VAR, ensure_private_dir, ensure_private_file
from .schema import MIGRATIONS, Migration, check_file, migrate

__all__ = ["Database", "translate_error"]

_ELSEWHERE = f"or configure another state file (the job's `state:` or ${ENV_VAR})"


def translate_error(err: sqlite3.Error, path: Path, doing: str, timeout: float) -> Exception:
    """The project error for an ``sqlite3`` error met while ``doing`` something to ``path``."""
    if isinstance(err, sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return err  # a bug (or a closed store), not a state of the file
    name = getattr(err, "sqlite_errorname", "") or ""
    if name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT"):
        return ConfigError(
            f"cannot {doing}: {path} is not a ferryman state database or is damaged ({err})",
            hint=f"move it away with its -wal and -shm companions (e.g. `mv {path} "
            f"{path}.broken`) and run again: ferryman then starts a new state file, with "
            "empty history and an empty only-new ledger",
        )
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return ConfigError(
            f"cannot {doing}: {path} is read-only or cannot be opened ({err})",
            hint="make the file, its -wal and -shm companions and its directory writable by "
            f"this user, {_ELSEWHERE}",
        )
    if name.startswith("SQLITE_FULL"):
        return FerrymanError(
            f"cannot {doing}: the disk holding {path} is full",
            hint=f"free space on that file system, {_ELSEWHERE}; nothing of this change was "
            "written",
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return FerrymanError(
            f"cannot {doing}: another process kept {path} locked for more than {timeout:g} s",
            hint="another ferryman is writing to it; run again when it is done",
            retriable=True,
        )
    if name.startswith("SQLITE_IOERR"):
        return FerrymanError(
            f"cannot {doing}: input/output error on {path} ({err})",
            hint="check that file system (free space, health, a network mount that went "
            f"away), {_ELSEWHERE}",
        )
    if isinstance(err, sqlite3.IntegrityError):
        return ValueError(f"cannot {doing}: {err} (does the run exist?)")
    return FerrymanError(f"cannot {doing}: {path}: {err}")


class Database:
    """The open state file; see the module documentation."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 10.0,
        migrations: tuple[Migration, ...] = MIGRATIONS,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.lock = threading.RLock()
        ensure_private_dir(self.path.parent)
        ensure_private_file(self.path)
        self._conn: sqlite3.Connection | None = None
        with self._translated("open the state file"):
            conn = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout,
                isolation_level=None,  # autocommit; transactions are explicit
                check_same_thread=False,  # shared by threads under self.lock
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
                conn.execute("PRAGMA foreign_keys = ON")
                check_file(conn, self.path, migrations)  # before changing anything in it
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
                conn.execute("PRAGMA synchronous = FULL")
                self.version = migrate(conn, self.path, migrations)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"the state file {self.path} was closed")
        return self._conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                try:
                    conn.execute("PRAGMA optimize")
                except sqlite3.Error:
                    pass  # only a hint to the planner; a read-only file is closed all the same
                conn.close()

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as err:
            translated = translate_error(err, self.path, doing, self.busy_timeout)
            if translated is err:
                raise
            raise translated from err

    @contextmanager
    def write(self, doing: str) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): all of it is committed, or none of it."""
        with self.lock, self._translated(doing):
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self, doing: str) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees one consistent snapshot."""
        with self.lock, self._translated(doing):
            conn = self.conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")  # nothing was written: ends the snapshot
