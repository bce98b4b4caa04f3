"""Exporting from MySQL and MariaDB (``ferryman[mysql]``): a query's rows streamed through
an unbuffered cursor, in a READ ONLY transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pymysql  # type: ignore[import-not-found, import-untyped, unused-ignore]
import pymysql.cursors  # type: ignore[import-not-found, import-untyped, unused-ignore]

from ..errors import LoadError
from .common import not_a_select
from .mysql import close_quietly, connect, reason, rollback_quietly
from .sql import DatabaseURL

__all__ = ["query_mysql"]


@contextmanager
def query_mysql(
    url: DatabaseURL, query: str, batch: int
) -> Iterator[tuple[list[str], Iterator[Sequence[Any]]]]:
    """Run ``query`` in a READ ONLY transaction through an unbuffered cursor (rows stream
    from the server); yields the column names and the rows, ``batch`` at a time."""
    conn = connect(url)
    doing = "run the export query"
    try:
        cur = conn.cursor(pymysql.cursors.SSCursor)
        try:
            cur.execute("START TRANSACTION READ ONLY")
            cur.execute(query)
        except pymysql.err.MySQLError as err:
            raise LoadError(f"cannot {doing}: {reason(err)}", hint="correct the query") from None
        if cur.description is None:
            raise not_a_select(doing)
        names = [str(d[0]) for d in cur.description]

        def batches() -> Iterator[Sequence[Any]]:
            try:
                while chunk := cur.fetchmany(batch):
                    yield chunk
            except pymysql.err.MySQLError as err:
                raise LoadError(f"cannot {doing}: {reason(err)}") from None

        yield names, batches()
    finally:
        rollback_quietly(conn)
        close_quietly(conn)
