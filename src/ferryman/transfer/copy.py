"""Copy one file between any two backends, safely.

The destination appears under its final name only when complete and verified: the data is
written to a temporary name beside it (WinSCP's ``.filepart``, rclone's ``.partial``),
checked, and only then renamed into place. Checks: the byte count against the source's size,
the size the destination reports, and -- when a server offers one -- a server-side hash
compared with the hash of the bytes that went through. A copy may continue a temporary file
at ``offset`` (REST / SFTP offsets). After a failure the temporary file is removed, unless
the caller keeps it to resume (``cleanup=False``).

Temporary names are ``NAME.<tag>.ferryman-part``: the tag is 8 hex digits of a hash of the
source's identity (the source backend's secret-free ``describe()``, the source path, its
size), so two writers of one destination from different sources never share a temporary,
while the same source finds its own temporary again to resume. The modification time is
left out on purpose: listings report it with different precisions (``LIST`` minutes or days,
``MDTM`` seconds), and one file must get one tag however it was listed; a partial older than
the source is refused by the resume policy instead. Every temporary, with any tag, ends in
:data:`PARTIAL_SUFFIX`, which is how listings recognise (and never take) them.

Two writers of the *same* source to the local disk: the temporary is claimed with an
exclusive ``flock`` from before its first byte until after its rename; a writer that finds
it held writes to a fresh name of its own (``NAME.<tag>-<random>.ferryman-part``, never
resumed). Just before the rename the claim checks that the temporary's name still leads to
the inode this writer wrote and that it holds the bytes written, so a process never
publishes (and reports) bytes it did not write. The local disk is not re-read to hash it:
the bytes went from this process's buffer through its own descriptor into a file nobody else
may touch, and reading a big file back would double the disk's work. Remote destinations
have no locks; there the tag keeps different sources apart, and the size the server reports
(and its hash, where it offers one) is checked for the temporary this copy wrote.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..backends.base import Backend, Entry, NotSupportedError, ReadStream
from ..backends.local import LocalBackend, LocalClaim
from ..errors import (
    ConfigError,
    FerrymanError,
    NotFoundError,
    RemoteError,
    TargetExistsError,
    VerificationError,
)
from .throttle import Limit
from .transform import StreamTransform, TransformedStream

__all__ = [
    "HASH_PREFERENCE",
    "PARTIAL_SUFFIX",
    "CopyResult",
    "Digest",
    "copy_file",
    "discard",
    "discard_partial",
    "exists",
    "hash_side",
    "identity_tag",
    "partial_name",
    "publish",
    "source_tag",
    "verify_landed",
]

log = logging.getLogger("ferryman.transfer")

PARTIAL_SUFFIX = ".ferryman-part"
DEFAULT_CHUNK = 256 * 1024
#: server-side hashes in order of preference (strongest first)
HASH_PREFERENCE = ("sha256", "sha1", "md5", "crc32")


def source_tag(src: Backend, path: str, size: int | None) -> str:
    """8 hex digits naming a source: the same for the same file on the same server (so a
    retry or the next run finds its temporary again), different for another one."""
    if isinstance(src, LocalBackend):
        path = os.path.abspath(path)  # the same relative name in another directory is another file
    return identity_tag(src.describe(), path, size)


def identity_tag(where: str, path: str, size: int | None) -> str:
    """:func:`source_tag` from the parts: ``where`` is the source backend's ``describe()``."""
    key = "\0".join((where, path, "" if size is None else str(size)))
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def partial_name(path: str, tag: str) -> str:
    """The temporary name of a copy of the source tagged ``tag`` to ``path``."""
    return f"{path}.{tag}{PARTIAL_SUFFIX}"


@dataclass(frozen=True, slots=True)
class CopyResult:
    source: str
    target: str
    bytes: int  #: bytes moved by this copy (less than the size when it resumed)
    size: int  #: size of the published file
    seconds: float
    verified: str  #: how the copy was verified: "size", "size+sha256", ...
    resumed_from: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "bytes": self.bytes,
            "size": self.size,
            "seconds": round(self.seconds, 6),
            "verified": self.verified,
            "resumed_from": self.resumed_from,
        }


