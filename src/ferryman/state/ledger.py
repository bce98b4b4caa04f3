"""The ledger of ``only_new``: which files a job has already taken, so it takes each once.

A file is identified by (job, connection key, remote path, size, modification time):

- the **connection key** is a secret-free string such as ``ftpes://orders@host:21`` (the
  same path on another server or as another user is another file);
- a file whose size or mtime changed since it was taken is **new** again (it was rewritten);
- the key holds no file pattern: changing a job's pattern does not make taken files new;
- an unknown size or mtime (``None``; some servers list neither) is part of the key as
  "unknown": the file is then recognized by what is known of it.

**Contract**: call :meth:`LedgerStore.remember` only for files whose step *fully succeeded*
(copied and verified, loaded and committed ...) and only once the run has decided to keep
them. A file remembered too early is never taken again if its processing later fails -- that
loses data; a file remembered too late is merely taken twice. The job runner collects what
each ``only_new`` step took and remembers it when the run succeeds. ``remember`` commits a
batch atomically: all of its files are remembered, or (on any error) none.

Times are compared as normalized UTC ISO text, so pass the listing's datetimes as they are;
naive datetimes are taken as UTC.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from .db import Database
from .records import TakenFile, iso, now_iso

__all__ = [
    "FILTER_BATCH",
    "TAKEN_COLUMNS",
    "LedgerEntry",
    "LedgerStore",
    "insert_taken",
    "ledger_key",
    "taken_file",
]

#: (path, size, mtime) of a listed file; size and mtime may be unknown (None).
LedgerEntry = tuple[str, int | None, datetime | str | None]
E = TypeVar("E", bound=tuple[str, int | None, datetime | str | None])

#: entries per query of :meth:`LedgerStore.filter_new` (bounds the size of one statement)
FILTER_BATCH = 50_000

_NO_SIZE = -1
_NO_MTIME = ""

_FILTER = """
    SELECT e.key FROM json_each(?1) AS e
    WHERE NOT EXISTS (
        SELECT 1 FROM ledger AS l
        WHERE l.job = ?2 AND l.connection = ?3
          AND l.path = json_extract(e.value, '$[0]')
          AND l.size = json_extract(e.value, '$[1]')
          AND l.mtime = json_extract(e.value, '$[2]'))
    ORDER BY e.key
"""


#: the columns :func:`taken_file` reads, in order
TAKEN_COLUMNS = "job, connection, path, size, mtime, run_id, taken"


def taken_file(row: Sequence[Any]) -> TakenFile:
    """A ledger row (the :data:`TAKEN_COLUMNS`) as a :class:`TakenFile`."""
    job, connection, path, size, mtime, run_id, taken = row
    return TakenFile(
        job=str(job),
        connection=str(connection),
        path=str(path),
        size=None if size == _NO_SIZE else int(size),
        mtime=str(mtime) if mtime else None,
        run_id=None if run_id is None else int(run_id),
        taken=str(taken),
    )


def ledger_key(entry: tuple[str, int | None, datetime | str | None]) -> tuple[str, int, str]:
    """The stored form of (path, size, mtime); raises ValueError for a malformed entry."""
    if len(entry) != 3:
        raise ValueError(f"a ledger entry is (path, size, mtime), not {entry!r}")
    path, size, mtime = entry
    if not isinstance(path, str) or not path:
        raise ValueError(f"a ledger entry needs a path, not {path!r}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValueError(f"{path}: size {size!r} is not a byte count")
    stamp = iso(mtime)
    return path, _NO_SIZE if size is None else size, _NO_MTIME if stamp is None else stamp


def insert_taken(
    conn: sqlite3.Connection,
    job: str,
    connection: str,
    records: Iterable[tuple[str, int | None, datetime | str | None]],
    run_id: int | None,
) -> None:
    """Write ledger rows inside the caller's transaction (see :meth:`LedgerStore.remember`)."""
    taken = now_iso()
    conn.executemany(
        "INSERT INTO ledger (job, connection, path, size, mtime, run_id, taken)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (job, connection, path, size, mtime)"
        " DO UPDATE SET run_id = excluded.run_id, taken = excluded.taken",
        ((job, connection, *ledger_key(r), run_id, taken) for r in records),
    )


