"""CsvFormat validation, value converters, identifier quoting, URLs and query checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from ferryman.errors import ConfigError
from ferryman.loads import ColumnType, CsvFormat
from ferryman.loads.sql import parse_database, parse_table, quote, single_statement
from ferryman.loads.values import converter


def test_defaults() -> None:
    fmt = CsvFormat()
    assert (fmt.delimiter, fmt.quotechar, fmt.header, fmt.encoding) == (",", '"', True, "utf-8")
    assert fmt.null_strings == [""] and fmt.column_types == {} and fmt.skip_rows == 0
    assert fmt.decoding == "utf-8-sig"  # a BOM is dropped when present
    assert CsvFormat(encoding="UTF8").decoding == "utf-8-sig"
    assert CsvFormat(encoding="latin-1").decoding == "latin-1"


def test_tsv_shorthand() -> None:
    assert CsvFormat(format="tsv").delimiter == "\t"
    assert CsvFormat.model_validate({"format": "tsv"}).delimiter == "\t"
    with pytest.raises(ValidationError, match="tab delimiter"):
        CsvFormat(format="tsv", delimiter=";")


@pytest.mark.parametrize(
    "fields",
    [
        {"delimiter": ";;"},
        {"delimiter": "\n"},
        {"quotechar": ""},
        {"delimiter": '"'},
        {"escapechar": ",", "delimiter": ","},
        {"encoding": "no-such-codec"},
        {"skip_rows": -1},
        {"columns": []},
        {"columns": ["a", "a"]},
        {"columns": ["a", " "]},
        {"column_types": {"a": "varchar"}},
        {"delimeter": ";"},
    ],
)
def test_invalid_formats_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CsvFormat.model_validate(fields)


def test_every_field_is_described_and_the_model_is_frozen() -> None:
    schema = CsvFormat.model_json_schema()
    assert all(prop.get("description") for prop in schema["properties"].values())
    assert schema["additionalProperties"] is False
    with pytest.raises(ValidationError):
        CsvFormat().delimiter = ";"  # type: ignore[misc]


def test_column_types_from_strings() -> None:
    fmt = CsvFormat.model_validate({"column_types": {"a": "integer", "b": "timestamp"}})
    assert fmt.column_types == {"a": ColumnType.INTEGER, "b": ColumnType.TIMESTAMP}


@pytest.mark.parametrize(
    ("kind", "text", "native", "python"),
    [
        (ColumnType.INTEGER, " -12 ", -12, -12),
        (ColumnType.REAL, "2.5e1", 25.0, 25.0),
        (ColumnType.NUMERIC, " 12.50 ", "12.50", Decimal("12.50")),
        (ColumnType.DATE, "2024-02-29", "2024-02-29", date(2024, 2, 29)),
        (ColumnType.DATE, " 20240229", "2024-02-29", date(2024, 2, 29)),
        (
            ColumnType.TIMESTAMP,
            "2024-02-29T01:02:03Z",
            "2024-02-29 01:02:03+00:00",
            datetime(2024, 2, 29, 1, 2, 3, tzinfo=UTC),
        ),
        (
            ColumnType.TIMESTAMP,
            "2024-02-29 01:02:03.5+02:00",
            "2024-02-29 01:02:03.500000+02:00",
            datetime(2024, 2, 29, 1, 2, 3, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
        (ColumnType.TIMESTAMP, "2024-02-29 01:02:03", "2024-02-29 01:02:03", None),
        (ColumnType.BOOLEAN, "TRUE", 1, True),
        (ColumnType.BOOLEAN, " off ", 0, False),
        (ColumnType.BOOLEAN, "0", 0, False),
    ],
)
def test_converters(kind: ColumnType, text: str, native: object, python: object) -> None:
    to_native, to_python = converter(kind, native=True), converter(kind, native=False)
    assert to_native is not None and to_python is not None
    assert to_native(text) == native
    if python is not None:
        assert to_python(text) == python


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (ColumnType.INTEGER, "1.0"),
        (ColumnType.INTEGER, "1_0"),
        (ColumnType.REAL, "inf"),
        (ColumnType.REAL, "1_0.5"),
        (ColumnType.NUMERIC, "NaN"),
        (ColumnType.NUMERIC, "1_0"),
        (ColumnType.NUMERIC, "x"),
        (ColumnType.DATE, "2024-13-01"),
        (ColumnType.DATE, "01/02/2024"),
        (ColumnType.TIMESTAMP, "2024-01-01 25:00"),
        (ColumnType.BOOLEAN, "2"),
    ],
)
def test_converters_refuse(kind: ColumnType, text: str) -> None:
    for native in (True, False):
        convert = converter(kind, native=native)
        assert convert is not None
        with pytest.raises(ValueError):
            convert(text)


def test_text_is_not_converted() -> None:
    assert converter(ColumnType.TEXT, native=True) is None


def test_quote_and_table_names() -> None:
    assert quote('x"; drop table y; --') == '"x""; drop table y; --"'
    assert parse_table("orders").sql == '"orders"'
    staged = parse_table("staging.my orders")
    assert (staged.schema, staged.name, staged.sql) == (
        "staging",
        "my orders",
        '"staging"."my orders"',
    )
    assert str(staged) == "staging.my orders"
    for bad in ("", " ", "a\x00b", ".t", "s."):
        with pytest.raises(ConfigError):
            parse_table(bad)


def test_database_urls() -> None:
    assert parse_database("sqlite:///w.db").sqlite_path == Path("w.db")
    assert parse_database("sqlite:////srv/w.db").sqlite_path == Path("/srv/w.db")
    assert parse_database("SQLite:///w.db").sqlite_path == Path("w.db")
    other = parse_database("postgresql://etl:s3cret@db.example/dw")
    assert other.sqlite_path is None
    assert other.describe() == "postgresql://etl:****@db.example/dw"
    assert parse_database("sqlite+pysqlite:///w.db").sqlite_path is None
    for bad in ("sqlite:///:memory:", "sqlite://", "w.db", "sqlite:///file:x?mode=memory"):
        with pytest.raises(ConfigError):
            parse_database(bad)
    with pytest.raises(ConfigError) as info:
        parse_database("postgresql:/etl:s3:cret@db")
    assert "s3" not in str(info.value) and "cret" not in str(info.value)
    assert parse_database("mysql://u:p:w@h/d").describe() == "mysql://u:****@h/d"


def test_single_statement() -> None:
    assert single_statement(" SELECT 1 ; ") == "SELECT 1 "
    assert single_statement("SELECT ';' -- ; \n") == "SELECT ';' -- ;"
    assert single_statement('SELECT "a;" /* ; */ FROM t;;') == 'SELECT "a;" /* ; */ FROM t'
    assert single_statement("SELECT 'it''s; fine'") == "SELECT 'it''s; fine'"
    for bad in ("SELECT 1; SELECT 2", "SELECT 1;DELETE FROM t", "select ';'; drop table t"):
        with pytest.raises(ConfigError, match="more than one statement"):
            single_statement(bad)
    for empty in ("", ";", "  ;  "):
        with pytest.raises(ConfigError, match="empty"):
            single_statement(empty)


def test_docs_describe_every_format_field() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "loads.md").read_text("utf-8")
    for name in CsvFormat.model_fields:
        assert f"| `{name}` |" in docs, name
    for kind in ColumnType:
        assert f"| `{kind.value}` |" in docs, kind
