"""gzip and zip, streamed (Python's own ``gzip``/``zipfile``), every output published whole.

Extracting a zip never writes outside its destination: each member's name is checked part by
part as a server's names are (:class:`ferryman.paths.LocalDestination`: no ``..``, no
absolute path, no drive letter or backslash, no control characters, no symbolic link on disk
leading out), and an archive with one such name is refused whole, before anything is
written. A member is a regular file whatever its recorded type (zipfile makes no links).
A damaged member (CRC mismatch, truncated data) fails with nothing of it published.
"""

from __future__ import annotations

import gzip
import shutil
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import FerrymanError, ProtocolError, VerificationError
from .localfiles import LocalOutput
from .paths import LocalDestination

__all__ = ["ArchiveError", "ArchiveFormat", "compress_files", "extract_file", "gzip_file"]

_CHUNK = 1 << 20
ArchiveFormat = str  #: "gzip" or "zip"


class ArchiveError(VerificationError):
    """An archive is damaged or not of the format its name says."""

    default_retriable = False


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Sink:
    """A file object over a LocalOutput's stream, for gzip/zipfile to write into."""

    def __init__(self, out: LocalOutput) -> None:
        self.out, self.position = out, 0

    def write(self, data: bytes) -> int:
        self.out.stream.write(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass


def _copy(reader: _Readable, out: LocalOutput, what: str) -> int:
    total = 0
    try:
        while chunk := reader.read(_CHUNK):
            out.stream.write(chunk)
            total += len(chunk)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        if isinstance(err, FileNotFoundError | PermissionError):
            raise
        raise ArchiveError(
            f"{what}: the archive is damaged ({err})",
            hint="nothing of it was published; get the archive again",
        ) from None
    return total


def gzip_file(source: Path, target: Path, *, level: int = 6, overwrite: bool = False) -> int:
    """Compress ``source`` into ``target`` (gzip); returns the bytes written."""
    with LocalOutput(target, overwrite=overwrite) as out:
        sink = _Sink(out)
        with (
            source.open("rb") as reader,
            gzip.GzipFile(
                filename=source.name,
                mode="wb",
                fileobj=sink,
                compresslevel=level,
            ) as writer,
        ):
            shutil.copyfileobj(reader, writer, _CHUNK)
        return sink.position


def compress_files(
    sources: Sequence[tuple[Path, str]], archive: Path, *, level: int = 6, overwrite: bool = False
) -> int:
    """Put ``sources`` ((path, name in the archive) pairs) into one zip ``archive``."""
    with LocalOutput(archive, overwrite=overwrite) as out:
        sink = _Sink(out)
        with zipfile.ZipFile(
            sink,  # type: ignore[call-overload]
            "w",
            compression=zipfile.ZIP_DEFLATED,
            compresslevel=level,
            allowZip64=True,
        ) as zf:
            for path, name in sources:
                zf.write(path, name)
        return sink.position


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    target: Path


def _members(zf: zipfile.ZipFile, archive: Path, into: LocalDestination) -> list[_Member]:
    """Every file member and where it lands; refuse the archive at its first unsafe name."""
    found = []
    for info in zf.infolist():
        name = info.filename
        if info.is_dir():
            name = name.rstrip("/")
            if not name:
                continue
        try:
            target = into.path(name)
        except FerrymanError as err:
            raise ProtocolError(
                f"{archive}: refusing member {name!r}: {err.message.split(': it ', 1)[-1]}",
                hint="the archive holds a name that could write outside the destination; "
                "nothing was extracted",
            ) from None
        if not info.is_dir():
            found.append(_Member(info, target))
    return found


def extract_file(archive: Path, destination: Path, *, overwrite: bool = False) -> list[Path]:
    """Extract ``archive`` (``.gz``: one file; ``.zip``: its members) into ``destination``;
    returns the files made, each published whole."""
    destination.mkdir(parents=True, exist_ok=True)
    if archive.name.lower().endswith((".gz", ".gzip")):
        stem = archive.name.rsplit(".", 1)[0] or "data"
        target = LocalDestination(destination).path(stem)
        with LocalOutput(target, overwrite=overwrite) as out, gzip.open(archive, "rb") as reader:
            _copy(reader, out, str(archive))
        return [target]
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        if isinstance(err, FileNotFoundError | PermissionError):
            raise
        raise ArchiveError(
            f"{archive}: not a zip archive ({err})",
            hint="check the file; only .zip and .gz archives are extracted",
        ) from None
    made = []
    with zf:
        members = _members(zf, archive, LocalDestination(destination))
        for member in members:
            member.target.parent.mkdir(parents=True, exist_ok=True)
            with (
                LocalOutput(member.target, overwrite=overwrite) as out,
                zf.open(member.info) as reader,
            ):
                _copy(reader, out, f"{archive}: {member.info.filename}")
            made.append(member.target)
    return made
