"""One large file in several segments over parallel connections (``--segments N``):
:func:`copy_in_segments`, and the segmented download; uploads are in
:mod:`~ferryman.transfer.segment_upload`, what both share in
:mod:`~ferryman.transfer.segment_runner`.

Where one TCP flow is capped (a per-connection shaper, a long round trip with a small
window), N connections to the source each read one range of the file (``open_read`` at the
range's start, stopped after its length) and write it at its offset into one local temporary
file, through the descriptor of the claim that locks it (``os.pwrite``). Then the whole file
is checked as a single-stream copy would be (:func:`~ferryman.transfer.copy.verify_landed`:
the size, and a server-side hash of the bytes read back from the temporary) and published by
the same rename (:func:`~ferryman.transfer.copy.publish`).

- Downloads to the local disk are segmented from a remote source that can read at an offset,
  uploads from the local disk to a destination that writes ranges (SFTP), of a file whose
  size is known and at least ``segment_min_size``; everything else (remote to remote, FTP
  uploads, ASCII mode, a transform, a resumed copy) is one stream, :func:`copy_file`.
- The temporary is ``NAME.<tag>-segments.ferryman-part``, never the tagged name a resume
  continues from: while segments are under way it has holes, and a resume that took its size
  for its contents would publish them. When the copy fails (retriably) and the caller keeps
  temporaries, it is cut to its contiguous beginning and renamed to the tagged name, which a
  retry or the next run then continues as one stream; otherwise it is removed, as
  :func:`copy_file` does. Ctrl-C removes it, like any interrupted copy.
- A segment whose connection breaks continues from where it stopped, after the retry
  policy's back-off; retries of all segments count against the file's one budget.
- Connections: the caller's own source connection reads the last segment (so it ends at
  the end of the file, cleanly); the others are ``Backend.sibling_with_own_connection()``
  connections (FTP: a control connection each; SFTP: an SSH connection each) made in
  parallel and closed afterwards. A server that refuses some of them just gets fewer
  segments. A segment stopped before the end of the file closes its stream early (FTP: the
  data connection is dropped and the server's 426 read, or the session replaced).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..backends.base import Backend, Entry, ReadStream
from ..backends.local import LocalBackend, LocalClaim, translate_os_error
from ..errors import FerrymanError, VerificationError
from ..retry import RetryPolicy
from .closing import close_all
from .copy import (
    DEFAULT_CHUNK,
    CopyResult,
    Digest,
    _set_mtime,
    copy_file,
    discard,
    hash_side,
    partial_name,
    publish,
    source_tag,
    verify_landed,
)
from .report import FileOutcome
from .segment_plan import (
    AUTO,
    AUTO_SEGMENTS,
    DEFAULT_SEGMENT_MIN_SIZE,
    MAX_SEGMENTS,
    parse_segments,
    segment_count,
    segment_ranges,
)
from .segment_runner import STOP_WAIT, Segment, SegmentedCopy, join, siblings
from .segment_upload import upload_in_segments
from .throttle import Limit
from .transform import StreamTransform

__all__ = [
    "AUTO",
    "AUTO_SEGMENTS",
    "DEFAULT_SEGMENT_MIN_SIZE",
    "MAX_SEGMENTS",
    "copy_in_segments",
    "parse_segments",
    "segment_count",
    "segment_ranges",
]

# the plan (how many segments, which ranges) is in segment_plan; re-exported here

log = logging.getLogger("ferryman.transfer")


class _Download(SegmentedCopy):
    """A segmented download: each segment reads its range and writes it at its offset into
    the local temporary, through the claim's descriptor ``fd``."""

    def __init__(self, src_path: str, fd: int, size: int, **kwargs: Any) -> None:
        super().__init__(src_path, size, **kwargs)
        self.fd = fd

    def copy_segment(self, segment: Segment, backend: Backend, buffer: memoryview) -> None:
        self._read(segment, backend, buffer)

    def _read(self, segment: Segment, backend: Backend, buffer: memoryview) -> None:
        position = segment.start + segment.done
        last = segment.end == self.size
        with backend.open_read(self.src_path, position) as reader:
            while segment.left > 0:
                if self.stop.is_set():
                    return  # closing the stream early aborts it
                n = reader.readinto(buffer[: min(len(buffer), segment.left)])
                if n == 0:
                    raise VerificationError(
                        f"{self.src_path}: the source ended at byte {position}, "
                        f"before the {self.size} bytes it had when listed",
                        hint="the source changed while it was copied; run again",
                    )
                self._write(buffer[:n], position)
                position += n
                segment.done += n
                self.counted(segment, position, n)
            if last and reader.readinto(buffer[:1]):  # the end, read to close the stream cleanly
                raise VerificationError(
                    f"{self.src_path}: the source holds more than the {self.size} bytes it "
                    "had when listed",
                    hint="the source changed while it was copied; run again",
                )

    def _write(self, data: memoryview, position: int) -> None:
        try:
            while data:
                written = os.pwrite(self.fd, data, position)
                data, position = data[written:], position + written
        except OSError as exc:
            raise translate_os_error(exc, "write", self.src_path) from exc

    def digest(self, algorithm: str, part: str) -> Digest:
        """The hash of what the temporary ``part`` holds, read back (the segments arrived out
        of order, so it could not be computed on the way); raises VerificationError when the
        name no longer leads to the file written."""
        digest, position = Digest(algorithm), 0
        view = memoryview(bytearray(max(self.chunk_size, DEFAULT_CHUNK)))
        try:
            reader = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise translate_os_error(exc, "read back", part) from exc
        try:
            mine, named = os.fstat(self.fd), os.fstat(reader)
            if (mine.st_dev, mine.st_ino) != (named.st_dev, named.st_ino):
                raise VerificationError(
                    f"{part}: the temporary file was replaced by someone else",
                    hint="another program replaced the temporary file; find it, then run again",
                )
            while position < self.size:
                n = os.preadv(reader, [view[: min(len(view), self.size - position)]], position)
                if n == 0:
                    break
                digest.update(view[:n])
                position += n
        finally:
            os.close(reader)
        return digest


