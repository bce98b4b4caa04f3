"""The file steps: send, receive, sync, list, wait_for, delete/mkdir/rmdir (remote and local),
rename. Each returns a :class:`StepOutcome`; what it exposes to later steps is its ``result``
(``steps.NAME.files``, ``.count``, ``.bytes`` ...)."""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ..backends.base import Backend, Entry
from ..connection import login_relative
from ..crashpoints import armed, crash_point
from ..errors import FerrymanError, NotFoundError, TimeoutError
from ..retry import RetryPolicy
from ..transfer import (
    FileOutcome,
    Filters,
    IfExists,
    Plan,
    SourceAction,
    Status,
    Summary,
    SyncOptions,
    TransferOptions,
    build_plan,
    ensure_directory,
    split_glob,
    sync,
    transfer_plan,
)
from ..transfer.copy import exists
from ..transfer.engine import Job
from .context import Endpoint, LedgerRecord, RunContext
from .effects import skip_published
from .limits_model import limit_options
from .model import (
    DeleteAction,
    Filtering,
    ListAction,
    PathAction,
    RenameAction,
    SyncAction,
    TransferAction,
    WaitForAction,
)

__all__ = ["FILE_STEPS", "StepOutcome"]

log = logging.getLogger("ferryman.jobs")


@dataclass
class StepOutcome:
    result: dict[str, Any] = field(default_factory=dict)
    error: FerrymanError | None = None
    files: list[FileOutcome] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)  #: nested StepRecords (foreach)


def _filters(action: Filtering) -> Filters:
    return Filters.parse(
        include=action.include,
        exclude=action.exclude,
        min_size=action.min_size,
        max_size=action.max_size,
        newer_than=action.newer_than,
        older_than=action.older_than,
    )


def _first_failure(summary: Summary) -> FerrymanError | None:
    if summary.failures:
        return summary.failures[0]
    return summary.refusal()  # hostile names and names too long here, told apart


def _summary_outcome(summary: Summary) -> StepOutcome:
    copied = [f for f in summary.files if f.status == Status.COPIED]
    result = {
        "files": [f.target for f in copied],
        "sources": [f.source for f in copied],
        "count": len(copied),
        "bytes": summary.bytes,
        "skipped": [f.source for f in summary.files if f.status == Status.SKIPPED],
        "failed": [f.source for f in summary.files if f.status == Status.FAILED],
        "deleted": [f.target for f in summary.files if f.status == Status.DELETED],
        "planned": [f.target for f in summary.files if f.status == Status.PLANNED],
    }
    return StepOutcome(result, _first_failure(summary), list(summary.files))


def _options(ctx: RunContext, action: TransferAction, side: Endpoint) -> TransferOptions:
    conn = side.connection
    after, move_to = SourceAction.KEEP, None
    if action.after.delete:
        after = SourceAction.DELETE
    elif action.after.move_to:
        after = SourceAction.MOVE
        move_to = login_relative(action.after.move_to)  # /~/archive: below the login directory
        if side.connection is None:  # a local source's archive is relative to the job too
            move_to = str(ctx.local_path(action.after.move_to))
    default = IfExists.OVERWRITE if action.only_new else IfExists.FAIL
    return TransferOptions(
        if_exists=action.if_exists or default,
        parallel=None if action.parallel == "auto" else action.parallel,
        retry=RetryPolicy(conn.retries, conn.retry_delay) if conn else RetryPolicy(),
        chunk_size=conn.chunk_size if conn else 256 * 1024,
        preserve_mtime=action.preserve_mtime,
        verify_hash=action.verify_hash,
        after=after,
        move_to=move_to,
        stable_for=action.stable_for,
        ascii=action.ascii,
        dry_run=ctx.dry_run,
        **_limits(action),
    )


def _limits(action: TransferAction | SyncAction) -> dict[str, Any]:
    """--segments and --bwlimit from the step's keys (``jobs.limits_model``)."""
    return limit_options(
        action.segments, action.segment_min_size, action.bwlimit, action.bwlimit_per_file
    )


class _CrashEvents:
    """Transfer events for the crash tests (``ferryman.crashpoints``): a point per file."""

    def started(self, job: Job, offset: int) -> None:
        pass

    def advanced(self, job: Job, nbytes: int) -> None:
        pass

    def finished(self, outcome: FileOutcome) -> None:
        crash_point("file-done")


