"""A complete job against a real vsftpd (explicit FTPS, TLS required for login and data,
``require_ssl_reuse=YES``): receive only new files and archive them on the server, load
them, export a report and send it back -- run twice, as a nightly job would be."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from string import Template

import pytest

from ferryman.jobs.run import RunReport
from ferryman.jobs.runner import StepRecord
from tests.servers.vsftpd import TEST_USER, Vsftpd, Workdir

from .test_jobs_support import JobEnv, make_env

pytestmark = pytest.mark.vsftpd


def orders(first: int, count: int) -> bytes:
    rows = "".join(f"{i},{i * 1.5:.1f}\n" for i in range(first, first + count))
    return ("order_id,amount\n" + rows).encode()


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vsftpd_explicit: Vsftpd
) -> Iterator[JobEnv]:
    monkeypatch.setenv("VSFTPD_PW", vsftpd_explicit.password)
    yield from make_env(tmp_path, monkeypatch)


JOB = """\
name: vsftpd-nightly
state: $STATE
connections:
  partner:
    url: ftpes://$USER@$HOST:$PORT/
    password_env: VSFTPD_PW
    ca_file: $CA
    timeout: 5
    retries: 0
  warehouse:
    url: sqlite:///warehouse.db
steps:
  - name: fetch
    receive:
      from: "partner:$BASE/outbound/orders_*.csv"
      to: inbox/
      only_new: true
      after: {move_to: "$BASE/outbound/archive/"}
  - name: load
    if: "{{ steps.fetch.count > 0 }}"
    load:
      files: "{{ steps.fetch.files }}"
      into: "warehouse:orders"
      format: {column_types: {order_id: integer, amount: real}}
      mode: upsert
      key: [order_id]
  - name: report
    export:
      query: "select count(*) as orders, sum(amount) as total from orders"
      from: warehouse
      to: "out/report_run{{ job.run_id }}.csv"
  - name: publish
    send: {from: "{{ steps.report.file }}", to: "partner:$BASE/inbound/"}
"""


def write_job(env: JobEnv, server: Vsftpd, work: Workdir) -> Path:
    assert server.pki is not None
    text = Template(JOB).substitute(
        STATE=env.state,
        USER=server.user,
        HOST=server.host,
        PORT=server.port,
        CA=server.pki.ca_cert,
        BASE=work.path,
    )
    path = env.dir / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def step(report: RunReport, name: str) -> StepRecord:
    return next(s for s in report.steps if s.name == name)


def test_nightly_job_against_vsftpd_twice(
    env: JobEnv, vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir
) -> None:
    work = vsftpd_workdir
    work.write("outbound/orders_1.csv", orders(1, 3))
    work.write("outbound/orders_2.csv", orders(10, 2))
    work.write("outbound/readme.txt", b"not an order")
    path = write_job(env, vsftpd_explicit, work)

    first = env.run(path)
    assert first.exit_code == 0, [(s.name, str(s.error)) for s in first.steps]
    assert step(first, "fetch").result["sources"] == [
        work.ftp_path("outbound/orders_1.csv"),
        work.ftp_path("outbound/orders_2.csv"),
    ]
    assert step(first, "load").result["rows"] == 5
    archive = work.local / "outbound/archive"
    assert sorted(p.name for p in archive.iterdir()) == ["orders_1.csv", "orders_2.csv"]
    assert sorted(p.name for p in (work.local / "outbound").iterdir()) == [
        "archive",
        "readme.txt",
    ]
    total_1 = sum(i * 1.5 for i in (1, 2, 3, 10, 11))
    assert (work.local / "inbound/report_run1.csv").read_text() == f"orders,total\n5,{total_1}\n"

    # the partner drops a new file and puts an already-taken one back unchanged
    work.write("outbound/orders_3.csv", orders(20, 1))
    put_back = work.local / "outbound/orders_1.csv"
    shutil.copy2(archive / "orders_1.csv", put_back)
    uid = os.stat(work.local).st_uid
    os.chown(put_back, uid, os.stat(work.local).st_gid)
    assert put_back.owner() == TEST_USER

    second = env.run(path)
    assert second.exit_code == 0, [(s.name, str(s.error)) for s in second.steps]
    assert step(second, "fetch").result["sources"] == [work.ftp_path("outbound/orders_3.csv")]
    assert step(second, "load").result["rows"] == 1
    assert put_back.is_file()  # not taken again: the ledger knows it
    assert sorted(p.name for p in archive.iterdir()) == [
        "orders_1.csv",
        "orders_2.csv",
        "orders_3.csv",
    ]
    assert sorted(p.name for p in (work.local / "inbound").iterdir()) == [
        "report_run1.csv",
        "report_run2.csv",
    ]
    assert (work.local / "inbound/report_run2.csv").read_text() == (
        f"orders,total\n6,{total_1 + 30.0}\n"
    )
    assert env.rows("select count(*) from orders") == [(6,)]
    assert [t.path for t in env.taken("vsftpd-nightly")] == [
        work.ftp_path("outbound/orders_1.csv"),
        work.ftp_path("outbound/orders_2.csv"),
        work.ftp_path("outbound/orders_3.csv"),
    ]

    # every data connection resumed the control connection's TLS session
    for report in (first, second):
        assert report.log_file is not None
        log = report.log_file.read_text(encoding="utf-8")
        sessions = re.findall(r"data TLS \S+, session (resumed|NEW)", log)
        assert sessions and set(sessions) == {"resumed"}
        assert vsftpd_explicit.password not in log
    assert "No SSL session reuse" not in vsftpd_explicit.log_text()