def copy_in_segments(
    src: Backend,
    src_path: str,
    dst: Backend,
    dst_path: str,
    *,
    segments: int,
    segment_min_size: int = DEFAULT_SEGMENT_MIN_SIZE,
    retry: RetryPolicy | None = None,
    outcome: FileOutcome | None = None,
    replace: bool = False,
    offset: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
    source_entry: Entry | None = None,
    verify_hash: bool = True,
    preserve_mtime: bool = False,
    cleanup: bool = True,
    target_checked: bool = False,
    ascii: bool = False,
    transform: StreamTransform | None = None,
    throttle: Limit | None = None,
    opened: ReadStream | None = None,
) -> CopyResult:
    """:func:`copy_file` in ``segments`` parallel ranges when the file qualifies (see
    :func:`segment_count`; ``segments`` 0 is auto), else :func:`copy_file` itself.
    ``retry`` paces a broken segment's retries; ``outcome.retries`` counts them. ``opened``:
    a read opened ahead for :func:`copy_file` (never segmented; closed when not used)."""
    entry = source_entry or src.stat(src_path)
    count = segment_count(
        segments, segment_min_size, src, dst, entry, offset=offset, ascii=ascii, transform=transform
    )
    allowed = replace or target_checked  # else copy_file checks the target is not there
    if count > 1 and opened is not None:
        opened.abort()  # a read opened ahead serves one stream only
        opened = None
    if count > 1 and allowed and isinstance(src, LocalBackend) and entry.size is not None:
        return upload_in_segments(
            src,
            src_path,
            dst,
            dst_path,
            entry,
            count,
            retry=retry or RetryPolicy(retries=0),
            outcome=outcome,
            replace=replace,
            chunk_size=chunk_size,
            progress=progress,
            verify_hash=verify_hash,
            preserve_mtime=preserve_mtime,
            throttle=throttle,
        )
    claim = None
    if count > 1 and isinstance(dst, LocalBackend) and allowed:
        part = partial_name(dst_path, f"{source_tag(src, src_path, entry.size)}-segments")
        claim = dst.claim(part)  # None: another process writes it; one stream then
    if claim is None:
        return copy_file(
            src,
            src_path,
            dst,
            dst_path,
            replace=replace,
            offset=offset,
            chunk_size=chunk_size,
            progress=progress,
            source_entry=entry,
            verify_hash=verify_hash,
            preserve_mtime=preserve_mtime,
            cleanup=cleanup,
            target_checked=target_checked,
            ascii=ascii,
            transform=transform,
            throttle=throttle,
            opened=opened,
        )
    assert isinstance(dst, LocalBackend) and entry.size is not None
    try:
        return _segmented(
            src,
            src_path,
            dst,
            dst_path,
            entry,
            count,
            claim,
            part,
            retry=retry or RetryPolicy(retries=0),
            outcome=outcome,
            replace=replace,
            chunk_size=chunk_size,
            progress=progress,
            verify_hash=verify_hash,
            preserve_mtime=preserve_mtime,
            cleanup=cleanup,
            throttle=throttle,
        )
    finally:
        claim.release()


