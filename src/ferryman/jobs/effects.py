"""A job's effects outside its state file, journaled so that a re-run after a crash converges
to the state of one successful run: nothing lost, nothing done twice (issue 11).

- **Source actions** (``after:`` of an only-new transfer): recorded in the same state-file
  transaction as the ledger (:func:`commit_taken`), done afterwards and forgotten as they are
  done (:func:`finish_sources`). A run killed in between leaves them recorded; the next run of
  the job finishes them before its steps (:func:`recover_sources`) and says so.
- **Uploads** (``send``): before the upload, the state file records each target with the size
  and SHA-256 of what will land there (:func:`skip_published`). A re-run that finds a target
  holding exactly that (size, and the server's hash where it offers one) knows it is its own
  upload from a run that was cut short, and skips it ("already sent") instead of refusing it as
  somebody else's file or sending it again. A target holding what a cut-short run uploaded,
  where this run has other content for it, is replaced: no successful run published it.

Loads have their own journal in the target database (:mod:`ferryman.loads.markers`).
"""

from __future__ import annotations

import logging
import posixpath
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from ..backends.base import Backend, Entry
from ..crashpoints import crash_point
from ..errors import FerrymanError, NotFoundError
from ..filehash import sha256_of_file
from ..state import PendingSourceAction
from ..state.records import iso
from ..transfer import FileOutcome, Plan, SourceAction, Status, Summary
from ..transfer.engine import archive
from ..transfer.operations import destination_jobs
from .context import Endpoint, RunContext

__all__ = ["commit_taken", "finish_sources", "recover_sources", "skip_published"]

log = logging.getLogger("ferryman.jobs")

#: source actions forgotten per state-file transaction while finishing (a crash between an
#: action and its record only means the next run finds that source gone: already done)
_DONE_BATCH = 64


def commit_taken(ctx: RunContext) -> None:
    """Remember what the run's only-new steps took and record their pending source actions,
    in one transaction (the run has succeeded)."""
    if ctx.ledger is None:
        return
    taken: dict[str, list[tuple[str, int | None, datetime | None]]] = defaultdict(list)
    for record in ctx.pending:
        taken[record.connection].append((record.path, record.size, record.mtime))
    actions = [
        PendingSourceAction(
            connection=source.key,
            path=item.source,
            size=item.entry.size,
            mtime=item.entry.mtime,
            action="delete" if options.after is SourceAction.DELETE else "move",
            move_to=options.move_to,
            relative=item.relative,
        )
        for source, options, items in ctx.deferred
        for item in items
        if options.after is SourceAction.DELETE or options.move_to is not None
    ]
    ctx.ledger.commit_taken(ctx.name, taken, actions, ctx.run_id)
    crash_point("ledger-committed")


def _endpoint(ctx: RunContext, connection: str) -> Endpoint | None:
    """The job's endpoint for a connection key recorded by an earlier run, if it still has it."""
    if connection == "local":
        return Endpoint(None, ".")
    for conn in ctx.loaded.connections.values():
        if conn.describe() == connection:
            return Endpoint(conn, ".")
    return None


def _same_file(action: PendingSourceAction, entry: Entry) -> bool:
    """Whether ``entry`` is still the file the ledger took: same size, and the same time
    within the listing's precision (a LIST shows minutes where the plan may have had MDTM's
    seconds)."""
    if action.size is not None and entry.size != action.size:
        return False
    recorded, now = iso(action.mtime), iso(entry.mtime)
    if recorded is None or now is None:
        return True
    delta = abs(datetime.fromisoformat(recorded) - datetime.fromisoformat(now))
    return delta < timedelta(seconds=max(entry.mtime_precision or 1, 1))


def _finish_on(backend: Backend, actions: list[PendingSourceAction]) -> list[str]:
    """Do ``actions`` (all on ``backend``); returns what was found already done."""
    found_done: list[str] = []
    by_dir: dict[str, list[PendingSourceAction]] = defaultdict(list)
    for action in actions:
        by_dir[posixpath.dirname(action.path)].append(action)
    for directory, group in by_dir.items():
        try:
            listed = {e.name: e for e in backend.list(directory or ".")}
        except NotFoundError:
            listed = {}
        for action in group:
            entry = listed.get(posixpath.basename(action.path))
            if entry is None or not _same_file(action, entry):
                found_done.append(action.path)  # moved or deleted before a crash, or replaced
                continue
            if action.action == "delete":
                backend.remove(action.path)
            elif action.move_to is not None:
                archive(backend, action.path, action.relative, action.move_to)
            crash_point("source-action")
    return found_done


