"""The format of a load or an export: one validated model, embedded in the job file.

``format`` picks the layout: csv and tsv (the defaults below), xlsx (a sheet of an Excel
workbook), fixed (fixed-width text, ``widths``), jsonl (JSON Lines) and parquet; the options
that do not apply to a layout are ignored by it (a CSV delimiter means nothing to Parquet).
``compression`` reads ``.gz`` and ``.zip`` inputs on the fly (``member`` picks one of a zip).

Every field has a description because the job file's schema, its docs and ``--help`` are all
generated from this model. Unknown keys are refused, so ``delimeter: ";"`` is an error with
its line in the job file, not a silently ignored setting.

The defaults read RFC 4180 CSV as spreadsheets and most exporters write it: comma-separated,
``"`` quotes doubled inside quoted fields, a header line, UTF-8 (a byte-order mark is skipped
when present), the empty string read as NULL.
"""

from __future__ import annotations

import codecs
import csv
import enum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["EXPORT_FORMATS", "TEXT_FORMATS", "ColumnType", "CsvFormat", "FileFormat"]

#: the layouts read as text lines (encoding, skip_rows, line numbers apply)
TEXT_FORMATS = frozenset({"csv", "tsv", "fixed", "jsonl"})
#: the layouts an export writes
EXPORT_FORMATS = frozenset({"csv", "tsv", "jsonl", "parquet"})


class ColumnType(enum.StrEnum):
    """The SQL type a column is declared with (``column_types``); values are converted to it
    and a value that does not convert fails the load with its line."""

    INTEGER = "integer"  #: whole numbers (64-bit in SQLite)
    REAL = "real"  #: floating point
    TEXT = "text"  #: the value as it is in the file
    NUMERIC = "numeric"  #: exact decimal (SQLite stores it with NUMERIC affinity)
    DATE = "date"  #: ISO 8601 date, stored as YYYY-MM-DD in SQLite
    TIMESTAMP = "timestamp"  #: ISO 8601 date and time, stored as YYYY-MM-DD HH:MM:SS[.ffffff]
    BOOLEAN = "boolean"  #: true/false, yes/no, 1/0, t/f, y/n, on/off; 1/0 in SQLite