def _only_new(ctx: RunContext, source: Endpoint, entries: list[tuple[str, Entry]]) -> set[str]:
    """The source paths the ledger has not seen (all of them without a ledger)."""
    if ctx.ledger is None:
        return {path for path, _ in entries}
    fresh = ctx.ledger.filter_new(ctx.name, source.key, [(p, e.size, e.mtime) for p, e in entries])
    return {path for path, _size, _mtime in fresh}


def transfer_step(ctx: RunContext, action: TransferAction, upload: bool) -> StepOutcome:
    source = ctx.endpoint(action.from_, remote=not upload)
    target = ctx.endpoint(action.to, remote=upload)
    options = _options(ctx, action, source)
    if action.encrypt is not None or action.decrypt is not None:
        from .pgp_steps import transfer_transform  # noqa: PLC0415 - gpg only when asked

        options = replace(options, transform=transfer_transform(ctx, action, upload))
    after = options
    if action.only_new and not ctx.dry_run:
        # archive or delete the sources only once the run succeeded: a failed or killed
        # run must leave them where the next run finds them again
        options = replace(options, after=SourceAction.KEEP, move_to=None)
    with ctx.backend(source) as src, ctx.backend(target) as dst:
        try:
            plan = build_plan(
                src, source.path, recursive=action.recursive, filters=_filters(action)
            )
        except NotFoundError:
            if action.require_files:
                raise
            plan = None
        if plan is None or not plan.items:
            if action.require_files:
                raise NotFoundError(f"no file matches {action.from_}")
            return StepOutcome({"files": [], "sources": [], "count": 0, "bytes": 0})
        if action.only_new:
            fresh = _only_new(ctx, source, [(i.source, i.entry) for i in plan.items])
            plan.items = [i for i in plan.items if i.source in fresh]
        items = list(plan.items)
        summary, already = None, set()
        # a run cut short after uploading: its uploads are recognized, not redone (not an
        # encrypted one: its bytes differ every time, so a re-run encrypts and sends again)
        if upload and options.transform is None:
            summary = skip_published(ctx, target, plan, dst, target.path)
            already = {f.source for f in summary.files}
        events = _CrashEvents() if armed() else None
        summary = transfer_plan(
            plan, src, dst, target.path, options, summary=summary, events=events
        )
    outcome = _summary_outcome(summary)
    if action.only_new and not ctx.dry_run:
        done = {f.source: f.target for f in summary.files if f.status == Status.COPIED}
        done.update((f.source, f.target) for f in summary.files if f.source in already)
        ctx.pending.extend(
            LedgerRecord(source.key, i.source, i.entry.size, i.entry.mtime, done[i.source])
            for i in items
            if i.source in done
        )
        if after.after is not SourceAction.KEEP:
            ctx.deferred.append((source, after, [i for i in items if i.source in done]))
    return outcome


def sync_step(ctx: RunContext, action: SyncAction) -> StepOutcome:
    source, target = ctx.endpoint(action.from_), ctx.endpoint(action.to)
    conn = source.connection or target.connection
    options = TransferOptions(
        if_exists=action.if_exists,
        parallel=None if action.parallel == "auto" else action.parallel,
        retry=RetryPolicy(conn.retries, conn.retry_delay) if conn else RetryPolicy(),
        dry_run=ctx.dry_run,
        **_limits(action),
    )
    guard = SyncOptions(action.delete, action.max_delete / 100, action.force)
    with ctx.backend(source) as src, ctx.backend(target) as dst:
        summary = sync(src, source.path, dst, target.path, options, guard, filters=_filters(action))
    return _summary_outcome(summary)


def _listing(backend: Backend, path: str, recursive: bool, filters: Filters) -> Plan:
    """The plan of a list: a directory means its files; no match means no files."""
    if not recursive and split_glob(path)[1] is None and backend.stat(path).is_dir:
        path = posixpath.join(path, "*")
    try:
        return build_plan(backend, path, recursive=recursive, filters=filters)
    except NotFoundError:
        if split_glob(path)[1] is None:
            raise  # the file or directory itself does not exist
        return Plan(root=split_glob(path)[0])


def list_step(ctx: RunContext, action: ListAction) -> StepOutcome:
    place = ctx.endpoint(action.path)
    with ctx.backend(place) as backend:
        plan = _listing(backend, place.path, action.recursive, _filters(action))
    items = plan.items
    if action.only_new:
        fresh = _only_new(ctx, place, [(i.source, i.entry) for i in items])
        items = [i for i in items if i.source in fresh]
    entries = [{"path": i.source, "relative": i.relative, **i.entry.to_dict()} for i in items]
    result = {"files": [i.source for i in items], "entries": entries, "count": len(items)}
    return StepOutcome(result, plan.errors[0] if plan.errors else None)


