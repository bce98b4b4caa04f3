"""The operations the CLI and jobs call: copy what a source names to a destination.

Only the backend interface is known here, so the same code moves files between FTP, FTPS,
SFTP, memory and the local disk in either direction.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from pathlib import Path

from ..backends.base import Backend
from ..backends.local import LocalBackend
from ..errors import ConfigError, FerrymanError, NotFoundError, TargetExistsError
from ..paths import LocalDestination, LocalNameError, safe_local_path
from .copy import partial_name
from .engine import Events, Job, TransferOptions, ensure_directory, run_jobs
from .filters import Filters
from .plan import Caller, Plan, Skipped, build_plan, direct_call
from .report import FileOutcome, Status, Summary

__all__ = ["destination_jobs", "transfer", "transfer_plan"]

#: bytes a copy adds to a final name for its temporary one (the longest: a fresh temporary)
_TEMPORARY_SUFFIX = len(partial_name("", "01234567-89abcdef"))


def _is_dir(backend: Backend, path: str) -> bool:
    if path in ("", ".", "/"):
        return True
    try:
        return backend.stat(path).is_dir
    except NotFoundError:
        return False


def destination_jobs(
    plan: Plan, dst: Backend, destination: str, rename: Callable[[str], str] | None = None
) -> tuple[list[Job], str, list[Skipped]]:
    """The job of each planned file and the destination directory that receives them.

    One named file goes into ``destination`` when it is a directory (or ends with ``/``),
    else it is copied under that name. Several files always go into a directory, created
    when missing. On the local disk each path is checked to stay inside the destination,
    and to fit the file system (with room for the temporary name): a name that does not is
    refused, and the others are copied.
    """
    local = isinstance(dst, LocalBackend)
    into = not plan.single or destination.endswith("/") or _is_dir(dst, destination)
    if not into:
        item = plan.items[0] if plan.items else None
        return ([Job(item, destination)] if item else []), posixpath.dirname(destination), []
    root = destination.rstrip("/") or destination or "."
    jobs, refused = [], []
    inside = LocalDestination(Path(root), reserve=_TEMPORARY_SUFFIX) if local else None
    for item in plan.items:
        relative = item.relative
        if rename is not None:
            folder, name = posixpath.split(relative)
            relative = posixpath.join(folder, rename(name))
        if inside is None:
            jobs.append(Job(item, posixpath.join(root, relative)))
            continue
        try:
            jobs.append(Job(item, str(inside.path(relative))))
        except FerrymanError as err:
            local_limit = isinstance(err, LocalNameError)
            refused.append(Skipped(item.source, err.message, unsafe=True, local=local_limit))
    return jobs, root, refused


def transfer(
    src: Backend,
    source: str,
    dst: Backend,
    destination: str,
    options: TransferOptions,
    *,
    recursive: bool = False,
    filters: Filters | None = None,
    events: Events | None = None,
    call: Caller | None = None,
) -> Summary:
    """Copy what ``source`` names on ``src`` (a file, a glob, a directory with ``recursive``)
    to ``destination`` on ``dst``; see :func:`destination_jobs` for where files land."""
    if src is dst:
        raise ConfigError("a transfer needs two backend connections, not one")
    plan = build_plan(src, source, recursive=recursive, filters=filters, call=call or direct_call)
    return transfer_plan(plan, src, dst, destination, options, events=events)


def transfer_plan(
    plan: Plan,
    src: Backend,
    dst: Backend,
    destination: str,
    options: TransferOptions,
    *,
    events: Events | None = None,
    summary: Summary | None = None,
) -> Summary:
    """Run a plan built from ``src`` into ``destination`` on ``dst``."""
    summary = summary or Summary(dry_run=options.dry_run)
    link = destination.rstrip("/") or "/"
    if isinstance(dst, LocalBackend) and os.path.islink(link) and os.path.isdir(link):
        # the user named a link to a directory (~/inbox -> /data/inbox): use it, as cp does
        trailing = "/" if destination.endswith("/") else ""
        destination = os.path.realpath(link) + trailing
    summary.skipped_names.extend(plan.skipped)
    summary.errors.extend(plan.errors)
    rename = options.transform.target_name if options.transform is not None else None
    jobs, root, refused = destination_jobs(plan, dst, destination, rename)
    summary.skipped_names.extend(refused)
    if isinstance(src, LocalBackend) and isinstance(dst, LocalBackend):
        jobs = _without_self_copies(jobs, summary)
    if not options.dry_run and (jobs or plan.directories):
        ensure_directory(dst, root)
        wanted = [_join_checked(dst, root, relative, summary) for relative in plan.directories]
        wanted += sorted({posixpath.dirname(job.target) for job in jobs} - {root, *wanted})
        for directory in wanted:
            try:
                ensure_directory(dst, directory)
            except FerrymanError as err:  # only the files below it fail; the others go on
                summary.errors.append(err)
    return run_jobs(jobs, src, dst, options, summary=summary, events=events)


def _without_self_copies(jobs: list[Job], summary: Summary) -> list[Job]:
    """Fail the jobs whose target is the source file itself: a copy onto itself, then
    deleting or moving "the source", would lose the only copy."""
    kept = []
    for job in jobs:
        if os.path.realpath(job.item.source) != os.path.realpath(job.target):
            kept.append(job)
            continue
        error = TargetExistsError(
            f"{job.target} is the source file itself",
            hint="choose another destination; nothing was copied, moved or deleted",
        )
        outcome = FileOutcome(job.item.source, job.target, Status.FAILED, size=job.item.entry.size)
        outcome.error, outcome.reason = error, error.message
        summary.add(outcome)
    return kept


def _join_checked(dst: Backend, root: str, relative: str, summary: Summary) -> str:
    if isinstance(dst, LocalBackend):
        try:
            return str(safe_local_path(Path(root), relative))
        except FerrymanError as err:
            local_limit = isinstance(err, LocalNameError)
            summary.skipped_names.append(
                Skipped(relative, err.message, unsafe=True, local=local_limit)
            )
            return root
    return posixpath.join(root, relative)