def finish_sources(ctx: RunContext) -> list[str]:
    """Do every source action the state file holds for this job: this run's and any a killed
    run left. A connection or action that fails leaves its actions recorded for the next run
    (the files are in the ledger: they are not taken twice). Returns what it says it did."""
    store = ctx.ledger
    if store is None:
        return []
    pending = store.pending_source_actions(ctx.name)
    by_connection: dict[str, list[PendingSourceAction]] = defaultdict(list)
    for action in pending:
        by_connection[action.connection].append(action)
    notes: list[str] = []
    for connection, actions in by_connection.items():
        endpoint = _endpoint(ctx, connection)
        if endpoint is None:
            notes.append(
                f"{len(actions)} source action(s) on {connection} left undone: the job no "
                "longer has that connection"
            )
            continue
        try:
            with ctx.backend(endpoint) as backend:
                for start in range(0, len(actions), _DONE_BATCH):
                    batch = actions[start : start + _DONE_BATCH]
                    gone = _finish_on(backend, batch)
                    store.source_actions_done(ctx.name, batch)
                    if gone:
                        notes.append(
                            f"{len(gone)} source(s) on {connection} were already archived, "
                            f"deleted or replaced: {gone[0]}" + (" ..." if len(gone) > 1 else "")
                        )
        except FerrymanError as err:
            notes.append(f"could not finish the source actions on {connection}: {err}")
    for note in notes:
        log.warning("%s", note)
    return notes


def recover_sources(ctx: RunContext) -> list[str]:
    """Before the steps: finish the source actions an earlier, killed run left recorded."""
    store = ctx.ledger
    if store is None or ctx.dry_run:
        return []
    pending = store.pending_source_actions(ctx.name)
    if not pending:
        return []
    runs = sorted({a.run_id for a in pending if a.run_id is not None})
    said = (
        f"finishing {len(pending)} archive/delete action(s) on sources that run(s) "
        f"{', '.join(map(str, runs)) or '?'} took but did not finish"
    )
    log.warning("%s", said)
    return [said, *finish_sources(ctx)]


def _holds(dst: Backend, target: str, size: int, sha256: str) -> bool:
    """Whether ``target`` holds the recorded upload: its size, and the server's hash when it
    offers SHA-256."""
    try:
        entry = dst.stat(target)
    except NotFoundError:
        return False
    if entry.size != size:
        return False
    if "sha256" in dst.capabilities.hashes:
        return dst.hash(target, "sha256").lower() == sha256
    return True


def skip_published(
    ctx: RunContext, target: Endpoint, plan: Plan, dst: Backend, destination: str
) -> Summary:
    """For a send: drop from ``plan`` the files a cut-short run of this job already uploaded
    (their outcomes, SKIPPED, are in the returned summary), and record the others' intent."""
    summary = Summary(dry_run=ctx.dry_run)
    store = ctx.ledger
    if store is None or ctx.dry_run or not plan.items:
        return summary
    jobs, _root, _refused = destination_jobs(plan, dst, destination)
    content = {job.target: sha256_of_file(Path(job.item.source)) for job in jobs}
    known = store.publications(ctx.name, target.key, list(content))
    kept = []
    for job in jobs:
        size, sha = content[job.target]
        before = known.get(job.target)
        if before is None or not _holds(dst, job.target, before.size, before.sha256):
            kept.append(job.item)  # nothing of ours there: the transfer's if_exists decides
            continue
        if (before.size, before.sha256) == (size, sha):
            outcome = FileOutcome(job.item.source, job.target, Status.SKIPPED, size=size)
            outcome.reason = f"already sent by run {before.run_id} (same size and SHA-256)"
            summary.add(outcome)
            continue
        if before.run_status != "succeeded":
            # what a run that never finished left there is not a result to keep: replace it
            log.warning(
                "%s holds what run %s uploaded before it was cut short; replacing it with "
                "this run's %s",
                job.target,
                before.run_id,
                job.item.source,
            )
            dst.remove(job.target)
        kept.append(job.item)
    sent = {job.item.source: job.target for job in jobs}
    entries = [(sent[i.source], *content[sent[i.source]]) for i in kept if i.source in sent]
    store.intend_publications(ctx.name, target.key, entries, ctx.run_id)
    crash_point("uploads-recorded")
    plan.items = kept
    return summary