def wait_for_step(ctx: RunContext, action: WaitForAction) -> StepOutcome:
    place = ctx.endpoint(action.path)
    deadline = time.monotonic() + action.timeout
    seen: dict[str, tuple[int | None, datetime | None]] = {}
    stable_since: float | None = None
    with ctx.backend(place) as backend:
        while True:
            try:
                plan = build_plan(backend, place.path)
                now = {i.source: (i.entry.size, i.entry.mtime) for i in plan.items}
            except NotFoundError:
                now = {}
            if len(now) >= action.min_count and now == seen:
                stable_since = stable_since or time.monotonic()
            else:
                stable_since = time.monotonic() if len(now) >= action.min_count else None
            seen = now
            if stable_since is not None and time.monotonic() - stable_since >= action.stable_for:
                files = sorted(now)
                return StepOutcome({"files": files, "count": len(files)})
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"waited {action.timeout:g} s for {action.min_count} stable file(s) "
                    f"matching {action.path}; found {len(now)}",
                    hint="the files did not arrive in time; raise timeout: or check the sender",
                    retriable=False,
                )
            wait = min(action.poll, max(0.05, deadline - time.monotonic()))
            if stable_since is not None:
                wait = min(wait, max(0.05, action.stable_for - (time.monotonic() - stable_since)))
            time.sleep(wait)


def _matches(backend: Backend, path: str) -> list[str]:
    plan = build_plan(backend, path)
    return [i.source for i in plan.items]


def delete_step(ctx: RunContext, action: DeleteAction, remote: bool) -> StepOutcome:
    place = ctx.endpoint(action.path, remote=remote)
    with ctx.backend(place) as backend:
        try:
            paths = _matches(backend, place.path)
        except NotFoundError:
            if not action.missing_ok:
                raise
            paths = []
        if not ctx.dry_run:
            for path in paths:
                backend.remove(path)
    return StepOutcome({"files": paths, "count": len(paths)})


def _path_step(method: str, remote: bool) -> Callable[[RunContext, PathAction], StepOutcome]:
    def run(ctx: RunContext, action: PathAction) -> StepOutcome:
        place = ctx.endpoint(action.path, remote=remote)
        with ctx.backend(place) as backend:
            if ctx.dry_run:
                pass
            elif method == "mkdir":
                ensure_directory(backend, place.path)  # like mkdir -p: parents too, idempotent
            else:
                backend.rmdir(place.path)
        return StepOutcome({"path": place.path})

    return run


def rename_step(ctx: RunContext, action: RenameAction) -> StepOutcome:
    place = ctx.endpoint(action.from_)
    new = action.to
    if place.connection is None:
        target = Path(new).expanduser()
        new = str(target if target.is_absolute() else Path(place.path).parent / target)
    elif not new.startswith("/"):
        new = posixpath.join(posixpath.dirname(place.path.rstrip("/")), new)
    already = False
    with ctx.backend(place) as backend:
        if not ctx.dry_run:
            try:
                backend.rename(place.path, new)
            except NotFoundError:
                # a re-run after a crash that came after the rename: the state it wants is there
                if exists(backend, place.path) or not exists(backend, new):
                    raise
                log.info("%s is already at %s (renamed by an earlier run)", place.path, new)
                already = True
    return StepOutcome({"from": place.path, "to": new, "already": already})


FILE_STEPS: dict[str, Callable[[RunContext, Any], StepOutcome]] = {
    "send": lambda ctx, a: transfer_step(ctx, a, upload=True),
    "receive": lambda ctx, a: transfer_step(ctx, a, upload=False),
    "sync": sync_step,
    "list": list_step,
    "wait_for": wait_for_step,
    "delete_remote": lambda ctx, a: delete_step(ctx, a, remote=True),
    "delete_local": lambda ctx, a: delete_step(ctx, a, remote=False),
    "mkdir_remote": _path_step("mkdir", remote=True),
    "mkdir_local": _path_step("mkdir", remote=False),
    "rmdir_remote": _path_step("rmdir", remote=True),
    "rmdir_local": _path_step("rmdir", remote=False),
    "rename": rename_step,
}