def _one_char(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if len(value) != 1:
        raise ValueError(f"{what} must be one character, not {value!r}")
    if value in "\r\n":
        raise ValueError(f"{what} cannot be a line break")
    return value


class CsvFormat(BaseModel):
    """How a file is laid out (loads read it, exports write it): CSV/TSV by default, or
    xlsx, fixed-width, JSON Lines, Parquet; optionally gzip- or zip-compressed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["csv", "tsv", "xlsx", "fixed", "jsonl", "parquet"] = Field(
        "csv",
        description="The layout: csv (comma-separated), tsv (tab-separated; sets the "
        "delimiter), xlsx (a sheet of an Excel workbook), fixed (fixed-width columns, see "
        "widths), jsonl (one JSON object a line) or parquet. Exports write csv, tsv, jsonl "
        "or parquet.",
    )
    sheet: str | int = Field(
        0,
        description="xlsx: the sheet to read, by name or by index (0: the first).",
    )
    widths: list[int] | None = Field(
        None,
        description="fixed: the width in characters of each column, in order (names from "
        "the header line, cut at the same widths, or from columns). Values are stripped of "
        "surrounding blanks.",
    )
    compression: Literal["auto", "none", "gzip", "zip"] = Field(
        "auto",
        description="auto: by the file's suffix (.gz gzip, .zip zip, anything else none); "
        "or gzip, zip, none. Compressed files are read on the fly, never unpacked to disk.",
    )
    member: str | None = Field(
        None,
        description="zip: the member to read (default: the archive's only file).",
    )
    delimiter: str = Field(
        ",",
        description='The field separator, one character: "," for csv, a tab for tsv, '
        'or e.g. ";" or "|".',
    )
    quotechar: str | None = Field(
        '"',
        description="The character that quotes fields holding delimiters, quotes or line "
        "breaks; null: fields are never quoted.",
    )
    escapechar: str | None = Field(
        None,
        description="A character that escapes the next one (e.g. a backslash); null: none.",
    )
    doublequote: bool = Field(
        True,
        description="A quote inside a quoted field is written as two quotes (RFC 4180); "
        "false with an escapechar reads and writes it escaped instead.",
    )
    header: bool = Field(
        True, description="The first line holds the column names (written by exports)."
    )
    columns: list[str] | None = Field(
        None,
        description="Column names: the names when there is no header, or new names for the "
        "header's columns (same count, same order).",
    )
    encoding: str = Field(
        "utf-8",
        description="The file's text encoding (utf-8, latin-1, cp1252, utf-16 ...). With "
        "utf-8 a byte-order mark is skipped when present; exports write none "
        "(ask for utf-8-sig to write one).",
    )
    null_strings: list[str] = Field(
        [""],
        description="Values read as NULL; exports write NULL as the first of them "
        "(empty list: nothing is NULL, exports write NULL as an empty field).",
    )
    skip_rows: int = Field(
        0,
        ge=0,
        description="Lines at the top of the file to skip before the header or the first "
        "record (titles, comments).",
    )
    column_types: dict[str, ColumnType] = Field(
        {},
        description="Column name -> integer, real, text, numeric, date, timestamp or "
        "boolean: values are converted and checked, and a table ferryman creates declares "
        "these types. Columns not named are TEXT.",
    )
    line_terminator: Literal["\n", "\r\n"] = Field(
        "\n",
        description=r'What ends a line in exports: "\n" or "\r\n" (loads read both).',
    )

    @model_validator(mode="before")
    @classmethod
    def _tsv_delimiter(cls, data: Any) -> Any:
        """``format: tsv`` means a tab delimiter unless one is given."""
        if isinstance(data, dict) and data.get("format") == "tsv" and "delimiter" not in data:
            return {**data, "delimiter": "\t"}
        return data

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        checked = _one_char(value, "delimiter")
        assert checked is not None
        return checked

    @field_validator("quotechar")
    @classmethod
    def _quotechar(cls, value: str | None) -> str | None:
        return _one_char(value, "quotechar")

    @field_validator("escapechar")
    @classmethod
    def _escapechar(cls, value: str | None) -> str | None:
        return _one_char(value, "escapechar")

    @field_validator("widths")
    @classmethod
    def _widths(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(w < 1 for w in value)):
            raise ValueError("widths must list at least one width, each 1 or more")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, latin-1, cp1252)") from None
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("columns cannot be empty (leave it out to use the header)")
        seen: set[str] = set()
        for name in value:
            if not name.strip():
                raise ValueError("a column name cannot be empty")
            if name in seen:
                raise ValueError(f"column {name!r} is named twice")
            seen.add(name)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.format == "tsv" and self.delimiter != "\t":
            raise ValueError("format tsv means a tab delimiter; give format csv with it")
        if self.format == "fixed" and self.widths is None:
            raise ValueError("format fixed needs widths: the width of each column, in order")
        if self.format != "fixed" and self.widths is not None:
            raise ValueError(f"widths is for format fixed, not {self.format}")
        if self.widths and self.columns and len(self.widths) != len(self.columns):
            raise ValueError(
                f"widths gives {len(self.widths)} columns but columns names {len(self.columns)}"
            )
        if self.member is not None and self.compression not in ("auto", "zip"):
            raise ValueError("member names a file in a zip archive: set compression to zip")
        specials = [c for c in (self.delimiter, self.quotechar, self.escapechar) if c]
        if len(set(specials)) != len(specials):
            raise ValueError("delimiter, quotechar and escapechar must be different characters")
        return self

    def compression_of(self, name: str) -> str:
        """The compression of a file called ``name``: gzip, zip or none."""
        if self.compression != "auto":
            return self.compression
        lower = name.lower()
        if lower.endswith(".gz"):
            return "gzip"
        if lower.endswith(".zip") or self.member is not None:
            return "zip"
        return "none"

    @property
    def decoding(self) -> str:
        """The codec to read with: UTF-8 reads through ``utf-8-sig`` so a BOM is dropped."""
        return "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding

    @property
    def null_output(self) -> str:
        """What an export writes for NULL."""
        return self.null_strings[0] if self.null_strings else ""

    def csv_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`csv.reader` and :func:`csv.writer`."""
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quotechar,
            "escapechar": self.escapechar,
            "doublequote": self.doublequote,
            "quoting": csv.QUOTE_MINIMAL if self.quotechar else csv.QUOTE_NONE,
            "lineterminator": self.line_terminator,
            "strict": True,
        }


#: the same model under the name that says what it is now (CsvFormat stays for compatibility)
FileFormat = CsvFormat
