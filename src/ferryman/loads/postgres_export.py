"""Exporting from PostgreSQL (``ferryman[postgres]``): a query's rows through a server-side
cursor, or its CSV as ``COPY (query) TO STDOUT`` writes it, in a READ ONLY transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg  # type: ignore[import-not-found, unused-ignore]

from ..errors import LoadError
from .common import not_a_select
from .csvformat import CsvFormat
from .postgres import connect, copy_encoding, first_line, literal, rollback_quietly
from .sql import DatabaseURL

__all__ = ["copy_out", "query_postgres"]


@contextmanager
def query_postgres(
    url: DatabaseURL, query: str, batch: int
) -> Iterator[tuple[list[str], Iterator[Sequence[Any]]]]:
    """Run ``query`` in a READ ONLY transaction through a server-side cursor; yields the
    column names and the rows, ``batch`` at a time."""
    conn = connect(url)
    doing = "run the export query"
    cur = conn.cursor(name="ferryman_export")
    try:
        try:
            conn.execute("SET TRANSACTION READ ONLY")
            cur.execute(query)
            description = cur.description
        except psycopg.Error as err:
            raise LoadError(
                f"cannot {doing}: {first_line(err)}",
                hint="correct the query (a SELECT: it runs in a read-only transaction)",
            ) from None
        if description is None:
            raise not_a_select(doing)
        names = [str(d.name) for d in description]

        def batches() -> Iterator[Sequence[Any]]:
            try:
                while chunk := cur.fetchmany(batch):
                    yield chunk
            except psycopg.Error as err:
                raise LoadError(f"cannot {doing}: {first_line(err)}") from None

        yield names, batches()
    finally:
        try:
            cur.close()
        except psycopg.Error:
            pass  # the transaction failed: the cursor went with it
        rollback_quietly(conn)
        conn.close()


def copy_out(
    url: DatabaseURL, query: str, fmt: CsvFormat
) -> Callable[[Callable[[bytes], object]], int] | None:
    """A function that writes the CSV of ``query`` (``COPY (query) TO STDOUT``, the server
    formats it) through its argument and returns the row count; None when ``fmt`` is not a
    layout COPY writes as ferryman would (then rows are fetched)."""
    encoding = copy_encoding(fmt, fmt.null_output) if fmt.line_terminator == "\n" else None
    if encoding is None:
        return None

    def run(write: Callable[[bytes], object]) -> int:
        conn = connect(url)
        try:
            delimiter, quotechar = literal(conn, fmt.delimiter), literal(conn, fmt.quotechar)
            options = (
                f"FORMAT csv, HEADER {'true' if fmt.header else 'false'},"
                f" DELIMITER {delimiter}, QUOTE {quotechar},"
                f" NULL {literal(conn, fmt.null_output)}, ENCODING {literal(conn, encoding)}"
            )
            try:
                conn.execute("SET TRANSACTION READ ONLY")
                with conn.cursor() as cur:
                    with cur.copy(f"COPY ({query}) TO STDOUT ({options})") as copy:
                        for data in copy:
                            write(bytes(data))
                    return int(cur.rowcount)
            except psycopg.Error as err:
                raise LoadError(
                    f"cannot run the export query: {first_line(err)}", hint="correct the query"
                ) from None
        finally:
            rollback_quietly(conn)
            conn.close()

    return run