def _segmented(
    src: Backend,
    src_path: str,
    dst: LocalBackend,
    dst_path: str,
    entry: Entry,
    count: int,
    claim: LocalClaim,
    part: str,
    *,
    retry: RetryPolicy,
    outcome: FileOutcome | None,
    replace: bool,
    chunk_size: int,
    progress: Callable[[int], None] | None,
    verify_hash: bool,
    preserve_mtime: bool,
    cleanup: bool,
    throttle: Limit | None,
) -> CopyResult:
    size = entry.size
    assert size is not None
    fd = os.dup(claim.fileno())  # the writers' own: closed only once they have all stopped
    state = _Download(
        src_path,
        fd,
        size,
        chunk_size=chunk_size,
        progress=progress,
        throttle=throttle,
        retry=retry,
        outcome=outcome,
    )
    extra: list[Backend] = []
    threads: list[threading.Thread] = []
    parts: list[Segment] = []
    stopped = True
    try:
        # a temporary left by a copy that died: its bytes are not ours. Only what has bytes
        # is cut: truncating the empty file a claim just made makes ext4 (auto_da_alloc)
        # write the whole file back when it is closed (0.43 s for 1 GiB, measured)
        if os.fstat(fd).st_size:
            os.ftruncate(fd, 0)
        extra = siblings(src, count - 1)
        ranges = segment_ranges(size, len(extra) + 1)
        parts = [Segment(start, end) for start, end in ranges]
        log.info("%s: %d bytes in %d segments", src_path, size, len(parts))
        threads = state.start(parts[:-1], extra)
        state.run(parts[-1], src)  # the caller's connection reads to the end of the file
        stopped = join(threads, state)
        state.raise_failure(parts)
        hashing = hash_side(src, dst) if verify_hash else None
        digest = state.digest(hashing[0], part) if hashing is not None else None
        landed = os.fstat(fd).st_size
        verified = verify_landed(
            dst, part, dst_path, size, landed, hashing, digest, source=(src, src_path)
        )
        if dst.fsync:
            os.fsync(fd)
        if preserve_mtime and entry.mtime is not None:
            _set_mtime(dst, part, entry.mtime)
        publish(dst, part, dst_path, replace=replace, claim=claim, size=size)
    except BaseException as err:
        state.stop.set()
        stopped = stopped and join(threads, state, limit=STOP_WAIT)
        keep = (
            not cleanup
            and stopped
            and isinstance(err, FerrymanError)
            and err.retriable
            and not isinstance(err, VerificationError)
        )
        kept = keep and _keep_beginning(src, src_path, dst, dst_path, part, claim, fd, parts)
        if not kept and claim.holds(part):  # never remove another's file
            discard(dst, part)
        raise
    finally:
        close_all(extra)
        if stopped:
            os.close(fd)
        else:  # a writer is still blocked: its descriptor must not be reused under it
            log.warning("%s: a segment did not stop in time; its descriptor stays open", src_path)
    return CopyResult(src_path, dst_path, size, size, time.monotonic() - state.started, verified)


def _keep_beginning(
    src: Backend,
    src_path: str,
    dst: LocalBackend,
    dst_path: str,
    part: str,
    claim: LocalClaim,
    fd: int,
    parts: list[Segment],
) -> bool:
    """Cut the temporary to its contiguous beginning and give it the tagged name a resume
    continues (one stream); False when there is nothing to keep or no way to keep it."""
    keep = 0
    for segment in parts:
        keep += segment.end - segment.start - segment.left
        if segment.left:
            break
    if keep == 0 or not claim.holds(part):
        return False
    size = parts[-1].end
    tagged = partial_name(dst_path, source_tag(src, src_path, size))
    try:
        os.ftruncate(fd, keep)
        holder = dst.claim(tagged)
    except (OSError, FerrymanError) as err:
        log.info("%s: the partial download could not be kept (%s)", src_path, err)
        return False
    if holder is None:  # another process writes the tagged temporary: leave it alone
        return False
    try:
        dst.rename(part, tagged)
    except FerrymanError:
        return False
    finally:
        holder.release()  # it held the file the rename replaced
    log.info("%s: kept the first %d bytes in %s to resume from", src_path, keep, tagged)
    return True
