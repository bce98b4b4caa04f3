"""Safe SQL text: quoted identifiers, table names, database URLs, one-statement queries.

Identifiers (tables, columns) come from job files and from the headers of files a partner
sent, so they are data: they are always double-quoted (an embedded ``"`` doubled, as the SQL
standard says), never formatted into SQL as they are, and values always travel as parameters.
A header cell ``x"; drop table y; --`` is thus a column with a strange name, nothing more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "DatabaseURL",
    "TableName",
    "check_identifier",
    "fold",
    "parse_database",
    "parse_table",
    "quote",
    "single_statement",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.S)
_PASSWORD = re.compile(r":[^@/]*@")  # the password of user:password@, with or without ://
MAX_IDENTIFIER = 255


def check_identifier(name: str, what: str) -> str:
    """``name`` when it can be a table or column name; ConfigError naming ``what`` if not."""
    if not name.strip():
        raise ConfigError(f"{what} is empty", hint="give it a name")
    if _CONTROL.search(name):
        raise ConfigError(
            f"{what} {name!r} contains a control character (line break, tab, NUL ...)",
            hint="rename it (format.columns renames the columns of a file)",
        )
    if len(name) > MAX_IDENTIFIER:
        raise ConfigError(f"{what} is longer than {MAX_IDENTIFIER} characters: {name[:40]}...")
    return name


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier: ``a"b`` -> ``"a""b"``."""
    return '"' + name.replace('"', '""') + '"'


def fold(name: str) -> str:
    """The name as SQLite compares identifiers: ASCII letters case-insensitively."""
    return name.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class TableName:
    """A table, optionally in a schema (``staging.orders``; in SQLite the schema is an
    attached database, e.g. ``main``)."""

    name: str
    schema: str | None = None

    @property
    def sql(self) -> str:
        """The quoted, qualified name for SQL text."""
        if self.schema is None:
            return quote(self.name)
        return f"{quote(self.schema)}.{quote(self.name)}"

    def __str__(self) -> str:
        return self.name if self.schema is None else f"{self.schema}.{self.name}"


def parse_table(table: str) -> TableName:
    """``orders`` or ``schema.orders``: the first dot separates the schema, so a table name
    may hold further dots but a schema name none."""
    schema, dot, name = table.partition(".")
    if not dot:
        return TableName(check_identifier(table, "the table name"))
    return TableName(check_identifier(name, "the table name"), check_identifier(schema, "schema"))


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """Where to load into or export from: a SQLite file through the stdlib, or any URL
    SQLAlchemy knows (``sqlite_path`` None)."""

    url: str
    sqlite_path: Path | None

    def describe(self) -> str:
        """The URL for messages, its password masked."""
        return _PASSWORD.sub(":****@", self.url, count=1)

    @property
    def kind(self) -> str:
        """Which loader takes it: sqlite (stdlib), postgresql (psycopg and COPY), mysql
        (PyMySQL and LOAD DATA; MariaDB too) or sqlalchemy (anything else)."""
        if self.sqlite_path is not None:
            return "sqlite"
        scheme = self.url.partition("://")[0].lower()
        dialect, _, driver = scheme.partition("+")
        if dialect in ("postgresql", "postgres") and driver in ("", "psycopg", "psycopg2"):
            return "postgresql"
        if dialect in ("mysql", "mariadb") and driver in ("", "pymysql"):
            return "mysql"
        return "sqlalchemy"


def parse_database(url: str) -> DatabaseURL:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` (stdlib ``sqlite3``) or another
    SQLAlchemy URL (``postgresql://user@host/db``, ``sqlite+pysqlite:///x.db``)."""
    match = _SCHEME.match(url.strip())
    if match is None:
        raise ConfigError(
            f"database {DatabaseURL(url, None).describe()!r} is not a URL",
            hint="give e.g. sqlite:///warehouse.db (relative), sqlite:////srv/warehouse.db "
            "(absolute) or postgresql://user@host/dbname",
        )
    scheme, rest = match["scheme"].lower(), match["rest"]
    if scheme != "sqlite":
        return DatabaseURL(url.strip(), None)
    if not rest.startswith("/") or rest == "/":
        raise ConfigError(
            f"database {url!r} names no file",
            hint="give sqlite:///relative/path.db or sqlite:////absolute/path.db",
        )
    path = rest[1:]
    if "?" in path:
        raise ConfigError(
            f"database {url!r} has query parameters, which the SQLite loader does not take",
            hint="remove them (ferryman sets the pragmas it needs), or use "
            "sqlite+pysqlite:/// to go through SQLAlchemy",
        )
    if path in (":memory:", "") or path.startswith("file:"):
        raise ConfigError(
            f"database {url!r} is not a file: a load into an in-memory database is lost "
            "when ferryman exits",
            hint="give a file, e.g. sqlite:///warehouse.db",
        )
    return DatabaseURL(url.strip(), Path(path))


def single_statement(query: str) -> str:
    """``query`` without trailing semicolons; ConfigError if it holds several statements.

    The scan knows quoted strings and identifiers and both kinds of comments, so a ``;``
    inside them does not count. (PostgreSQL dollar-quoted bodies are not understood: they do
    not belong in an export query.)
    """
    text = query.strip()
    i, end, length = 0, None, len(text)
    while i < length:
        char = text[i]
        if char in "'\"`":
            close = text.find(char, i + 1)
            while close != -1 and close + 1 < length and text[close + 1] == char:
                close = text.find(char, close + 2)  # a doubled quote inside the string
            i = length if close == -1 else close + 1
            continue
        if text.startswith("--", i):
            newline = text.find("\n", i)
            i = length if newline == -1 else newline + 1
            continue
        if text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = length if close == -1 else close + 2
            continue
        if char == ";":
            end = i if end is None else end
        elif end is not None and not char.isspace():
            raise ConfigError(
                "the export query holds more than one statement",
                hint="give one SELECT (or WITH ... SELECT); run other statements in a step "
                "of their own",
            )
        i += 1
    body = text if end is None else text[:end]
    if not body.strip():
        raise ConfigError("the export query is empty", hint="give a SELECT")
    return body
