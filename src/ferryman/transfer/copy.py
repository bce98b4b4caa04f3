"""Copy one file between any two backends, safely.

The destination appears under its final name only when complete and verified: the data is
written to ``NAME.ferryman-part`` beside it (WinSCP's ``.filepart``, rclone's ``.partial``),
its byte count checked against the source and against what the destination reports, and only
then renamed into place. After a failure the temporary file is removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..backends.base import Backend, Entry
from ..errors import (
    ConfigError,
    FerrymanError,
    NotFoundError,
    RemoteError,
    TargetExistsError,
    VerificationError,
)

__all__ = ["PARTIAL_SUFFIX", "CopyResult", "copy_file"]

PARTIAL_SUFFIX = ".ferryman-part"
DEFAULT_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class CopyResult:
    source: str
    target: str
    bytes: int
    seconds: float
    verified: str  #: how the copy was verified, e.g. "size"

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "verified": self.verified,
        }


def _exists(backend: Backend, path: str) -> bool:
    try:
        backend.stat(path)
    except NotFoundError:
        return False
    return True


def _publish(dst: Backend, part: str, target: str, overwrite: bool) -> None:
    """Rename the verified temporary into place; replace an existing file only if allowed."""
    if not overwrite or dst.capabilities.atomic_rename_replace:
        dst.rename(part, target)
        return
    try:
        dst.rename(part, target)
    except RemoteError:
        if not _exists(dst, target):
            raise
        dst.remove(target)  # this server cannot rename over a file: a short window, no loss
        dst.rename(part, target)


def _discard(dst: Backend, part: str) -> None:
    try:
        dst.remove(part)
    except FerrymanError:
        pass


def copy_file(
    src: Backend,
    src_path: str,
    dst: Backend,
    dst_path: str,
    *,
    overwrite: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Callable[[int], None] | None = None,
    source_entry: Entry | None = None,
) -> CopyResult:
    """Copy ``src_path`` on ``src`` to ``dst_path`` on ``dst``; see the module docstring.

    ``src`` and ``dst`` must be different backend objects (one FTP connection carries one
    transfer at a time).
    """
    if src is dst:
        raise ConfigError("copy_file needs two backend connections, not one")
    entry = source_entry or src.stat(src_path)
    if entry.is_dir:
        raise ConfigError(
            f"{src_path} is a directory", hint="name a file, or a glob such as dir/*.csv"
        )
    if not overwrite and _exists(dst, dst_path):
        raise TargetExistsError(
            f"{dst_path} already exists on {dst.describe()}",
            hint="pass --overwrite to replace it",
            retriable=False,
        )
    part = dst_path + PARTIAL_SUFFIX
    buffer = memoryview(bytearray(chunk_size))
    started = time.monotonic()
    try:
        with src.open_read(src_path) as reader, dst.open_write(part) as writer:
            while n := reader.readinto(buffer):
                writer.write(buffer[:n])
                if progress is not None:
                    progress(n)
        written = writer.bytes_transferred
        if entry.size is not None and written != entry.size:
            raise VerificationError(
                f"{src_path}: copied {written} bytes, but the source has {entry.size}",
                hint="the source changed or the connection lost data; the copy is retried",
            )
        landed = dst.stat(part).size
        if landed is not None and landed != written:
            raise VerificationError(
                f"{dst_path}: the destination holds {landed} bytes, {written} were sent",
                hint="the destination lost data (disk full or quota?); the copy is retried",
            )
        _publish(dst, part, dst_path, overwrite)
    except BaseException:
        _discard(dst, part)
        raise
    return CopyResult(src_path, dst_path, written, time.monotonic() - started, "size")