class Digest:
    """hashlib's interface for the algorithms servers offer, CRC32 included."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._crc = 0
        self._hash = None if algorithm == "crc32" else hashlib.new(algorithm)

    def update(self, data: bytes | memoryview) -> None:
        if self._hash is None:
            self._crc = zlib.crc32(data, self._crc)
        else:
            self._hash.update(data)

    def hexdigest(self) -> str:
        return f"{self._crc:08x}" if self._hash is None else self._hash.hexdigest()


def exists(backend: Backend, path: str) -> bool:
    try:
        backend.stat(path)
    except NotFoundError:
        return False
    return True


def discard(backend: Backend, path: str) -> None:
    """Remove ``path`` if it is there; never raise (used while handling another error)."""
    try:
        backend.remove(path)
    except FerrymanError:
        pass


def discard_partial(dst: Backend, path: str) -> None:
    """Remove the temporary ``path`` unless another writer is filling it (on the local disk,
    where writers claim their temporaries); never raise."""
    if not isinstance(dst, LocalBackend):
        discard(dst, path)
        return
    try:
        claim = dst.claim(path, create=False)
    except FerrymanError:
        return  # gone already, or not ours to judge
    if claim is not None:
        try:
            discard(dst, path)
        finally:
            claim.release()


def _claim(
    dst: Backend, dst_path: str, tag: str, offset: int
) -> tuple[str, LocalClaim | None, int]:
    """The temporary this copy writes, its claim (local disk), and the offset to continue
    from: a fresh name from 0 when another writer holds the tagged one."""
    part = partial_name(dst_path, tag)
    if not isinstance(dst, LocalBackend):
        return part, None, offset
    claim = dst.claim(part)
    if claim is not None:
        return part, claim, offset
    fresh = partial_name(dst_path, f"{tag}-{secrets.token_hex(4)}")
    log.info("%s is being written by another process; writing %s instead", part, fresh)
    claim = dst.claim(fresh, new=True)
    if claim is None:  # nobody else can know a name made a moment ago: a bug or a hostile peer
        raise VerificationError(f"{fresh}: the new temporary file is locked by someone else")
    return fresh, claim, 0


def publish(
    dst: Backend,
    part: str,
    target: str,
    *,
    replace: bool,
    claim: LocalClaim | None = None,
    size: int | None = None,
) -> None:
    """Rename the verified temporary into place; replace an existing file only if allowed.
    Under a claim, first make sure the name still leads to the file this copy wrote."""
    if claim is not None:
        claim.check(part, size)
    if not replace or dst.capabilities.atomic_rename_replace:
        dst.rename(part, target)
        return
    try:
        dst.rename(part, target)
    except RemoteError:
        if not exists(dst, target):
            raise
        dst.remove(target)  # this server cannot rename over a file: a short window, no loss
        dst.rename(part, target)


def hash_side(src: Backend | None, dst: Backend) -> tuple[str, Backend] | None:
    """Which server-side hash to check, and on which side (the destination's preferred: it
    checks what landed); ``src`` None: the destination's only (an upload from memory)."""
    for side in (dst, src) if src is not None else (dst,):
        offered = side.capabilities.hashes
        for algorithm in HASH_PREFERENCE:
            if algorithm in offered:
                return algorithm, side
    return None


def _seed(digest: Digest, backend: Backend, path: str, offset: int, buffer: memoryview) -> None:
    """Feed the first ``offset`` bytes of ``path`` into ``digest`` (a resumed copy)."""
    seen = 0
    with backend.open_read(path) as reader:
        while n := reader.readinto(buffer):
            digest.update(buffer[: max(0, min(n, offset - seen))])
            seen += n
    if seen != offset:
        raise VerificationError(
            f"{path}: the partial copy holds {seen} bytes, not {offset}",
            hint="it changed while resuming and was discarded; run again to copy from the start",
        )


