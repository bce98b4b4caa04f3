"""Opening a load's input, decompressing ``.gz`` and ``.zip`` on the fly.

Nothing is unpacked to disk and nothing is held in memory: a gzip file is read through
:mod:`gzip`, a zip member through :mod:`zipfile`'s streaming reader. Which compression a file
has comes from ``format.compression`` (``auto``: by the suffix). A zip must hold exactly one
file unless ``format.member`` names one. Damaged or truncated compressed data is a
:class:`~ferryman.errors.LoadError` naming the file (:func:`compressed_error`), raised while
reading, since that is when gzip finds out.
"""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from pathlib import Path
from typing import IO, cast

from ..errors import LoadError
from .csvformat import CsvFormat

__all__ = ["DAMAGED", "compressed_error", "open_binary", "open_text", "opening_error"]

#: what a damaged gzip/zip raises while it is read
DAMAGED = (EOFError, zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)


def opening_error(path: Path, err: OSError) -> LoadError:
    """The LoadError for a file that cannot be opened."""
    if isinstance(err, FileNotFoundError):
        return LoadError(
            f"{path}: no such file", hint="check the path and the step that should have fetched it"
        )
    if isinstance(err, IsADirectoryError):
        return LoadError(f"{path}: is a directory, not a file")
    return LoadError(f"{path}: cannot be read: {err.strerror or err}")


def compressed_error(path: Path, err: BaseException) -> LoadError:
    """The LoadError for compressed data that does not decompress."""
    return LoadError(
        f"{path}: the compressed data is damaged or truncated ({err or type(err).__name__})",
        hint="fetch the file again; check format.compression if the file is not compressed",
    )


def _zip_member(path: Path, fmt: CsvFormat) -> IO[bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise compressed_error(path, err) from None
    try:
        files = [info for info in archive.infolist() if not info.is_dir()]
        if fmt.member is not None:
            chosen = [info for info in files if info.filename == fmt.member]
            if not chosen:
                names = ", ".join(info.filename for info in files[:20]) or "none"
                raise LoadError(
                    f"{path}: the zip archive has no member {fmt.member!r} (its files: {names})",
                    hint="correct format.member",
                )
        elif len(files) != 1:
            names = ", ".join(info.filename for info in files[:20]) or "none"
            raise LoadError(
                f"{path}: the zip archive holds {len(files)} files ({names}), so which to load "
                "is not clear",
                hint="name one in format.member",
            )
        else:
            chosen = files
        stream = archive.open(chosen[0])
    except BaseException:
        archive.close()
        raise
    return _ClosingBoth(stream, archive)


class _ClosingBoth(io.BufferedReader):
    """A zip member's stream that closes its archive too."""

    def __init__(self, stream: IO[bytes], archive: zipfile.ZipFile) -> None:
        super().__init__(stream, buffer_size=1 << 16)  # type: ignore[arg-type]
        self._archive = archive

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._archive.close()


def open_binary(path: Path, fmt: CsvFormat) -> IO[bytes]:
    """The file's bytes, decompressed. LoadError when it cannot be opened."""
    try:
        kind = fmt.compression_of(path.name)
        if kind == "gzip":
            return cast(IO[bytes], gzip.open(path, "rb"))
        if kind == "zip":
            return _zip_member(path, fmt)
        return open(path, "rb")
    except OSError as err:
        raise opening_error(path, err) from None


def open_text(path: Path, fmt: CsvFormat) -> IO[str]:
    """The file's text, decompressed and decoded as ``fmt`` says, line ends untranslated
    (``newline=""``, what :mod:`csv` wants)."""
    if fmt.compression_of(path.name) == "none":
        try:
            return open(path, encoding=fmt.decoding, errors="strict", newline="")
        except OSError as err:
            raise opening_error(path, err) from None
    raw = open_binary(path, fmt)
    return io.TextIOWrapper(raw, encoding=fmt.decoding, errors="strict", newline="")
