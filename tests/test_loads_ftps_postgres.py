"""A job receives order files over explicit FTPS (the embedded pyftpdlib server) and loads
them into a real PostgreSQL server: only new files, one transaction per file, and a bad
file neither half-loaded nor recorded in the ledger, so the next run takes it again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from .conftest import ServerFactory
from .test_jobs_support import JobEnv, make_env, partner_server

JOB = """\
  dw: {url: '$URL'}
steps:
  - name: fetch
    receive:
      from: "partner:/out/orders_*.csv"
      to: inbox/
      only_new: true
  - name: load
    load:
      files: "{{ steps.fetch.files }}"
      into: dw:orders
      format: {column_types: {order_id: integer, amount: numeric}}
"""


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ftp_server: ServerFactory
) -> Iterator[JobEnv]:
    yield from make_env(tmp_path, monkeypatch, partner_server(ftp_server))


def orders(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url, connect_timeout=10) as conn:
        found = conn.execute("SELECT order_id, amount::text FROM orders ORDER BY order_id")
        return [(int(a), str(b)) for a, b in found.fetchall()]


def test_files_received_over_ftps_load_into_postgres(env: JobEnv, postgres_db: str) -> None:
    path = env.dir / "job.yaml"
    path.write_text(env.header("job") + JOB.replace("$URL", postgres_db), encoding="utf-8")
    first = env.run(path)
    assert first.exit_code == 0, first.to_dict()
    assert orders(postgres_db) == [(1, "10.5"), (2, "20"), (3, "30")]
    assert [t.path for t in env.taken()] == ["/out/orders_1.csv", "/out/orders_2.csv"]

    bad = env.remote("out/orders_3.csv")
    bad.write_text("order_id,amount\n4,40\n5,fifty\n", encoding="utf-8")
    failed = env.run(path)
    assert failed.exit_code != 0
    message = str(failed.to_dict())
    assert "orders_3.csv:3: column amount: 'fifty' is not a decimal number" in message
    assert orders(postgres_db) == [(1, "10.5"), (2, "20"), (3, "30")]  # nothing of it
    assert "/out/orders_3.csv" not in [t.path for t in env.taken()]

    bad.write_text("order_id,amount\n4,40\n5,50\n", encoding="utf-8")
    fixed = env.run(path)
    assert fixed.exit_code == 0, fixed.to_dict()
    assert orders(postgres_db)[-2:] == [(4, "40"), (5, "50")]
    assert env.run(path).exit_code == 0 and len(orders(postgres_db)) == 5
