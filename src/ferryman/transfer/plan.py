"""From what the user named to the list of files to transfer: a plan.

A source is one file, a glob in its last part (``/out/*.csv``, ``orders_2026-??-*.txt``), or a
directory with ``recursive`` (its contents, as rclone and ``lftp mirror`` copy them). Names
from listings are checked before they become paths: ``..``, separators, drive letters and
control characters are refused and reported, and the rest is planned. Links are never
followed and never created; they are reported as skipped.
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..backends.base import Backend, Entry, EntryType
from ..errors import ConfigError, FerrymanError, NotFoundError
from ..paths import listed_name_problem
from .copy import PARTIAL_SUFFIX
from .filters import Filters

__all__ = [
    "GLOB_CHARS",
    "Caller",
    "Plan",
    "PlanItem",
    "Skipped",
    "build_plan",
    "direct_call",
    "split_glob",
]

GLOB_CHARS = frozenset("*?[")

#: how a listing is run: ``call(what, action)``, e.g. with retries
Caller = Callable[[str, Callable[[], list[Entry]]], list[Entry]]


def direct_call(what: str, action: Callable[[], list[Entry]]) -> list[Entry]:
    """The plain :data:`Caller`: run the listing once."""
    return action()


@dataclass(frozen=True, slots=True)
class PlanItem:
    source: str  #: path on the source backend
    relative: str  #: ``/``-separated path below the source root; the destination mirrors it
    entry: Entry


@dataclass(frozen=True, slots=True)
class Skipped:
    """A name the plan left out, and why (a hostile name, a link, a special file)."""

    path: str
    reason: str
    unsafe: bool = False  #: a refused name (hostile, or ``local``): the run reports a failure
    #: not hostile: the local file system cannot hold the name (too long for NAME_MAX/PATH_MAX)
    local: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "reason": self.reason,
            "unsafe": self.unsafe,
            "local": self.local,
        }


@dataclass
class Plan:
    root: str  #: the source directory that ``relative`` paths start from
    items: list[PlanItem] = field(default_factory=list)
    #: relative directories met on the way (for recursive copies and empty directories)
    directories: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    #: listings that failed; a plan with errors is incomplete (sync never deletes after one)
    errors: list[FerrymanError] = field(default_factory=list)
    single: bool = False  #: the source named one file (the destination may rename it)

    @property
    def complete(self) -> bool:
        return not self.errors

    @property
    def total_bytes(self) -> int:
        return sum(item.entry.size or 0 for item in self.items)


def split_glob(path: str) -> tuple[str, str | None]:
    """``/out/*.csv`` -> (``/out``, ``*.csv``); a path without wildcards -> (path, None).

    Wildcards are allowed in the last part only (as in SSIS): a directory part with one is
    refused rather than guessed at.
    """
    directory, name = posixpath.split(path)
    if any(c in GLOB_CHARS for c in directory):
        raise ConfigError(
            f"{path}: wildcards are allowed in the file name only",
            hint="name the directory literally, e.g. /out/2026/*.csv, or use --recursive "
            "with --include",
        )
    if any(c in GLOB_CHARS for c in name):
        return directory or ".", name
    return path, None


def _note_entry(plan: Plan, directory: str, relative_dir: str, entry: Entry) -> str | None:
    """The relative path of a usable entry, or None after noting why it is skipped."""
    shown = posixpath.join(directory, entry.name)
    problem = listed_name_problem(entry.name)
    if problem is not None:
        plan.skipped.append(Skipped(shown, f"unsafe name: it {problem}", unsafe=True))
        return None
    if entry.type is EntryType.LINK:
        plan.skipped.append(Skipped(shown, "symbolic link (links are not followed)"))
        return None
    if entry.type is EntryType.OTHER:
        plan.skipped.append(Skipped(shown, "not a regular file or directory"))
        return None
    if entry.is_file and entry.name.endswith(PARTIAL_SUFFIX):
        plan.skipped.append(Skipped(shown, "a transfer still in progress (temporary name)"))
        return None
    return posixpath.join(relative_dir, entry.name) if relative_dir else entry.name


def _walk(
    backend: Backend,
    plan: Plan,
    start: str,
    pattern: str | None,
    recursive: bool,
    filters: Filters,
    call: Caller,
) -> None:
    queue: deque[tuple[str, str]] = deque([(start, "")])
    while queue:
        directory, relative_dir = queue.popleft()
        try:
            entries = call(f"listing {directory}", functools.partial(backend.list, directory))
        except FerrymanError as err:
            plan.errors.append(err)
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            top_level = not relative_dir
            if top_level and pattern is not None and not fnmatch.fnmatchcase(entry.name, pattern):
                continue
            relative = _note_entry(plan, directory, relative_dir, entry)
            if relative is None:
                continue
            path = posixpath.join(directory, entry.name)
            if entry.is_dir:
                if recursive and filters.descend(relative):
                    plan.directories.append(relative)
                    queue.append((path, relative))
            elif filters.accepts(relative, entry):
                plan.items.append(PlanItem(path, relative, entry))


def build_plan(
    backend: Backend,
    source: str,
    *,
    recursive: bool = False,
    filters: Filters | None = None,
    call: Caller = direct_call,
) -> Plan:
    """The plan for ``source`` on ``backend``; see the module docstring."""
    filters = filters or Filters()
    start, pattern = split_glob(source)
    if pattern is None:
        entry = call(f"stat {source}", lambda: [backend.stat(source)])[0]
        if entry.type is EntryType.LINK:
            raise ConfigError(f"{source} is a symbolic link", hint="name the file it points to")
        if entry.is_file:
            name = posixpath.basename(source.rstrip("/")) or entry.name
            plan = Plan(root=posixpath.dirname(source), single=True)
            if filters.accepts(name, entry):
                plan.items.append(PlanItem(source, name, entry))
            return plan
        if not entry.is_dir:
            raise ConfigError(f"{source} is not a regular file or directory")
        if not recursive:
            raise ConfigError(
                f"{source} is a directory",
                hint="pass --recursive to copy its contents, or name files with a glob "
                "such as dir/*.csv",
            )
    plan = Plan(root=start)
    _walk(backend, plan, start, pattern, recursive, filters, call)
    if (
        pattern is not None
        and not plan.items
        and not plan.errors
        and not plan.directories
        and not plan.skipped
    ):
        raise NotFoundError(
            f"no file in {start} matches {pattern}",
            hint="check the pattern (case matters) and the directory",
        )
    return plan
