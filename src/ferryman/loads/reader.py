"""Reading one CSV file for a load: streamed, checked, converted, every error at FILE:LINE.

The file is read through :mod:`csv` record by record, so memory does not grow with the file.
Line numbers are physical lines of the file, counting skipped lines and the header; a record
whose quoted field spans lines is reported at the line where it starts. Knowing the line of
the record being inserted costs one attribute store per row; everything else that is only
needed for a message (which column failed, where a decoding error is) is worked out after
the failure, so the rows that load pay nothing for it.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..errors import ConfigError, LoadError
from .csvformat import ColumnType, CsvFormat
from .opener import DAMAGED, compressed_error, open_binary, open_text
from .sql import check_identifier
from .values import Rejected, converter, describe

__all__ = ["CsvSource", "SourceBase"]

_CSV_REASONS = {
    "unexpected end of data": (
        "a quoted field is not closed before the end of the file",
        'close the quote; a quote inside a quoted field is written twice ("")',
    ),
    "expected after": (
        "a quote is followed by other characters than the delimiter",
        "quote the whole field and double the quotes inside it, or set format.quotechar "
        "to null if the file does not quote fields",
    ),
    "field larger than field limit": (
        "a field is longer than 131072 characters",
        "its quotes are probably unbalanced, or the delimiter or quotechar is wrong",
    ),
}


class SourceBase:
    """What every format's source has: the file, its format, the names of its columns and
    where the record last given by ``records()`` is (``line``: a line of a text file, a row
    of a sheet or of a Parquet file), so that any error can say ``FILE:LINE``."""

    def __init__(self, path: Path, fmt: CsvFormat) -> None:
        self.path = path
        self.fmt = fmt
        self.line = 0
        self.rows = 0  #: records given by records(), once it is exhausted
        self.names: list[str] | None = None
        self.header_line = 0

    def error(self, line: int | None, message: str, hint: str | None = None) -> LoadError:
        where = f"{self.path}:{line}" if line else str(self.path)
        return LoadError(f"{where}: {message}", hint=hint)

    def __enter__(self) -> Any:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> list[str] | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def records(
        self, width: int, kinds: Sequence[ColumnType | None], *, native: bool
    ) -> Iterator[list[Any]]:
        raise NotImplementedError

    def check_names(self, names: list[str]) -> list[str]:
        """The header's names, renamed by ``columns``, checked: LoadError at the header."""
        if self.fmt.columns is not None:
            if len(self.fmt.columns) != len(names):
                raise self.error(
                    self.header_line,
                    f"the header has {len(names)} columns but format.columns names "
                    f"{len(self.fmt.columns)}",
                    "give one new name per column of the header, in order",
                )
            names = list(self.fmt.columns)
        seen: set[str] = set()
        for number, name in enumerate(names, 1):
            try:
                check_identifier(name, f"column {number} of the header")
            except ConfigError as err:
                raise self.error(self.header_line, err.message, err.hint) from None
            if name in seen:
                raise self.error(
                    self.header_line,
                    f"column {name!r} appears twice in the header",
                    "rename one of them with format.columns",
                )
            seen.add(name)
        return names

    def locate(self, number: int, width: int, kinds: Sequence[ColumnType | None]) -> int | None:
        """Where the ``number``-th record (1: the first after the header) is, checking the
        records before it as ``records()`` does (raising their LoadError); None past the end.
        On a freshly opened source: it reads it."""
        for count, _row in enumerate(self.records(width, kinds, native=False), 1):
            if count == number:
                return self.line
        return None


class _Counting:
    """A csv reader that stops after ``stop`` records, blank lines included (as PostgreSQL's
    COPY and MariaDB's LOAD DATA count them), and knows where the last one started."""

    def __init__(self, reader: Any, stop: int) -> None:
        self.reader = reader
        self.stop = stop
        self.count = 0
        self.before = 0  # line_num before the last record was read

    @property
    def line_num(self) -> int:
        return int(self.reader.line_num)

    def __iter__(self) -> _Counting:
        return self

    def __next__(self) -> list[str]:
        if self.count >= self.stop:
            raise StopIteration
        self.before = self.reader.line_num
        record: list[str] = next(self.reader)
        self.count += 1
        return record


