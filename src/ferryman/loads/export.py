"""Exporting a query's result to a file (CSV/TSV, JSON Lines, Parquet): streamed, and
published only when complete.

The rows are written to ``NAME.<random>.ferryman-part`` beside the destination, flushed to
disk, and only then renamed to ``NAME`` (an atomic replace on POSIX file systems). A query
that fails, a value that cannot be encoded, a full disk or a kill mid-way therefore never
leaves a half file under the final name -- a later step (an upload) cannot pick one up. The
result is fetched ``EXPORT_BATCH`` rows at a time, so memory does not grow with it.

The query runs as given, in a read transaction: SQLite databases are opened read-only
(``mode=ro``), so a statement that writes fails; through SQLAlchemy the transaction is
rolled back at the end; PostgreSQL and MySQL/MariaDB run it in a READ ONLY transaction.
Exactly one statement is accepted.

PostgreSQL exports to CSV go through ``COPY (query) TO STDOUT``: the server writes the CSV,
ferryman streams its bytes to the file (PostgreSQL spells values its own way: booleans ``t``
and ``f``). JSON Lines write one object a line (dates ISO 8601, decimals as strings, so no
digit is lost); Parquet a row group per batch, the column types taken from the first batch
(a column that is NULL throughout it is a string column).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, LoadError
from .csvformat import EXPORT_FORMATS, CsvFormat
from .load import mysql_backend, postgres_backend, sqlalchemy_backend
from .results import ExportResult
from .sql import DatabaseURL, parse_database, single_statement
from .sqlite import query_sqlite

__all__ = ["EXPORT_BATCH", "PART_SUFFIX", "export_query"]

EXPORT_BATCH = 10_000
PART_SUFFIX = ".ferryman-part"

Rows = tuple[list[str], Iterator[Sequence[Any]]]


def export_query(database: str, query: str, path: Path, fmt: CsvFormat) -> ExportResult:
    """Write the result of ``query`` on ``database`` (a URL) to ``path``, as ``fmt`` says
    (csv, tsv, jsonl or parquet)."""
    started = time.perf_counter()
    url = parse_database(database)
    body = single_statement(query)
    path = Path(path)
    if fmt.format not in EXPORT_FORMATS:
        raise ConfigError(
            f"exports write csv, tsv, jsonl or parquet, not {fmt.format}",
            hint="set format.format to one of them",
        )
    if path.is_dir():
        raise LoadError(f"cannot export to {path}: it is a directory", hint="name a file")
    if not path.parent.is_dir():
        raise LoadError(
            f"cannot export to {path}: directory {path.parent} does not exist",
            hint="create it first (a mkdir step), or correct the path",
        )
    if url.kind == "postgresql" and fmt.format in ("csv", "tsv"):
        copied = postgres_backend(export=True).copy_out(url, body, fmt)
        if copied is not None:
            count = _publish(path, lambda stream: _write_copy(stream, copied))
            return ExportResult(path, count, time.perf_counter() - started)
    with _rows(url, body) as (names, batches):
        write = _WRITERS[fmt.format]
        count = _publish(path, lambda stream: write(stream, fmt, names, batches))
    return ExportResult(path, count, time.perf_counter() - started)


def _rows(url: DatabaseURL, body: str) -> AbstractContextManager[Rows]:
    if url.sqlite_path is not None:
        return query_sqlite(url.sqlite_path, body, EXPORT_BATCH)
    if url.kind == "postgresql":
        rows: AbstractContextManager[Rows] = postgres_backend(export=True).query_postgres(
            url, body, EXPORT_BATCH
        )
        return rows
    if url.kind == "mysql":
        rows = mysql_backend(export=True).query_mysql(url, body, EXPORT_BATCH)
        return rows
    rows = sqlalchemy_backend().query_sqlalchemy(url, body, EXPORT_BATCH)
    return rows


class _Counted:
    """The rows written so far, for the message of an error part-way."""

    rows = 0


def _publish(path: Path, write: Callable[[IO[bytes]], int]) -> int:
    """Write to a temporary file beside ``path`` with ``write``, then rename it into place."""
    temp = path.with_name(f"{path.name}.{secrets.token_hex(4)}{PART_SUFFIX}")
    _Counted.rows = 0
    try:
        with open(temp, "xb") as stream:
            count = write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except (csv.Error, UnicodeEncodeError, OSError) as err:
        _discard(temp)
        raise _write_error(err, path, _Counted.rows) from err
    except BaseException:
        _discard(temp)
        raise
    _sync_directory(path.parent)
    return count


def _write_copy(stream: IO[bytes], copied: Any) -> int:
    """PostgreSQL's COPY output, as it comes; the row count COPY reports."""
    count: int = copied(stream.write)
    return count


def _write_csv(
    stream: IO[bytes], fmt: CsvFormat, names: list[str], batches: Iterator[Sequence[Any]]
) -> int:
    null = fmt.null_output
    count = 0
    text = io.TextIOWrapper(stream, encoding=fmt.encoding, newline="", write_through=False)
    try:
        writer = csv.writer(text, **fmt.csv_options())
        if fmt.header:
            writer.writerow(names)
        for chunk in batches:
            if null:
                chunk = [[null if v is None else v for v in row] for row in chunk]  # noqa: PLW2901
            try:
                writer.writerows(chunk)
            except (csv.Error, UnicodeEncodeError):
                _Counted.rows = count + _failing_row(chunk, fmt)
                raise
            count += len(chunk)
            _Counted.rows = count
        text.flush()
    finally:
        text.detach()
    return count


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _write_jsonl(
    stream: IO[bytes], fmt: CsvFormat, names: list[str], batches: Iterator[Sequence[Any]]
) -> int:
    count = 0
    encode = json.JSONEncoder(ensure_ascii=False, default=_json_value).encode
    for chunk in batches:
        lines = [encode(dict(zip(names, row, strict=True))) + "\n" for row in chunk]
        stream.write("".join(lines).encode(fmt.encoding))
        count += len(chunk)
        _Counted.rows = count
    return count


def _write_parquet(
    stream: IO[bytes], fmt: CsvFormat, names: list[str], batches: Iterator[Sequence[Any]]
) -> int:
    try:
        import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
        import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]  # noqa: PLC0415
    except ModuleNotFoundError:
        raise ConfigError(
            "exports to Parquet need pyarrow, which is not installed",
            hint="pip install 'ferryman[parquet]'",
        ) from None
    count = 0
    schema: Any = None
    writer: Any = None
    try:
        for chunk in batches:
            columns = [list(col) for col in zip(*chunk, strict=True)] if chunk else []
            if schema is None:
                arrays = [pa.array(col) for col in columns]
                types = [pa.string() if a.type == pa.null() else a.type for a in arrays]
                schema = pa.schema(list(zip(names, types, strict=True)))
                writer = pq.ParquetWriter(stream, schema)
            try:
                arrays = [pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)]
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as err:
                raise LoadError(
                    f"cannot export to Parquet: a column's values change type after row "
                    f"{count} ({err})",
                    hint="cast the column in the query (e.g. CAST(x AS TEXT))",
                ) from None
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            count += len(chunk)
            _Counted.rows = count
        if writer is None:
            schema = pa.schema([(name, pa.string()) for name in names])
            writer = pq.ParquetWriter(stream, schema)
    finally:
        if writer is not None:
            writer.close()
    return count


_WRITERS: dict[str, Callable[[IO[bytes], CsvFormat, list[str], Iterator[Sequence[Any]]], int]] = {
    "csv": _write_csv,
    "tsv": _write_csv,
    "jsonl": _write_jsonl,
    "parquet": _write_parquet,
}


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
