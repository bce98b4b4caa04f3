"""What a run does outside the state file, recorded so that a re-run after a crash converges.

Two effects of a job happen after its transfers and cannot be undone by a re-run, so the state
file keeps a journal of them (issue 11):

- **source actions** -- the ``after:`` of an only-new transfer (archive with ``move_to``, or
  ``delete``) waits until the run has succeeded. :meth:`EffectsStore.commit_taken` records the
  ledger rows *and* the pending actions in one transaction; each action's row is removed once
  it is done (:meth:`EffectsStore.source_actions_done`). A run killed while archiving leaves
  rows behind, and the next run of the job finishes them first
  (:meth:`EffectsStore.pending_source_actions`). A row whose source is gone was done before
  the crash; a source of another size or time is another file, left alone.
- **publications** -- before a ``send`` uploads, :meth:`EffectsStore.intend_publications`
  records each target with the size and SHA-256 of what is about to land there. A re-run that
  finds such a target already there knows it is this job's own upload (from a run that crashed
  before it could finish), not somebody else's file.

Times are normalized as the ledger's are (:func:`~ferryman.state.ledger.ledger_key`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .db import Database
from .ledger import insert_taken, ledger_key
from .records import now_iso

__all__ = ["EffectsStore", "PendingSourceAction", "Publication"]


@dataclass(frozen=True)
class PendingSourceAction:
    """An ``after:`` action on a taken source file, recorded until it is done."""

    connection: str  #: secret-free connection key (``local`` for the local disk)
    path: str
    size: int | None
    mtime: datetime | str | None
    action: str  #: ``delete`` or ``move``
    move_to: str | None  #: the archive directory of ``move``
    relative: str  #: the path below the archive directory
    run_id: int | None = None


@dataclass(frozen=True)
class Publication:
    """A file a ``send`` of the job published (or was about to): where, what, by which run."""

    connection: str
    path: str
    size: int
    sha256: str
    run_id: int | None
    run_status: str | None  #: status of that run: a crashed one shows ``interrupted``


class EffectsStore:
    """The effects half of :class:`~ferryman.state.StateStore`."""

    _db: Database

    def commit_taken(
        self,
        job: str,
        taken: Mapping[str, Iterable[tuple[str, int | None, datetime | str | None]]],
        actions: Iterable[PendingSourceAction],
        run_id: int | None,
    ) -> None:
        """Remember ``taken`` (connection -> (path, size, mtime)) in the ledger and record the
        ``actions`` still to do on those sources, all in one transaction."""
        recorded = now_iso()
        with self._db.write(f"remember taken files of job {job!r}") as conn:
            for connection, records in taken.items():
                insert_taken(conn, job, connection, records, run_id)
            conn.executemany(
                "INSERT OR REPLACE INTO source_actions (job, connection, path, size, mtime,"
                " action, move_to, relative, run_id, recorded)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        job,
                        a.connection,
                        *ledger_key((a.path, a.size, a.mtime)),
                        a.action,
                        a.move_to,
                        a.relative,
                        run_id,
                        recorded,
                    )
                    for a in actions
                ),
            )

    def pending_source_actions(self, job: str) -> list[PendingSourceAction]:
        """The source actions of ``job`` not yet done, oldest first."""
        with self._db.read("read the pending source actions") as conn:
            rows = conn.execute(
                "SELECT connection, path, size, mtime, action, move_to, relative, run_id"
                " FROM source_actions WHERE job = ? ORDER BY recorded, connection, path",
                (job,),
            ).fetchall()
        return [
            PendingSourceAction(
                connection=r[0],
                path=r[1],
                size=None if r[2] == -1 else r[2],
                mtime=r[3] or None,
                action=r[4],
                move_to=r[5],
                relative=r[6],
                run_id=r[7],
            )
            for r in rows
        ]

    def source_actions_done(self, job: str, actions: Iterable[PendingSourceAction]) -> None:
        """Forget ``actions`` of ``job``: they are done (or were found done)."""
        with self._db.write(f"record finished source actions of job {job!r}") as conn:
            conn.executemany(
                "DELETE FROM source_actions WHERE job = ? AND connection = ? AND path = ?"
                " AND size = ? AND mtime = ?",
                ((job, a.connection, *ledger_key((a.path, a.size, a.mtime))) for a in actions),
            )

    def intend_publications(
        self,
        job: str,
        connection: str,
        entries: Iterable[tuple[str, int, str]],
        run_id: int | None,
    ) -> None:
        """Record that run ``run_id`` of ``job`` is about to publish ``entries`` (target path,
        size, SHA-256) on ``connection``; a later intent for the same path replaces it."""
        recorded = now_iso()
        with self._db.write(f"record the uploads of job {job!r}") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO publications"
                " (job, connection, path, size, sha256, run_id, recorded)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (job, connection, path, size, sha, run_id, recorded)
                    for path, size, sha in entries
                ),
            )

    def publications(
        self, job: str, connection: str, paths: Sequence[str]
    ) -> dict[str, Publication]:
        """What ``job`` recorded for these target ``paths`` of ``connection``, by path."""
        found: dict[str, Publication] = {}
        with self._db.read("read the uploads of a job") as conn:
            for path in paths:
                row = conn.execute(
                    "SELECT p.size, p.sha256, p.run_id, r.status FROM publications AS p"
                    " LEFT JOIN runs AS r ON r.id = p.run_id"
                    " WHERE p.job = ? AND p.connection = ? AND p.path = ?",
                    (job, connection, path),
                ).fetchone()
                if row is not None:
                    found[path] = Publication(connection, path, row[0], row[1], row[2], row[3])
        return found
