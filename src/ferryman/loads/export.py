"""Exporting a query's result to a CSV file: streamed, and published only when complete.

The rows are written to ``NAME.<random>.ferryman-part`` beside the destination, flushed to
disk, and only then renamed to ``NAME`` (an atomic replace on POSIX file systems). A query
that fails, a value that cannot be encoded, a full disk or a kill mid-way therefore never
leaves a half file under the final name -- a later step (an upload) cannot pick one up. The
result is fetched ``EXPORT_BATCH`` rows at a time, so memory does not grow with it.

The query runs as given, in a read transaction: SQLite databases are opened read-only
(``mode=ro``), so a statement that writes fails; through SQLAlchemy the transaction is
rolled back at the end. Exactly one statement is accepted.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..errors import LoadError
from .csvformat import CsvFormat
from .load import sqlalchemy_backend
from .results import ExportResult
from .sql import parse_database, single_statement
from .sqlite import query_sqlite

__all__ = ["EXPORT_BATCH", "PART_SUFFIX", "export_query"]

EXPORT_BATCH = 10_000
PART_SUFFIX = ".ferryman-part"

Rows = tuple[list[str], Iterator[Sequence[Any]]]


def export_query(database: str, query: str, path: Path, fmt: CsvFormat) -> ExportResult:
    """Write the result of ``query`` on ``database`` (a URL) to the CSV file ``path``."""
    started = time.perf_counter()
    url = parse_database(database)
    body = single_statement(query)
    path = Path(path)
    if path.is_dir():
        raise LoadError(f"cannot export to {path}: it is a directory", hint="name a file")
    if not path.parent.is_dir():
        raise LoadError(
            f"cannot export to {path}: directory {path.parent} does not exist",
            hint="create it first (a mkdir step), or correct the path",
        )
    rows: AbstractContextManager[Rows]
    if url.sqlite_path is not None:
        rows = query_sqlite(url.sqlite_path, body, EXPORT_BATCH)
    else:
        rows = sqlalchemy_backend().query_sqlalchemy(url, body, EXPORT_BATCH)
    with rows as (names, batches):
        count = _publish(path, fmt, names, batches)
    return ExportResult(path, count, time.perf_counter() - started)


def _publish(path: Path, fmt: CsvFormat, names: list[str], batches: Iterator[Sequence[Any]]) -> int:
    """Write the rows to a temporary file beside ``path``, then rename it into place."""
    temp = path.with_name(f"{path.name}.{secrets.token_hex(4)}{PART_SUFFIX}")
    null = fmt.null_output
    count = 0
    try:
        with open(temp, "x", encoding=fmt.encoding, newline="") as stream:
            writer = csv.writer(stream, **fmt.csv_options())
            if fmt.header:
                writer.writerow(names)
            for chunk in batches:
                if null:
                    chunk = [[null if v is None else v for v in row] for row in chunk]  # noqa: PLW2901
                try:
                    writer.writerows(chunk)
                except (csv.Error, UnicodeEncodeError):
                    count += _failing_row(chunk, fmt)
                    raise
                count += len(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except (csv.Error, UnicodeEncodeError, OSError) as err:
        _discard(temp)
        raise _write_error(err, path, count) from err
    except BaseException:
        _discard(temp)
        raise
    _sync_directory(path.parent)
    return count


def _failing_row(chunk: Sequence[Any], fmt: CsvFormat) -> int:
    """The index in ``chunk`` of the first row that cannot be written (for the message)."""
    for index, row in enumerate(chunk):
        text = io.StringIO()
        try:
            csv.writer(text, **fmt.csv_options()).writerow(row)
            text.getvalue().encode(fmt.encoding)
        except (csv.Error, UnicodeEncodeError):
            return index
    return 0


def _discard(temp: Path) -> None:
    with contextlib.suppress(OSError):
        temp.unlink()


def _write_error(err: Exception, path: Path, count: int) -> LoadError:
    row = f"row {count + 1} of the result"
    if isinstance(err, UnicodeEncodeError):
        return LoadError(
            f"cannot export to {path}: {row} holds a character that {err.encoding} cannot "
            f"encode ({err.object[err.start : err.end]!r})",
            hint="choose an encoding that has it (utf-8), or convert the value in the query",
        )
    if isinstance(err, csv.Error):
        return LoadError(
            f"cannot export to {path}: {row} cannot be written in this format: {err}",
            hint="set format.quotechar (or an escapechar) so values holding the delimiter "
            "or line breaks can be written",
        )
    strerror = err.strerror if isinstance(err, OSError) else None
    return LoadError(
        f"cannot export to {path}: {strerror or err}",
        hint="check free space and that this user may write that directory; no file was "
        "left under its name",
    )


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); harmless where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
