"""Loading CSV/TSV files into database tables and exporting queries to CSV (issue 5).

The library API behind the job steps ``load`` and ``export``::

    load_csv("sqlite:///warehouse.db", "orders", Path("orders.csv"), CsvFormat())
    export_query("sqlite:///warehouse.db", "SELECT * FROM orders", Path("out.csv"), CsvFormat())

Each file loads in one transaction: all of its rows or none, every error at ``FILE:LINE``.
SQLite goes through the stdlib (fast, always there); other databases through SQLAlchemy when
it is installed (``ferryman[db]``). See docs/loads.md.
"""

from __future__ import annotations

from .csvformat import ColumnType, CsvFormat
from .export import export_query
from .load import load_csv
from .results import ExportResult, LoadMode, LoadResult

__all__ = [
    "ColumnType",
    "CsvFormat",
    "ExportResult",
    "LoadMode",
    "LoadResult",
    "export_query",
    "load_csv",
]
