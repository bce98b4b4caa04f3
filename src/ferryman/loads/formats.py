"""The formats ETL partners send besides CSV: Excel sheets, fixed-width text, JSON Lines and
Parquet, each read as a stream of records like :class:`~ferryman.loads.reader.CsvSource`.

Every source gives the same thing to the loaders: the column names (a header row, the keys of
the first JSON object, a Parquet schema, or ``format.columns``) and lists of values. Values
are converted by the same ``column_types`` rules for every format (text as in CSV; numbers,
dates and booleans a sheet or a Parquet file already types are checked against the declared
type), and any error names ``FILE:LINE`` (for a sheet its row number, for Parquet the record
number) and the column. Untyped columns keep text: a number from a sheet becomes its text.

Nothing is read whole: sheets through openpyxl's read-only mode (rows parsed as they are
reached), Parquet a row group batch at a time (pyarrow), text a line at a time. openpyxl and
pyarrow are optional extras, imported when a file of theirs is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, LoadError
from .csvformat import ColumnType, CsvFormat
from .opener import DAMAGED, compressed_error, open_binary, open_text
from .reader import CsvSource, SourceBase
from .values import Rejected, describe, object_converter

__all__ = ["FixedSource", "JsonlSource", "ParquetSource", "XlsxSource", "open_source"]

Row = tuple[int, Sequence[Any]]


def _optional(module: str, extra: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ModuleNotFoundError as err:
        if err.name is None or not module.startswith(err.name):
            raise
        raise ConfigError(
            f"this format needs {module.split('.', maxsplit=1)[0]}, which is not installed",
            hint=f"pip install 'ferryman[{extra}]'",
        ) from None


class _RowSource(SourceBase):
    """A source whose subclass yields ``(line, values)``; conversion and checks are here."""

    def __init__(self, path: Path, fmt: CsvFormat) -> None:
        super().__init__(path, fmt)
        self._rows: Iterator[Row] | None = None
        self._closers: list[Callable[[], object]] = []

    def open(self) -> list[str] | None:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self.names

    def _start(self) -> None:
        """Open the file; set ``names`` (and ``header_line``) and ``_rows``."""
        raise NotImplementedError

    def _first_as_header(self, empty: str, hint: str | None = None) -> list[str]:
        """The first row's values as the column names; LoadError saying ``empty`` if none."""
        assert self._rows is not None
        for number, values in self._rows:
            self.header_line = number
            return self.check_names(["" if v is None else str(v).strip() for v in values])
        raise self.error(None, empty, hint)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def records(
        self, width: int, kinds: Sequence[ColumnType | None], *, native: bool
    ) -> Iterator[list[Any]]:
        assert self._rows is not None, "open() first"
        nulls = frozenset(self.fmt.null_strings)
        converters = [object_converter(kind, native=native) for kind in kinds]
        count = 0
        try:
            for line, values in self._rows:
                if len(values) != width:
                    raise self.error(
                        line,
                        f"{len(values)} fields where {width} are expected",
                        "every record needs a value (or null) for each column",
                    )
                self.line = line
                row: list[Any] = []
                for index, (value, convert) in enumerate(zip(values, converters, strict=True)):
                    if value is None or (isinstance(value, str) and value in nulls):
                        row.append(None)
                        continue
                    try:
                        row.append(convert(value))
                    except ValueError as err:
                        raise self._value_error(line, value, index, kinds[index], err) from None
                count += 1
                yield row
        except DAMAGED as err:
            raise compressed_error(self.path, err) from None
        except UnicodeDecodeError as err:
            raise self.error(
                self.line + 1 if self.line else None,
                f"bytes that are not valid {self.fmt.encoding}: {err.reason}",
                "set format.encoding to the file's encoding",
            ) from None
        self.rows = count

    def _value_error(
        self, line: int, value: Any, index: int, kind: ColumnType | None, err: ValueError
    ) -> LoadError:
        name = self.names[index] if self.names and index < len(self.names) else index + 1
        expected = describe(kind) if kind is not None else "text"
        detail = f" ({err})" if isinstance(err, Rejected) or not isinstance(value, str) else ""
        return self.error(
            line,
            f"column {name}: {str(value)[:60]!r} is not {expected}{detail}",
            "fix the value, or declare the column with another type in format.column_types",
        )


class XlsxSource(_RowSource):
    """A sheet of an ``.xlsx`` workbook (openpyxl, read-only: rows parsed as reached)."""

    def _start(self) -> None:
        openpyxl = _optional("openpyxl", "xlsx")
        stream = open_binary(self.path, self.fmt)
        self._closers.append(stream.close)
        try:
            book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        except (*DAMAGED, KeyError, ValueError, OSError) as err:
            raise self.error(
                None,
                f"is not an Excel .xlsx workbook ({type(err).__name__}: {err})",
                "check format.format (xls, the older binary format, is not read: save it as xlsx)",
            ) from None
        self._closers.append(book.close)
        self._rows = self._numbered(self._sheet(book).iter_rows(values_only=True))
        if self.fmt.header:
            self.names = self._first_as_header(
                f"sheet {self.fmt.sheet!r} is empty: it has no header row",
                "check format.sheet; set format.header to false if the sheet has none",
            )
        else:
            self.names = self.fmt.columns

    def _sheet(self, book: Any) -> Any:
        wanted = self.fmt.sheet
        names = list(book.sheetnames)
        if isinstance(wanted, int):
            if not 0 <= wanted < len(names):
                raise self.error(
                    None,
                    f"the workbook has no sheet {wanted} (it has {len(names)}: "
                    f"{', '.join(names)}; 0 is the first)",
                    "correct format.sheet",
                )
            return book[names[wanted]]
        if wanted not in names:
            raise self.error(
                None,
                f"the workbook has no sheet {wanted!r} (its sheets: {', '.join(names)})",
                "correct format.sheet (a name, or an index: 0 is the first)",
            )
        return book[wanted]

    def _numbered(self, rows: Iterator[tuple[Any, ...]]) -> Iterator[Row]:
        skip = self.fmt.skip_rows
        for number, cells in enumerate(rows, 1):
            if number <= skip:
                continue
            values = list(cells)
            while values and values[-1] is None:
                values.pop()
            if not values:
                continue  # an empty row, like a blank line
            width = len(self.names) if self.names else 0
            if width and len(values) < width:
                values += [None] * (width - len(values))
            yield number, values


