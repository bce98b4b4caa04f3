"""Converting a CSV value to its declared column type, strictly.

Two flavours of every converter: ``native`` ones give what the stdlib ``sqlite3`` stores
without adapters (ints, floats, ISO text for dates, 1/0 for booleans -- its default date
adapters are deprecated since Python 3.12), the others give Python objects (``date``,
``Decimal``, ``bool`` ...) that SQLAlchemy binds for any database.

Converters raise :class:`ValueError` with a short reason; the reader turns that into
``FILE:LINE: column C: ...``. They are deliberately stricter than Python's constructors:
``int("1_000")`` and ``float("nan")`` are accepted by Python, but such a value in a data file
is far more likely a mistake than a number.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from .csvformat import ColumnType

__all__ = [
    "BOOLEANS",
    "Converter",
    "Rejected",
    "as_text",
    "converter",
    "describe",
    "object_converter",
]

Converter = Callable[[str], object]


class Rejected(ValueError):
    """A value Python would convert but a data file should not hold (``1_000``, ``nan``);
    its text is shown in the error message."""


#: spellings of booleans, compared case-insensitively after stripping blanks
BOOLEANS: dict[str, bool] = {
    "true": True,
    "t": True,
    "yes": True,
    "y": True,
    "on": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "n": False,
    "off": False,
    "0": False,
}

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

#: what each type expects, for error messages
_EXPECTED = {
    ColumnType.INTEGER: "an integer",
    ColumnType.REAL: "a number",
    ColumnType.NUMERIC: "a decimal number",
    ColumnType.DATE: "a date (YYYY-MM-DD)",
    ColumnType.TIMESTAMP: "a timestamp (YYYY-MM-DD HH:MM[:SS[.ffffff]][+HH:MM])",
    ColumnType.BOOLEAN: "a boolean (true/false, yes/no, 1/0, t/f, y/n, on/off)",
    ColumnType.TEXT: "text",
}


def describe(kind: ColumnType) -> str:
    """What a value of ``kind`` looks like (``"a date (YYYY-MM-DD)"``)."""
    return _EXPECTED[kind]


def _integer(value: str) -> int:
    if "_" in value:
        raise Rejected("underscores are not allowed")
    return int(value)


def _integer64(value: str) -> int:
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise Rejected("out of the 64-bit range")
    if "_" in value:
        raise Rejected("underscores are not allowed")
    return number


def _real(value: str) -> float:
    number = float(value)
    if number - number:  # x - x is 0.0 for a finite x, NaN (true) for inf and NaN
        raise Rejected("not a finite number")
    if "_" in value:
        raise Rejected("underscores are not allowed")
    return number


def _decimal(value: str) -> Decimal:
    if "_" in value:
        raise Rejected("underscores are not allowed")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not number.is_finite():
        raise Rejected("not a finite number")
    return number


def _numeric_text(value: str) -> str:
    """SQLite: checked, then given as text to its NUMERIC affinity (which keeps integers
    exact and stores other values as REAL)."""
    _decimal(value)
    return value.strip()


def _date(value: str) -> date:
    return date.fromisoformat(value.strip())


def _date_text(value: str) -> str:
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return date.fromisoformat(value.strip()).isoformat()
    if len(value) == 10 and value[7] == "-":
        return value  # already YYYY-MM-DD, the common case: no second formatting
    return parsed.isoformat()


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.strip())


def _timestamp_text(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = datetime.fromisoformat(value.strip())
    else:
        if len(value) == 19 and value[10] == " " and value[13] == ":":
            return value  # already YYYY-MM-DD HH:MM:SS, the common case
    return parsed.isoformat(sep=" ")


def _boolean(value: str) -> bool:
    found = BOOLEANS.get(value)
    if found is None:
        found = BOOLEANS.get(value.strip().lower())
        if found is None:
            raise ValueError("not a boolean")
    return found


_BOOLEAN_INTS = {text: int(flag) for text, flag in BOOLEANS.items()}


def _boolean_int(value: str) -> int:
    found = _BOOLEAN_INTS.get(value)
    if found is None:
        return 1 if _boolean(value) else 0
    return found


_NATIVE: dict[ColumnType, Converter | None] = {
    ColumnType.INTEGER: _integer64,
    ColumnType.REAL: _real,
    ColumnType.NUMERIC: _numeric_text,
    ColumnType.DATE: _date_text,
    ColumnType.TIMESTAMP: _timestamp_text,
    ColumnType.BOOLEAN: _boolean_int,
    ColumnType.TEXT: None,
}

_PYTHON: dict[ColumnType, Converter | None] = {
    ColumnType.INTEGER: _integer,
    ColumnType.REAL: _real,
    ColumnType.NUMERIC: _decimal,
    ColumnType.DATE: _date,
    ColumnType.TIMESTAMP: _timestamp,
    ColumnType.BOOLEAN: _boolean,
    ColumnType.TEXT: None,
}


def converter(kind: ColumnType, *, native: bool) -> Converter | None:
    """The converter of ``kind`` (None for text: the value is kept as it is)."""
    return (_NATIVE if native else _PYTHON)[kind]


# -- values that are not text: cells of a sheet, JSON values, Parquet columns ---------------


def as_text(value: object) -> str:
    """A typed value as an untyped (TEXT) column keeps it: the way a CSV file would spell it
    (booleans true/false, dates ISO 8601, whole floats without '.0' only when integral ints)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _object_python(kind: ColumnType, value: object) -> object:
    if kind is ColumnType.INTEGER:
        if isinstance(value, bool):
            raise ValueError("a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float | Decimal) and value == int(value):
            return int(value)
    elif kind is ColumnType.REAL:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return _real(str(value))
    elif kind is ColumnType.NUMERIC:
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return _decimal(str(value))
    elif kind is ColumnType.DATE:
        if isinstance(value, datetime):
            if value.time() != datetime.min.time():
                raise Rejected("it has a time of day")
            return value.date()
        if isinstance(value, date):
            return value
    elif kind is ColumnType.TIMESTAMP:
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
    elif kind is ColumnType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    raise ValueError(f"a {type(value).__name__}")


def object_converter(kind: ColumnType | None, *, native: bool) -> Callable[[object], object]:
    """The converter of ``kind`` for values of any type (text goes through
    :func:`converter`); ``native``: to what ``sqlite3`` stores. Untyped columns get text."""
    if kind is None or kind is ColumnType.TEXT:
        return lambda value: value if isinstance(value, str) else as_text(value)
    text = converter(kind, native=native)
    assert text is not None

    def convert(value: object) -> object:
        if isinstance(value, str):
            return text(value)
        result = _object_python(kind, value)
        if not native:
            return result
        if isinstance(result, bool):
            return int(result)
        if isinstance(result, datetime):
            return result.isoformat(sep=" ")
        if isinstance(result, date | Decimal):
            return str(result)
        return result

    return convert
