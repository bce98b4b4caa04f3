"""One large upload in several segments over parallel connections (``--segments N``).

A single flow is capped by more than the link: an SSH channel's window (OpenSSH's sshd
grants 2 MiB, which at 50 ms of round trip is 40 MiB/s whatever the line) and the TCP window
(4 MiB at 50 ms: 80 MiB/s). So, where the destination can write one file in ranges
(``Capabilities.write_ranges``: SFTP), N connections each write one range of the local file
into one remote temporary at its offset, and the whole is then checked and published like
any copy (:mod:`ferryman.transfer.copy`):

- the temporary is ``NAME.<tag>-segments.ferryman-part``, created empty (or cut to nothing:
  a temporary left by a copy that died holds bytes that are not ours) before any segment
  writes, and never the tagged name a resume continues from: while segments are under way
  it has holes;
- each segment reads its range of the local file and writes it with many requests in flight;
  its close waits for every reply, so a segment is known to have landed only once closed. A
  segment whose connection breaks is written again from its start (the write-behind window
  means the server may hold any part of it), after the retry policy's back-off;
- then the size the server reports, and its hash where it offers one (against a hash of the
  local file read back: the segments' bytes went out of order), the modification time where
  asked, and the rename to the final name;
- a copy that fails removes its temporary (it is never resumed: a resume continues a
  contiguous beginning, which a segmented temporary does not have).

Connections: the caller's destination connection creates the temporary, writes the last
segment, checks and publishes; the others are ``sibling_with_own_connection()`` connections
(SFTP: an SSH connection each) made in parallel and closed afterwards. A server that refuses
some of them just gets fewer segments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..backends.base import Backend, Entry
from ..backends.local import LocalBackend
from ..errors import FerrymanError, NotFoundError, VerificationError
from ..retry import RetryPolicy
from .closing import close_all
from .copy import (
    DEFAULT_CHUNK,
    CopyResult,
    Digest,
    _set_mtime,
    discard,
    hash_side,
    partial_name,
    publish,
    source_tag,
    verify_landed,
)
from .report import FileOutcome
from .segment_plan import segment_ranges
from .segment_runner import STOP_WAIT, Segment, SegmentedCopy, join, siblings
from .throttle import Limit

__all__ = ["upload_in_segments"]

log = logging.getLogger("ferryman.transfer")


class _Stopped(Exception):
    """Raised inside a segment's streams when another segment failed: aborts them."""


class _Upload(SegmentedCopy):
    """A segmented upload: each segment reads its range of the local file and writes it at
    its offset into the remote temporary ``part``."""

    def __init__(self, src: LocalBackend, part: str, src_path: str, size: int, **kw: Any) -> None:
        super().__init__(src_path, size, **kw)
        self.src, self.part = src, part

    def copy_segment(self, segment: Segment, backend: Backend, buffer: memoryview) -> None:
        position = segment.start  # the write-behind window: any part may be missing; all again
        try:
            with (
                self.src.open_read(self.src_path, position) as reader,
                backend.open_write_range(self.part, position) as writer,
            ):
                while position < segment.end:
                    if self.stop.is_set():
                        raise _Stopped
                    n = reader.readinto(buffer[: min(len(buffer), segment.end - position)])
                    if n == 0:
                        raise VerificationError(
                            f"{self.src_path}: the file ended at byte {position}, before "
                            f"the {self.size} bytes it had when listed",
                            hint="the file changed while it was sent; run again",
                        )
                    writer.write(buffer[:n])
                    position += n
                    self.counted(segment, position, n)
                if segment.end == self.size and reader.readinto(buffer[:1]):
                    raise VerificationError(
                        f"{self.src_path}: the file holds more than the {self.size} bytes it "
                        "had when listed",
                        hint="the file changed while it was sent; run again",
                    )
        except _Stopped:
            return  # the streams were aborted on the way out
        segment.done = segment.end - segment.start  # the close waited for every reply

    def digest(self, algorithm: str) -> Digest:
        """The hash of the local file, read back (the segments sent it out of order)."""
        digest, position = Digest(algorithm), 0
        view = memoryview(bytearray(max(self.chunk_size, DEFAULT_CHUNK)))
        with self.src.open_read(self.src_path) as reader:
            while n := reader.readinto(view):
                digest.update(view[:n])
                position += n
        if position != self.size:
            raise VerificationError(
                f"{self.src_path}: it holds {position} bytes now, {self.size} were sent",
                hint="the file changed while it was sent; run again",
            )
        return digest


def _remove(dst: Backend, part: str) -> None:
    """Remove the temporary, over a fresh connection when the caller's broke (the failure
    that ended the copy may have taken it down); never raise."""
    try:
        dst.remove(part)
        return
    except NotFoundError:
        return
    except FerrymanError as err:
        if not err.retriable:
            log.warning("%s could not be removed: %s", part, err)
            return
    fresh: Backend | None = None
    try:
        fresh = dst.sibling_with_own_connection()
        fresh.connect()
        discard(fresh, part)
    except FerrymanError as err:
        log.warning("%s could not be removed: %s", part, err)
    finally:
        if fresh is not None:
            fresh.close()


def upload_in_segments(
    src: LocalBackend,
    src_path: str,
    dst: Backend,
    dst_path: str,
    entry: Entry,
    count: int,
    *,
    retry: RetryPolicy,
    outcome: FileOutcome | None,
    replace: bool,
    chunk_size: int,
    progress: Callable[[int], None] | None,
    verify_hash: bool,
    preserve_mtime: bool,
    throttle: Limit | None,
) -> CopyResult:
    """Upload ``src_path`` to ``dst_path`` in ``count`` ranges written at once (see the
    module docstring); the caller checked the target may be written."""
    size = entry.size
    assert size is not None
    part = partial_name(dst_path, f"{source_tag(src, src_path, size)}-segments")
    state = _Upload(
        src,
        part,
        src_path,
        size,
        chunk_size=chunk_size,
        progress=progress,
        throttle=throttle,
        retry=retry,
        outcome=outcome,
    )
    extra: list[Backend] = []
    threads = []
    stopped = True
    try:
        with dst.open_write(part):  # created empty, or a dead copy's leftovers cut to nothing
            pass
        extra = siblings(dst, count - 1)
        parts = [Segment(start, end) for start, end in segment_ranges(size, len(extra) + 1)]
        log.info("%s: %d bytes in %d segments", src_path, size, len(parts))
        threads = state.start(parts[:-1], extra)
        state.run(parts[-1], dst)  # the caller's connection writes the end of the file
        stopped = join(threads, state)
        state.raise_failure(parts)
        hashing = hash_side(None, dst) if verify_hash else None
        digest = state.digest(hashing[0]) if hashing is not None else None
        verified = verify_landed(dst, part, dst_path, size, None, hashing, digest)
        if preserve_mtime and entry.mtime is not None:
            _set_mtime(dst, part, entry.mtime)
        publish(dst, part, dst_path, replace=replace)
    except BaseException:
        state.stop.set()
        stopped = stopped and join(threads, state, limit=STOP_WAIT)
        _remove(dst, part)  # holes: never resumed
        if not stopped:
            log.warning("%s: a segment did not stop in time", src_path)
        raise
    finally:
        close_all(extra)
    return CopyResult(src_path, dst_path, size, size, time.monotonic() - state.started, verified)