class _TextSource(_RowSource):
    """A text file, read a line at a time."""

    def _start(self) -> None:
        stream = open_text(self.path, self.fmt)
        self._closers.append(stream.close)
        try:
            self._begin(stream)
        except UnicodeDecodeError as err:
            raise self.error(
                None, f"bytes that are not valid {self.fmt.encoding}: {err.reason}"
            ) from None

    def _begin(self, stream: IO[str]) -> None:
        """Read the header, if any; set ``names`` and ``_rows``."""
        raise NotImplementedError


class FixedSource(_TextSource):
    """Fixed-width text: each line cut at ``format.widths``, values stripped."""

    def _begin(self, stream: IO[str]) -> None:
        self._rows = self._lines(stream)
        if self.fmt.header:
            self.names = self._first_as_header("the file is empty: it has no header line")
        else:
            self.names = self.fmt.columns

    def _lines(self, stream: IO[str]) -> Iterator[Row]:
        widths = self.fmt.widths or []
        total = sum(widths)
        for number, text in enumerate(stream, 1):
            if number <= self.fmt.skip_rows:
                continue
            line = text.rstrip("\r\n")
            if not line.strip():
                continue
            if line[total:].strip():
                raise self.error(
                    number,
                    f"the line is {len(line)} characters long, and the widths cover {total}: "
                    f"{line[total : total + 30]!r} is left over",
                    "add a width for the rest of the line to format.widths (or check them)",
                )
            values: list[str] = []
            start = 0
            for width in widths:
                values.append(line[start : start + width].strip())
                start += width
            yield number, values


class JsonlSource(_TextSource):
    """JSON Lines: one object a line; columns from ``format.columns`` or the first object's
    keys. A missing key is NULL; a key that is not a column fails the load."""

    def _begin(self, stream: IO[str]) -> None:
        objects = self._objects(stream)
        first = next(objects, None)
        if self.fmt.columns is not None:
            self.names = self.check_names(list(self.fmt.columns))
        elif first is not None:
            self.header_line = first[0]
            self.names = self.check_names(list(first[1]))
        else:
            raise self.error(
                None,
                "the file is empty, so its columns have no names",
                "name them in format.columns to load an empty file",
            )
        self._rows = self._values(first, objects)

    def _objects(self, stream: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, text in enumerate(stream, 1):
            if number <= self.fmt.skip_rows or not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise self.error(
                    number, f"not valid JSON: {err.msg} (column {err.colno})", "fix the line"
                ) from None
            if not isinstance(value, dict):
                raise self.error(
                    number,
                    f"a JSON {type(value).__name__}, where JSON Lines needs one object a line",
                    'write each record as {"column": value, ...}',
                )
            yield number, value

    def _values(
        self, first: tuple[int, dict[str, Any]] | None, objects: Iterator[tuple[int, Any]]
    ) -> Iterator[Row]:
        names = self.names or []
        known = set(names)
        if first is not None:
            yield first[0], self._row(first[0], first[1], names, known)
        for number, obj in objects:
            yield number, self._row(number, obj, names, known)

    def _row(
        self, number: int, obj: dict[str, Any], names: list[str], known: set[str]
    ) -> list[Any]:
        if not known.issuperset(obj):
            extra = ", ".join(repr(k) for k in obj if k not in known)
            raise self.error(
                number,
                f"key {extra} is not a column (the columns: {', '.join(names)})",
                "name every column in format.columns, or remove the key",
            )
        row = [obj.get(name) for name in names]
        return [json.dumps(v) if isinstance(v, dict | list) else v for v in row]


class ParquetSource(_RowSource):
    """A Parquet file (pyarrow), read a batch of rows at a time; ``line`` is the record
    number (1: the first)."""

    BATCH = 8192

    def _start(self) -> None:
        parquet = _optional("pyarrow.parquet", "parquet")
        stream = open_binary(self.path, self.fmt)
        self._closers.append(stream.close)
        try:
            reader = parquet.ParquetFile(stream)
        except Exception as err:  # pyarrow raises ArrowInvalid (and others) on a bad file
            raise self.error(
                None, f"is not a Parquet file ({err})", "check format.format"
            ) from None
        self._closers.append(reader.close)
        self.names = self.check_names(list(reader.schema_arrow.names))
        self._rows = self._batches(reader)

    def _batches(self, reader: Any) -> Iterator[Row]:
        number = 0
        for batch in reader.iter_batches(batch_size=self.BATCH):
            columns = [column.to_pylist() for column in batch.columns]
            for values in zip(*columns, strict=True):
                number += 1
                yield number, values


_SOURCES: dict[str, type[SourceBase]] = {
    "csv": CsvSource,
    "tsv": CsvSource,
    "xlsx": XlsxSource,
    "fixed": FixedSource,
    "jsonl": JsonlSource,
    "parquet": ParquetSource,
}


def open_source(path: Path, fmt: CsvFormat) -> SourceBase:
    """The source that reads ``path`` as ``fmt.format`` says (not opened yet: use ``with``)."""
    return _SOURCES[fmt.format](path, fmt)