def copy_file(
    src: Backend,
    src_path: str,
    dst: Backend,
    dst_path: str,
    *,
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
    """Copy ``src_path`` on ``src`` to ``dst_path`` on ``dst``; see the module docstring.

    ``offset`` > 0 continues the destination's temporary file from that byte. ``replace``
    allows replacing a file under the final name (the caller decided that; see
    ``transfer.policy``); without it an existing target is refused, unless the caller has
    just checked (``target_checked``). ``ascii`` copies text in FTP's TYPE A (line ends
    converted; then sizes differ by design, so only byte counts and the server's replies are
    checked, and nothing is resumed). ``src`` and ``dst`` must be different backend objects
    (one FTP connection carries one transfer at a time). ``transform`` changes the bytes on
    the way (``transfer.transform``): then nothing is resumed, the source's size is checked
    against the bytes read, and only a destination's hash is compared. ``throttle`` is
    charged for every chunk (``transfer.throttle``: --bwlimit). ``opened`` is a read of
    ``src_path`` from byte 0 that the caller opened ahead (``Capabilities.read_ahead``): it
    is used when this copy starts at byte 0 in binary, and aborted otherwise.
    """
    if opened is not None and (offset or ascii or transform is not None):
        opened.abort()  # not a read this copy can use
        opened = None
    try:
        if src is dst:
            raise ConfigError("copy_file needs two backend connections, not one")
        entry = source_entry or src.stat(src_path)
        if entry.is_dir:
            raise ConfigError(
                f"{src_path} is a directory", hint="name a file, or a glob such as dir/*.csv"
            )
        if not replace and not target_checked and exists(dst, dst_path):
            raise TargetExistsError(
                f"{dst_path} already exists on {dst.describe()}",
                hint="pass --overwrite (or --if-exists) to replace it",
            )
        tag = source_tag(src, src_path, entry.size)
        buffer = memoryview(bytearray(chunk_size))
        started = time.monotonic()
        if ascii:
            offset, verify_hash = 0, False
        if transform is not None:
            offset, ascii = 0, False
        hashing = hash_side(src, dst) if verify_hash else None
        if transform is not None and hashing is not None and hashing[1] is not dst:
            hashing = None  # the source's hash is of the bytes before the transform
        digest = Digest(hashing[0]) if hashing else None
        part, claim, offset = _claim(dst, dst_path, tag, offset)
    except BaseException:
        if opened is not None:
            opened.abort()  # refused before it was used: never left open
        raise
    try:
        if digest is not None and offset:
            _seed(digest, dst, part, offset, buffer)
        if opened is not None:
            reader_cm: ReadStream = opened
        elif ascii:
            reader_cm = src.open_read_ascii(src_path)
        else:
            reader_cm = src.open_read(src_path, offset)
        if transform is not None:
            try:
                reader_cm = transform.wrap(reader_cm, src_path)
            except BaseException:
                reader_cm.abort()
                raise
        try:
            writer_cm = dst.open_write_ascii(part) if ascii else dst.open_write(part, offset)
        except BaseException:
            reader_cm.abort()  # a refused write (e.g. a resume) must not leave the source open
            raise
        with reader_cm as reader, writer_cm as writer:
            while n := reader.readinto(buffer):
                writer.write(buffer[:n])
                if digest is not None:
                    digest.update(buffer[:n])
                if progress is not None:
                    progress(n)
                if throttle is not None:
                    throttle.take(n)
        moved = writer.bytes_transferred
        size = offset + moved
        landed = writer.landed_size
        if ascii:  # line ends were converted: sizes differ by design, byte counts do not
            if landed is None:
                landed = dst.size(part)
            if moved and landed == 0:
                raise VerificationError(
                    f"{dst_path}: {moved} bytes were sent, but the destination holds none",
                    hint="the destination lost data (disk full or quota?); check its space, "
                    "then run again",
                )
            if preserve_mtime and entry.mtime is not None:
                _set_mtime(dst, part, entry.mtime)
            publish(dst, part, dst_path, replace=replace, claim=claim, size=landed)
            seconds = time.monotonic() - started
            return CopyResult(src_path, dst_path, moved, landed or moved, seconds, "ascii")
        read = reader.source_bytes if isinstance(reader, TransformedStream) else size
        if entry.size is not None and read != entry.size:
            raise VerificationError(
                f"{src_path}: copied {read} bytes, but the source has {entry.size}",
                hint="the source changed or the connection lost data; run again "
                "(--stable-for waits for files still being written)",
            )
        verified = verify_landed(
            dst, part, dst_path, size, landed, hashing, digest, source=(src, src_path)
        )
        if isinstance(reader, TransformedStream) and reader.verified:
            verified += f"+{reader.verified}"
        if preserve_mtime and entry.mtime is not None:
            _set_mtime(dst, part, entry.mtime)
        publish(dst, part, dst_path, replace=replace, claim=claim, size=size)
    except BaseException as err:
        # a copy that failed verification is known bad: never keep it to resume from; nor
        # a fresh name, which no one will look for again
        keep = (
            not cleanup
            and part == partial_name(dst_path, tag)
            and isinstance(err, FerrymanError)
            and err.retriable
            and not isinstance(err, VerificationError)
        )
        if not keep and (claim is None or claim.holds(part)):  # never remove another's file
            discard(dst, part)
        raise
    finally:
        if claim is not None:
            claim.release()
    return CopyResult(
        src_path, dst_path, moved, size, time.monotonic() - started, verified, resumed_from=offset
    )


def verify_landed(
    dst: Backend,
    part: str,
    dst_path: str,
    size: int,
    landed: int | None,
    hashing: tuple[str, Backend] | None,
    digest: Digest | None,
    *,
    source: tuple[Backend, str] | None = None,
) -> str:
    """Check what landed under the temporary name ``part``: the size the destination reports
    (``landed``, or asked now), then the server's hash against ``digest`` of the bytes sent
    (see :func:`hash_side`; on the source side, of ``source``'s path). Returns how the copy
    was verified: ``"size"`` or ``"size+sha256"``; raises VerificationError."""
    if landed is None:
        landed = dst.size(part)
    if landed is not None and landed != size:
        raise VerificationError(
            f"{dst_path}: the destination holds {landed} bytes, {size} were sent",
            hint="the destination lost data (disk full or quota?); check its space, then run again",
        )
    if hashing is None or digest is None:
        return "size"
    algorithm, side = hashing
    path = part if side is dst or source is None else source[1]
    server = _server_hash(side, path, algorithm)
    if server is None:
        return "size"
    if server.lower() != digest.hexdigest():
        raise VerificationError(
            f"{dst_path}: {algorithm} of the copy differs from the source's "
            f"({side.describe()} says {server}, the bytes sent hash to {digest.hexdigest()})",
            hint="the data was corrupted on the way or the source changed; run again",
        )
    return f"size+{algorithm}"


def _server_hash(side: Backend, path: str, algorithm: str) -> str | None:
    """The server's digest of ``path``; None when the server, although it advertised the
    hash, refuses to compute it: the copy is then verified by size alone."""
    try:
        return side.hash(path, algorithm)
    except NotSupportedError as err:
        log.info("%s: %s; verified by size only", path, err.message)
        return None


def _set_mtime(dst: Backend, path: str, mtime: datetime) -> None:
    """Preserve the modification time; a server that cannot is noted, never fatal: the data
    is complete and verified."""
    if not dst.capabilities.set_mtime:
        log.info("%s cannot set modification times; %s keeps the copy's time", dst.describe(), path)
        return
    try:
        dst.set_mtime(path, mtime)
    except FerrymanError as err:
        log.warning("could not preserve the modification time of %s: %s", path, err)
