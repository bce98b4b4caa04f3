"""Mirror a directory tree in either direction, with a guarded ``--delete``.

Files missing or different at the destination are copied (policy ``different`` by default,
or ``newer``); copies keep the source's modification time where the destination can set it,
and where it cannot, ``different`` compares sizes only. With ``delete``, destination files
and directories that the source does not have are removed -- but only after complete,
successful listings of both sides, never more than ``max_delete_share`` of the
destination's files without ``force``, never the destination root itself, and never
anything an exclude pattern protects.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace

from ..backends.base import Backend
from ..errors import ConfigError, ExitCode, FerrymanError, NotFoundError
from .engine import Events, TransferOptions, ensure_directory
from .filters import Filters
from .operations import transfer_plan
from .plan import Caller, Plan, build_plan, direct_call
from .report import FileOutcome, Status, Summary

__all__ = ["DeletionGuardError", "SyncOptions", "sync"]


class DeletionGuardError(FerrymanError):
    """Deleting would remove more of the destination than allowed, or after a bad listing."""

    exit_code = ExitCode.TRANSFER


@dataclass(frozen=True)
class SyncOptions:
    delete: bool = False
    #: the largest share (0..1) of the destination's files one run may delete without force
    max_delete_share: float = 0.5
    force: bool = False


def _tree(backend: Backend, root: str, filters: Filters, call: Caller) -> Plan:
    """Every file and directory below ``root`` (an absent root is an empty tree)."""
    try:
        return build_plan(
            backend, root.rstrip("/") or "/", recursive=True, filters=filters, call=call
        )
    except NotFoundError:
        return Plan(root=root)


def _deletions(source: Plan, target: Plan) -> tuple[list[str], list[str]]:
    """Relative files and directories (deepest first) the target has and the source lacks."""
    files = {item.relative for item in source.items}
    dirs = set(source.directories)
    extra_files = sorted(i.relative for i in target.items if i.relative not in files)
    extra_dirs = sorted(
        (d for d in target.directories if d not in dirs),
        key=lambda d: (-d.count("/"), d),
    )
    return extra_files, extra_dirs


def _guard(source: Plan, target: Plan, doomed: int, options: SyncOptions) -> None:
    if not source.complete or not target.complete:
        failed = (source.errors or target.errors)[0]
        raise DeletionGuardError(
            f"not deleting anything: a listing failed ({failed})",
            hint="deletions need complete listings of both sides; fix the error and re-run",
        )
    total = len(target.items)
    if doomed and total and doomed / total > options.max_delete_share and not options.force:
        raise DeletionGuardError(
            f"not deleting anything: {doomed} of the destination's {total} files "
            f"({doomed / total:.0%}) would go, more than the limit of "
            f"{options.max_delete_share:.0%}",
            hint="check that the source is the right directory; pass --force (or raise "
            "--max-delete) to delete them anyway",
        )


def sync(
    src: Backend,
    source: str,
    dst: Backend,
    destination: str,
    options: TransferOptions,
    sync_options: SyncOptions | None = None,
    *,
    filters: Filters | None = None,
    events: Events | None = None,
    call: Caller = direct_call,
) -> Summary:
    """Make ``destination`` on ``dst`` a copy of directory ``source`` on ``src``."""
    sync_options = sync_options or SyncOptions()
    filters = filters or Filters()
    # Copies keep the source's time (where the destination can set it), so the next run can
    # tell an unchanged file by size and time, as rsync -t does.
    options = replace(options, preserve_mtime=True)
    if not src.stat(source).is_dir:
        raise ConfigError(f"{source} is not a directory", hint="sync works on directories")
    # Excludes protect files on both sides; the other filters only choose what is copied.
    protect = Filters(exclude=filters.exclude)
    source_tree = _tree(src, source, protect, call)
    target_tree = _tree(dst, destination, protect, call)
    wanted = Plan(
        root=source_tree.root,
        items=[i for i in source_tree.items if filters.accepts(i.relative, i.entry)],
        directories=source_tree.directories,
        skipped=source_tree.skipped,
        errors=source_tree.errors,
    )
    summary = Summary(dry_run=options.dry_run)
    if not options.dry_run:
        ensure_directory(dst, destination)
    transfer_plan(
        wanted, src, dst, destination.rstrip("/") + "/", options, summary=summary, events=events
    )
    if not sync_options.delete:
        return summary.finish()
    extra_files, extra_dirs = _deletions(source_tree, target_tree)
    try:
        _guard(source_tree, target_tree, len(extra_files), sync_options)
    except DeletionGuardError as err:
        summary.errors.append(err)
        return summary.finish()
    root = destination.rstrip("/") or "/"
    for relative, remove in [(f, dst.remove) for f in extra_files] + [
        (d, dst.rmdir) for d in extra_dirs
    ]:
        path = posixpath.join(root, relative)
        outcome = FileOutcome("", path, Status.DELETED, reason="not in the source")
        if options.dry_run:
            outcome.status, outcome.reason = Status.PLANNED, "would delete: not in the source"
        else:
            try:
                remove(path)
            except FerrymanError as err:
                outcome.status, outcome.error, outcome.reason = Status.FAILED, err, err.message
        summary.add(outcome)
        if events is not None:
            events.finished(outcome)
    return summary.finish()