def _chunks(items: Sequence[E], size: int) -> Iterator[Sequence[E]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LedgerStore:
    """The ledger half of :class:`~ferryman.state.StateStore`."""

    _db: Database

    def is_new(
        self,
        job: str,
        connection: str,
        path: str,
        size: int | None,
        mtime: datetime | str | None,
    ) -> bool:
        """Whether ``job`` has not taken this file (this path, size and mtime) yet."""
        key = ledger_key((path, size, mtime))
        with self._db.read("read the only-new ledger") as conn:
            row = conn.execute(
                "SELECT 1 FROM ledger WHERE job = ? AND connection = ? AND path = ?"
                " AND size = ? AND mtime = ?",
                (job, connection, *key),
            ).fetchone()
        return row is None

    def filter_new(self, job: str, connection: str, entries: Sequence[E]) -> list[E]:
        """The ``entries`` (path, size, mtime) ``job`` has not taken, in their order.

        One query per :data:`FILTER_BATCH` entries, never one per file, all in one snapshot.
        """
        if not entries:
            return []
        fresh: list[E] = []
        with self._db.read("read the only-new ledger") as conn:
            for chunk in _chunks(entries, FILTER_BATCH):
                payload = json.dumps([ledger_key(e) for e in chunk], ensure_ascii=False)
                for (index,) in conn.execute(_FILTER, (payload, job, connection)):
                    fresh.append(chunk[int(index)])
        return fresh

    def remember(
        self,
        job: str,
        connection: str,
        records: Iterable[tuple[str, int | None, datetime | str | None]],
        run_id: int | None,
    ) -> None:
        """Remember that run ``run_id`` of ``job`` took ``records`` (path, size, mtime).

        Atomic: every record is committed, or -- whatever fails part-way, a malformed record,
        a full disk -- none. Remembering a file again is harmless (it records the newer run).
        Call it only for files whose step fully succeeded (see the module documentation).
        """
        with self._db.write(f"remember taken files of job {job!r}") as conn:
            insert_taken(conn, job, connection, records, run_id)

    def forget(self, job: str, connection: str | None = None, path_glob: str | None = None) -> int:
        """Forget taken files of ``job`` (of one connection; whose path matches a glob).

        ``path_glob`` is an SQLite GLOB: case-sensitive, ``*`` and ``?`` also match ``/``,
        ``[...]`` classes. Forgotten files are new again for the next run. Returns how many.
        """
        with self._db.write(f"forget taken files of job {job!r}") as conn:
            cursor = conn.execute(
                "DELETE FROM ledger WHERE job = ?1 AND (?2 IS NULL OR connection = ?2)"
                " AND (?3 IS NULL OR path GLOB ?3)",
                (job, connection, path_glob),
            )
            return cursor.rowcount

    def taken(
        self,
        job: str,
        connection: str | None = None,
        path_glob: str | None = None,
        limit: int | None = None,
    ) -> list[TakenFile]:
        """The ledger entries of ``job`` (filtered like :meth:`forget`), newest first."""
        with self._db.read("read the only-new ledger") as conn:
            rows = conn.execute(
                f"SELECT {TAKEN_COLUMNS} FROM ledger"  # noqa: S608
                " WHERE job = ?1 AND (?2 IS NULL OR connection = ?2)"
                " AND (?3 IS NULL OR path GLOB ?3)"
                " ORDER BY taken DESC, connection, path LIMIT ?4",
                (job, connection, path_glob, -1 if limit is None else limit),
            ).fetchall()
        return [taken_file(r) for r in rows]
