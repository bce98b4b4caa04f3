"""How a download or upload is split into segments (``transfer.segments``): how many, and which
byte ranges; and the ``--segments`` value's parsing."""

from __future__ import annotations

from ..backends.base import Backend, Entry
from ..backends.local import LocalBackend
from ..errors import ConfigError
from .transform import StreamTransform

__all__ = [
    "AUTO",
    "AUTO_MIN_ROUND_TRIP",
    "AUTO_SEGMENTS",
    "DEFAULT_SEGMENT_MIN_SIZE",
    "MAX_SEGMENTS",
    "parse_segments",
    "segment_count",
    "segment_ranges",
]

#: ``segments`` value meaning: decide from the source's measured round trip
AUTO = 0
#: segments ``auto`` uses on a link with a long round trip, unless the server's backend
#: says otherwise (``Capabilities.auto_read_segments``, ``auto_write_segments``)
AUTO_SEGMENTS = 8
#: round trip (seconds) from which ``auto`` segments: below it one stream fills the link
AUTO_MIN_ROUND_TRIP = 0.01
#: files smaller than this are never segmented by default (a connection costs round trips)
DEFAULT_SEGMENT_MIN_SIZE = 64 * 1024 * 1024
#: most segments (connections) for one file
MAX_SEGMENTS = 16


def parse_segments(value: str | int) -> int:
    """``--segments``: a count from 1 (off) to :data:`MAX_SEGMENTS`, or ``auto`` (0)."""
    text = str(value).strip().lower()
    if text == "auto":
        return AUTO
    if not text.isdigit() or not 1 <= int(text) <= MAX_SEGMENTS:
        raise ConfigError(
            f"{value!r} is not a number of segments",
            hint=f"give a whole number from 1 (one stream) to {MAX_SEGMENTS}, or auto",
        )
    return int(text)


def segment_count(
    requested: int,
    min_size: int,
    src: Backend,
    dst: Backend,
    entry: Entry,
    *,
    offset: int = 0,
    ascii: bool = False,
    transform: StreamTransform | None = None,
) -> int:
    """How many segments a copy of ``entry`` from ``src`` to ``dst`` uses (1: one stream)."""
    if requested == 1 or offset or ascii or transform is not None:
        return 1
    remote = _segmentable_side(src, dst)
    size = entry.size
    if remote is None or size is None or size < max(min_size, 2):
        return 1
    if requested == AUTO:
        round_trip = getattr(remote, "round_trip", None)  # measured by the backend, if it does
        if not isinstance(round_trip, int | float) or round_trip < AUTO_MIN_ROUND_TRIP:
            return 1
        capabilities = remote.capabilities
        requested = (
            capabilities.auto_read_segments if remote is src else capabilities.auto_write_segments
        )
    return max(1, min(requested, size))


def _segmentable_side(src: Backend, dst: Backend) -> Backend | None:
    """The remote side of a copy that segments can speed up, or None: a download to the
    local disk from a source that reads at offsets, or an upload from the local disk to a
    destination that writes one file in ranges (``Capabilities.write_ranges``)."""
    local_src, local_dst = isinstance(src, LocalBackend), isinstance(dst, LocalBackend)
    if local_dst and not local_src and src.capabilities.resume_read:
        return src
    if local_src and not local_dst and dst.capabilities.write_ranges:
        return dst
    return None  # a local copy gains nothing; remote to remote is one stream


def segment_ranges(size: int, count: int) -> list[tuple[int, int]]:
    """``count`` (start, end) ranges covering ``size`` bytes, the first ones one byte longer
    when ``size`` is not a multiple of ``count``."""
    base, extra = divmod(size, count)
    ranges, start = [], 0
    for i in range(count):
        end = start + base + (1 if i < extra else 0)
        ranges.append((start, end))
        start = end
    return ranges
