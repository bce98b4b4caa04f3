"""What to do when the destination already has the file: the overwrite policy.

``fail`` is the default: nothing is clobbered silently. ``newer`` and ``different`` compare
modification times with the coarser of the two listings' precisions, so a LIST time that
shows minutes never makes an unchanged file look newer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from ..backends.base import Entry
from ..errors import TargetExistsError

__all__ = ["Decision", "IfExists", "decide"]


class IfExists(enum.StrEnum):
    """Overwrite policy: what a transfer does with a destination file that exists."""

    FAIL = "fail"  #: refuse (the default)
    SKIP = "skip"  #: leave it, skip the file
    OVERWRITE = "overwrite"  #: replace it
    NEWER = "newer"  #: replace it when the source is newer
    DIFFERENT = "different"  #: replace it when size or modification time differ
    RESUME = "resume"  #: continue a partial copy; replace a different complete one


@dataclass(frozen=True, slots=True)
class Decision:
    """``copy`` (from ``offset``), or ``skip`` with the reason."""

    action: str  #: "copy" or "skip"
    reason: str
    offset: int = 0  #: bytes already at the destination's temporary name to continue from
    replace: bool = False  #: a file exists under the final name and will be replaced
    #: the bytes to continue from are under the final name (a copy by another tool stopped
    #: there): move them to the temporary name first, so the final name stays complete-only
    from_final: bool = False

    @property
    def copies(self) -> bool:
        return self.action == "copy"


def _tolerance(a: Entry, b: Entry) -> timedelta:
    return timedelta(seconds=max(a.mtime_precision or 1, b.mtime_precision or 1))


def _newer(source: Entry, target: Entry) -> bool | None:
    if source.mtime is None or target.mtime is None:
        return None
    return source.mtime - target.mtime > _tolerance(source, target)


def _differs(source: Entry, target: Entry, compare_times: bool = True) -> bool:
    if source.size is not None and target.size is not None and source.size != target.size:
        return True
    if not compare_times:
        return source.size is None or target.size is None
    if source.mtime is None or target.mtime is None:
        return source.size is None or target.size is None
    return abs(source.mtime - target.mtime) > _tolerance(source, target)


def _resumable(source: Entry, partial: Entry | None) -> int:
    """Bytes of ``partial`` worth continuing from: a prefix written after the source's last
    change (an older partial may hold other content), no longer than the source."""
    if partial is None or not partial.size or source.size is None or partial.size > source.size:
        return 0
    if source.mtime is not None and partial.mtime is not None and partial.mtime < source.mtime:
        return 0
    return partial.size


def decide(
    policy: IfExists,
    source: Entry,
    target: Entry | None,
    partial: Entry | None = None,
    *,
    target_name: str = "",
    compare_times: bool = True,
) -> Decision:
    """The decision for one file. ``target`` is the destination's entry under the final name
    (None: absent); ``partial`` the entry of its temporary name, if one is left over.
    ``compare_times`` False makes ``different`` compare sizes only: right when copies do not
    get the source's time, so a copy's own time says nothing about its content."""
    policy = IfExists(policy)  # a plain string works too ("skip"), never silently as another
    if target is not None and target.is_dir:
        raise TargetExistsError(
            f"{target_name or target.name} is a directory at the destination",
            hint="rename or remove that directory, or choose another destination",
        )
    resume_from = _resumable(source, partial) if policy is IfExists.RESUME else 0
    if target is None:
        if resume_from:
            return Decision("copy", f"resuming at byte {resume_from}", offset=resume_from)
        return Decision("copy", "new")
    if policy is IfExists.FAIL:
        raise TargetExistsError(
            f"{target_name or target.name} already exists at the destination",
            hint="choose what to do with --if-exists skip, overwrite, newer, different or "
            "resume (--overwrite is short for --if-exists overwrite)",
        )
    if policy is IfExists.SKIP:
        return Decision("skip", "exists")
    if policy is IfExists.OVERWRITE:
        return Decision("copy", "overwrite", replace=True)
    if policy is IfExists.NEWER:
        newer = _newer(source, target)
        if newer is None:
            if _differs(source, target):
                return Decision("copy", "times unknown, sizes differ", replace=True)
            return Decision("skip", "times unknown, same size")
        return (
            Decision("copy", "source is newer", replace=True)
            if newer
            else Decision("skip", "destination is as new")
        )
    if policy is IfExists.DIFFERENT:
        if _differs(source, target, compare_times):
            return Decision("copy", "size or time differ", replace=True)
        return Decision("skip", "same size and time")
    # RESUME with a file under the final name: complete when sizes match; a shorter one is
    # continued (moved to the temporary name first by the engine); a longer one replaced.
    if source.size is not None and target.size == source.size:
        return Decision("skip", "complete")
    if (
        source.size is not None
        and target.size is not None
        and 0 < target.size < source.size
        and not (source.mtime and target.mtime and target.mtime < source.mtime)
    ):
        return Decision(
            "copy",
            f"resuming at byte {target.size}",
            offset=target.size,
            replace=True,
            from_final=True,
        )
    return Decision("copy", "different file", replace=True)