class CsvSource(SourceBase):
    """One CSV file being loaded: ``open()`` reads the header, ``records()`` the rest.

    ``line`` is the line where the record last given by ``records()`` starts, so an error
    the database raises while inserting it can be reported at that line.
    """

    def __init__(self, path: Path, fmt: CsvFormat) -> None:
        super().__init__(path, fmt)
        self._file: IO[str] | None = None
        self._reader: Any = None
        self._skipped = 0  # lines read before the csv reader started

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def open(self) -> list[str] | None:
        """Open the file, skip ``skip_rows`` lines, read the header; the column names (from
        the header, renamed by ``columns``), or ``columns``, or None (no header, no names)."""
        self._file = open_text(self.path, self.fmt)
        try:
            try:
                for _ in range(self.fmt.skip_rows):
                    self._file.readline()
                self._skipped = self.fmt.skip_rows
                self._reader = csv.reader(self._file, **self.fmt.csv_options())
                self.names = self._header() if self.fmt.header else self.fmt.columns
            except UnicodeDecodeError as err:
                raise self._decode_error(err) from None
            except csv.Error as err:
                raise self._csv_error(err, self._skipped + 1) from None
            except DAMAGED as err:
                raise compressed_error(self.path, err) from None
        except BaseException:
            self.close()
            raise
        return self.names

    def _header(self) -> list[str]:
        start = 1
        for row in self._reader:
            if row:
                break
            start = self._reader.line_num + 1
        else:
            raise self.error(
                None,
                "the file is empty: it has no header line",
                "an empty extract still needs its header; set format.header to false if the "
                "file has none",
            )
        self.header_line = self._skipped + start
        return self.check_names([cell.strip() for cell in row])

    def data_offset(self) -> int:
        """The byte offset (in the decompressed file) where the records start: after the
        skipped lines, a byte-order mark and the header. For a bulk path that sends the
        file's own bytes to the server."""
        assert self._reader is not None, "open() first"
        lines = self._skipped + self._reader.line_num
        offset = 0
        with open_binary(self.path, self.fmt) as raw:
            if self.fmt.decoding == "utf-8-sig" and raw.read(3) == codecs.BOM_UTF8:
                offset = 3
        with open_text(self.path, self.fmt) as text:
            for _ in range(lines):
                offset += len(text.readline().encode(self.fmt.encoding))
        return offset

    def locate(self, number: int, width: int, kinds: Sequence[ColumnType | None]) -> int | None:
        """Where the ``number``-th record after the header starts, counting blank lines as
        records as PostgreSQL's COPY and MariaDB's LOAD DATA do; the records before it are
        checked as ``records()`` checks them (raising their LoadError). None past the end."""
        assert self._reader is not None, "open() first"
        counting = _Counting(self._reader, number)
        self._reader = counting
        for _row in self.records(width, kinds, native=False):
            pass
        if counting.count < number:
            return None
        return self._skipped + counting.before + 1

    def records(
        self, width: int, kinds: Sequence[ColumnType | None], *, native: bool
    ) -> Iterator[list[Any]]:
        """The records as lists of values: NULL strings as None, the columns of ``kinds``
        converted (``native``: to what ``sqlite3`` stores, else to Python objects).
        Blank lines are skipped; a record of another width fails the load."""
        assert self._reader is not None, "open() first"
        reader = self._reader
        nulls = frozenset(self.fmt.null_strings)
        typed = [
            (i, conv)
            for i, kind in enumerate(kinds)
            if kind is not None and (conv := converter(kind, native=native)) is not None
        ]
        skipped = self._skipped
        prev = reader.line_num
        start = prev + 1
        row: list[Any] = []
        index = -1
        count = 0
        try:
            for record in reader:
                start = prev + 1
                prev = reader.line_num
                if len(record) != width:
                    if not record:
                        continue
                    raise self._width_error(skipped + start, len(record), width)
                self.line = skipped + start
                if nulls.isdisjoint(record):
                    row = record
                    for index, conv in typed:
                        row[index] = conv(row[index])
                else:
                    row = [None if v in nulls else v for v in record]
                    for index, conv in typed:
                        value = row[index]
                        if value is not None:
                            row[index] = conv(value)
                count += 1
                yield row
            self.rows = count
        except UnicodeDecodeError as err:
            raise self._decode_error(err) from None
        except csv.Error as err:
            raise self._csv_error(err, skipped + prev + 1) from None
        except DAMAGED as err:
            raise compressed_error(self.path, err) from None
        except ValueError as err:
            kind = kinds[index] if 0 <= index < len(kinds) else None
            raise self._value_error(skipped + start, row, index, kind, err) from None

    def _width_error(self, line: int, got: int, width: int) -> LoadError:
        names = ", ".join(self.names) if self.names else ""
        shown = f" ({names})" if names and len(names) < 200 else ""
        return self.error(
            line,
            f"{got} fields where {width} are expected{shown}",
            f"check format.delimiter (now {self.fmt.delimiter!r}) and the quoting of that "
            "line: a value holding the delimiter or a line break must be quoted",
        )

    def _value_error(
        self, line: int, row: list[Any], index: int, kind: ColumnType | None, err: ValueError
    ) -> LoadError:
        name = self.names[index] if self.names and 0 <= index < len(self.names) else index + 1
        value = row[index] if 0 <= index < len(row) else "?"
        expected = describe(kind) if kind is not None else "another value"
        detail = f" ({err})" if isinstance(err, Rejected) else ""
        return self.error(
            line,
            f"column {name}: {str(value)[:60]!r} is not {expected}{detail}",
            "fix the value, add it to format.null_strings if it means NULL, or declare the "
            "column with another type in format.column_types",
        )

    def _csv_error(self, err: csv.Error, line: int) -> LoadError:
        text = str(err)
        for key, (message, hint) in _CSV_REASONS.items():
            if key in text:
                return self.error(line, message, hint)
        return self.error(line, f"malformed CSV: {text}", "check format.delimiter and quotechar")

    def _decode_error(self, err: UnicodeDecodeError) -> LoadError:
        line, offset = _locate_decode_error(self.path, self.fmt)
        where = f" (byte offset {offset})" if offset is not None else ""
        return self.error(
            line,
            f"bytes that are not valid {self.fmt.encoding}{where}: {err.reason}",
            "set format.encoding to the file's encoding (files from Windows programs are "
            "often cp1252, older ones latin-1)",
        )


def _locate_decode_error(path: Path, fmt: CsvFormat) -> tuple[int | None, int | None]:
    """(line, byte offset) of the first byte that does not decode; both None if not found."""
    encoding = fmt.decoding
    decoder = codecs.getincrementaldecoder(encoding)()
    line, consumed = 1, 0
    try:
        with open_binary(path, fmt) as stream:
            while chunk := stream.read(1 << 16):
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    good = codecs.decode(err.object[: err.start], encoding, errors="replace")
                    pending = len(err.object) - len(chunk)  # bytes held from the last chunk
                    return line + good.count("\n"), consumed - pending + err.start
                line += text.count("\n")
                consumed += len(chunk)
    except (OSError, LoadError, *DAMAGED):
        pass
    return None, None
