"""Every step type of a job, against an in-process pyftpdlib server over explicit TLS (the
``partner`` connection) and the local disk, with real SQLite files for ``load``/``export``.

The partner's ``/out`` holds ``orders_1.csv`` (2 rows), ``orders_2.csv`` (1 row) and
``notes.txt`` (see ``partner_server``)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ferryman.errors import ExitCode, LoadError, NotFoundError, TargetExistsError, TimeoutError
from ferryman.jobs.run import RunReport
from ferryman.jobs.runner import StepRecord
from ferryman.transfer import DeletionGuardError

from .conftest import ServerFactory
from .test_jobs_support import JobEnv, make_env, partner_server

ORDERS_1 = "order_id,amount\n1,10.5\n2,20\n"
ORDERS_2 = "order_id,amount\n3,30\n"


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ftp_server: ServerFactory
) -> Iterator[JobEnv]:
    yield from make_env(tmp_path, monkeypatch, partner_server(ftp_server))


def step(report: RunReport, name: str) -> StepRecord:
    return next(s for s in report.steps if s.name == name)


def ok(report: RunReport) -> RunReport:
    failed = [(s.name, str(s.error)) for s in report.steps if s.status == "failed"]
    assert report.exit_code == 0 and not failed, failed
    return report


def later(seconds: float, action: Callable[[], None]) -> threading.Thread:
    """Run ``action`` in a thread after ``seconds`` (the test joins it)."""

    def body() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


# --- send and receive --------------------------------------------------------------------------


def test_receive_a_glob(env: JobEnv) -> None:
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: fetch
                    receive: {from: "partner:/out/orders_*.csv", to: inbox/}
                """
            )
        )
    )
    result = step(report, "fetch").result
    assert result["files"] == [
        str(env.dir / "inbox/orders_1.csv"),
        str(env.dir / "inbox/orders_2.csv"),
    ]
    assert result["sources"] == ["/out/orders_1.csv", "/out/orders_2.csv"]
    assert result["count"] == 2 and result["bytes"] == len(ORDERS_1) + len(ORDERS_2)
    assert result["skipped"] == [] and result["failed"] == []
    assert env.files("inbox") == ["orders_1.csv", "orders_2.csv"]
    assert (env.dir / "inbox/orders_1.csv").read_text() == ORDERS_1
    assert sorted(p.name for p in env.remote("out").iterdir()) == [
        "notes.txt",
        "orders_1.csv",
        "orders_2.csv",
    ]  # the sources stay without after:


def test_receive_recursive_with_include(env: JobEnv) -> None:
    for relpath in ("tree/a/x.csv", "tree/b/y.csv", "tree/b/z.txt", "tree/top.csv"):
        target = env.remote(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(relpath)
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: fetch
                    receive:
                      from: "partner:/tree"
                      to: mirror/
                      recursive: true
                      include: ["*.csv"]
                """
            )
        )
    )
    assert env.files("mirror") == ["a/x.csv", "b/y.csv", "top.csv"]
    assert (env.dir / "mirror/b/y.csv").read_text() == "tree/b/y.csv"
    assert step(report, "fetch").result["count"] == 3


def test_receive_then_archive_with_move_to(env: JobEnv) -> None:
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: fetch
                    receive:
                      from: "partner:/out/orders_*.csv"
                      to: inbox/
                      after: {move_to: /out/archive/}
                """
            )
        )
    )
    assert sorted(p.name for p in env.remote("out").iterdir()) == ["archive", "notes.txt"]
    assert sorted(p.name for p in env.remote("out/archive").iterdir()) == [
        "orders_1.csv",
        "orders_2.csv",
    ]
    assert env.remote("out/archive/orders_1.csv").read_text() == ORDERS_1
    assert env.files("inbox") == ["orders_1.csv", "orders_2.csv"]
    assert step(report, "fetch").result["sources"] == ["/out/orders_1.csv", "/out/orders_2.csv"]


def test_receive_then_delete_the_sources(env: JobEnv) -> None:
    ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: fetch
                    receive: {from: "partner:/out/*.csv", to: inbox/, after: {delete: true}}
                """
            )
        )
    )
    assert sorted(p.name for p in env.remote("out").iterdir()) == ["notes.txt"]
    assert env.files("inbox") == ["orders_1.csv", "orders_2.csv"]


def test_receive_without_matches(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: optional
                receive: {from: "partner:/out/*.xml", to: inbox/}
              - name: required
                receive: {from: "partner:/out/*.xml", to: inbox/, require_files: true}
            """
        )
    )
    assert step(report, "optional").status == "succeeded"
    assert step(report, "optional").result["count"] == 0
    required = step(report, "required")
    assert required.status == "failed" and isinstance(required.error, NotFoundError)
    assert report.exit_code == ExitCode.NOT_FOUND
    assert env.files("inbox") == []


def test_receive_refuses_to_overwrite_by_default(env: JobEnv) -> None:
    (env.dir / "inbox").mkdir()
    (env.dir / "inbox/orders_2.csv").write_text("local copy")
    report = env.run(
        env.write(
            """\
            steps:
              - name: fetch
                receive: {from: "partner:/out/orders_*.csv", to: inbox/}
            """
        )
    )
    fetch = step(report, "fetch")
    assert fetch.status == "failed" and isinstance(fetch.error, TargetExistsError)
    assert fetch.result["failed"] == ["/out/orders_2.csv"] and fetch.result["count"] == 1
    assert (env.dir / "inbox/orders_2.csv").read_text() == "local copy"
    assert report.exit_code == ExitCode.TRANSFER


def test_send_a_glob_and_a_renamed_file(env: JobEnv) -> None:
    (env.dir / "out").mkdir()
    (env.dir / "out/r1.csv").write_text("r1\n")
    (env.dir / "out/r2.csv").write_text("r2-longer\n")
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: publish
                    send: {from: "out/*.csv", to: "partner:/in/"}
                  - name: renamed
                    send: {from: out/r1.csv, to: "partner:/in/renamed.csv", after: {delete: true}}
                """
            )
        )
    )
    publish = step(report, "publish").result
    assert publish["files"] == ["/in/r1.csv", "/in/r2.csv"]
    assert publish["sources"] == [str(env.dir / "out/r1.csv"), str(env.dir / "out/r2.csv")]
    assert publish["count"] == 2 and publish["bytes"] == 3 + 10
    assert sorted(p.name for p in env.remote("in").iterdir()) == [
        "r1.csv",
        "r2.csv",
        "renamed.csv",
    ]
    assert env.remote("in/renamed.csv").read_text() == "r1\n"
    assert env.files("out") == ["r2.csv"]  # after: delete removed the local source


# --- delete, mkdir, rmdir, rename ----------------------------------------------------------------


def test_delete_remote_and_local(env: JobEnv) -> None:
    (env.dir / "tmp").mkdir()
    for name in ("a.tmp", "b.tmp", "keep.csv"):
        (env.dir / "tmp" / name).write_text(name)
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: remote
                    delete_remote: {path: "partner:/out/orders_*.csv"}
                  - name: local
                    delete_local: {path: "tmp/*.tmp"}
                  - name: nothing
                    delete_remote: {path: "partner:/out/*.xml"}
                """
            )
        )
    )
    assert step(report, "remote").result == {
        "files": ["/out/orders_1.csv", "/out/orders_2.csv"],
        "count": 2,
    }
    assert step(report, "local").result["count"] == 2
    assert step(report, "nothing").result == {"files": [], "count": 0}
    assert sorted(p.name for p in env.remote("out").iterdir()) == ["notes.txt"]
    assert env.files("tmp") == ["keep.csv"]


def test_delete_a_missing_file_unless_missing_ok(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            steps:
              - name: strict
                delete_remote: {path: "partner:/out/missing.csv", missing_ok: false}
            """
        )
    )
    assert isinstance(step(report, "strict").error, NotFoundError)
    assert report.exit_code == ExitCode.NOT_FOUND


def test_mkdir_with_parents_is_idempotent_and_rmdir(env: JobEnv) -> None:
    (env.dir / "existing").mkdir()
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - {name: r1, mkdir_remote: {path: "partner:/a/b/c"}}
                  - {name: r2, mkdir_remote: {path: "partner:/a/b/c"}}
                  - {name: r3, mkdir_remote: {path: "partner:/a/d"}}
                  - {name: r4, rmdir_remote: {path: "partner:/a/d"}}
                  - {name: l1, mkdir_local: {path: x/y/z}}
                  - {name: l2, mkdir_local: {path: x/y/z}}
                  - {name: l3, mkdir_local: {path: existing}}
                  - {name: l4, rmdir_local: {path: existing}}
                """
            )
        )
    )
    assert env.remote("a/b/c").is_dir() and not env.remote("a/d").exists()
    assert (env.dir / "x/y/z").is_dir() and not (env.dir / "existing").exists()
    assert step(report, "r1").result == {"path": "/a/b/c"}
    assert step(report, "l1").result == {"path": str(env.dir / "x/y/z")}


def test_rmdir_of_a_directory_that_is_not_empty_fails(env: JobEnv) -> None:
    (env.dir / "full").mkdir()
    (env.dir / "full/file").write_text("x")
    report = env.run(
        env.write(
            """\
            steps:
              - {name: remote, continue_on_error: true, rmdir_remote: {path: "partner:/out"}}
              - {name: local, rmdir_local: {path: full}}
            """
        )
    )
    assert step(report, "remote").status == "failed" and step(report, "local").status == "failed"
    assert env.remote("out/notes.txt").exists() and (env.dir / "full/file").exists()
    assert report.exit_code != 0


def test_rename_remote_relative_and_absolute(env: JobEnv) -> None:
    env.remote("done").mkdir()
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: relative
                    rename: {from: "partner:/out/orders_1.csv", to: orders_1.old}
                  - name: absolute
                    rename: {from: "partner:/out/orders_2.csv", to: /done/orders_2.csv}
                """
            )
        )
    )
    assert step(report, "relative").result == {
        "from": "/out/orders_1.csv",
        "to": "/out/orders_1.old",
        "already": False,
    }
    assert env.remote("out/orders_1.old").read_text() == ORDERS_1
    assert env.remote("done/orders_2.csv").read_text() == ORDERS_2
    assert not env.remote("out/orders_1.csv").exists()
    # a re-run (after a crash that came after the renames) finds them done, and says so
    again = ok(env.run())
    assert step(again, "relative").result["already"] is True
    assert step(again, "absolute").result["already"] is True
    assert env.remote("out/orders_1.old").read_text() == ORDERS_1


def test_rename_of_a_missing_file_still_fails(env: JobEnv) -> None:
    report = env.run(
        env.write('steps:\n  - {name: mv, rename: {from: "partner:/out/nope", to: x}}\n')
    )
    assert report.exit_code == 6 and "nope" in step(report, "mv").error.message


def test_rename_local_to_an_absolute_path(env: JobEnv) -> None:
    (env.dir / "inbox").mkdir()
    (env.dir / "inbox/a.csv").write_text("a")
    ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: move
                    rename: {from: inbox/a.csv, to: "$DIR/inbox/b.csv"}
                  - name: directory
                    rename: {from: inbox, to: "$DIR/done"}
                """
            )
        )
    )
    assert env.files("done") == ["b.csv"] and not (env.dir / "inbox").exists()


def test_rename_local_relative_to_the_old_directory(env: JobEnv) -> None:
    (env.dir / "inbox").mkdir()
    (env.dir / "inbox/a.csv").write_text("a")
    ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: move
                    rename: {from: inbox/a.csv, to: b.csv}
                """
            )
        )
    )
    assert env.files("inbox") == ["b.csv"]


# --- list --------------------------------------------------------------------------------------


def test_list_files_and_entries(env: JobEnv) -> None:
    stamp = time.time() - 3600
    os.utime(env.remote("out/orders_1.csv"), (stamp, stamp))
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: found
                    list: {path: "partner:/out/*.csv"}
                  - name: big
                    list: {path: "partner:/out/*.csv", min_size: "25"}
                  - name: local
                    list: {path: "$DIR/*.yaml"}
                """
            )
        )
    )
    found = step(report, "found").result
    assert found["files"] == ["/out/orders_1.csv", "/out/orders_2.csv"]
    assert found["count"] == 2
    first = found["entries"][0]
    assert first["path"] == "/out/orders_1.csv" and first["relative"] == "orders_1.csv"
    assert first["name"] == "orders_1.csv" and first["type"] == "file"
    assert first["size"] == len(ORDERS_1)
    assert first["modified"].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(stamp)))
    assert step(report, "big").result["files"] == ["/out/orders_1.csv"]
    assert step(report, "local").result["files"] == [str(env.dir / "job.yaml")]


def test_list_a_directory(env: JobEnv) -> None:
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: found
                    list: {path: "partner:/out"}
                """
            )
        )
    )
    assert step(report, "found").result["files"] == [
        "/out/notes.txt",
        "/out/orders_1.csv",
        "/out/orders_2.csv",
    ]


def test_list_without_matches_is_empty(env: JobEnv) -> None:
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: found
                    list: {path: "partner:/out/*.xml"}
                """
            )
        )
    )
    assert step(report, "found").result["count"] == 0


# --- sync --------------------------------------------------------------------------------------


def test_sync_with_delete(env: JobEnv) -> None:
    (env.dir / "mirror").mkdir()
    (env.dir / "mirror/orders_1.csv").write_text(ORDERS_1)  # the same: not copied again
    (env.dir / "mirror/gone.csv").write_text("the source lacks it")
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: mirror
                    sync: {from: "partner:/out", to: mirror, delete: true, max_delete: 100}
                """
            )
        )
    )
    result = step(report, "mirror").result
    assert result["sources"] == ["/out/notes.txt", "/out/orders_2.csv"]
    assert result["deleted"] == [str(env.dir / "mirror/gone.csv")]
    assert env.files("mirror") == ["notes.txt", "orders_1.csv", "orders_2.csv"]


def test_sync_refuses_to_delete_beyond_max_delete(env: JobEnv) -> None:
    (env.dir / "mirror").mkdir()
    for name in ("x.csv", "y.csv", "z.csv", "w.csv"):
        (env.dir / "mirror" / name).write_text(name)
    path = env.write(
        """\
        steps:
          - name: mirror
            sync: {from: "partner:/out", to: mirror, delete: true, max_delete: 20}
        """
    )
    report = env.run(path)
    mirror = step(report, "mirror")
    assert mirror.status == "failed" and isinstance(mirror.error, DeletionGuardError)
    assert report.exit_code == ExitCode.TRANSFER
    assert {"x.csv", "y.csv", "z.csv", "w.csv"} <= set(env.files("mirror"))  # none deleted


def test_sync_up_without_delete(env: JobEnv) -> None:
    (env.dir / "site").mkdir()
    (env.dir / "site/index.html").write_text("<p>hi</p>")
    env.remote("www").mkdir()
    env.remote("www/old.html").write_text("old")
    report = ok(
        env.run(
            env.write(
                """\
                steps:
                  - name: up
                    sync: {from: site, to: "partner:/www"}
                """
            )
        )
    )
    assert step(report, "up").result["files"] == ["/www/index.html"]
    assert sorted(p.name for p in env.remote("www").iterdir()) == ["index.html", "old.html"]


# --- wait_for ----------------------------------------------------------------------------------


def test_wait_for_files_that_arrive_during_the_wait(env: JobEnv) -> None:
    env.remote("drop").mkdir()
    (env.dir / "landing").mkdir()

    def arrive() -> None:
        env.remote("drop/a.csv").write_text("a")
        env.remote("drop/b.csv").write_text("b")
        (env.dir / "landing/x.csv").write_text("x")

    path = env.write(
        """\
        steps:
          - name: remote
            wait_for:
              path: "partner:/drop/*.csv"
              min_count: 2
              stable_for: 0.2
              poll: 0.05
              timeout: 10
          - name: local
            wait_for: {path: "landing/*.csv", stable_for: 0, poll: 0.05, timeout: 10}
        """
    )
    started = time.monotonic()
    thread = later(0.5, arrive)
    report = ok(env.run(path))
    thread.join()
    assert time.monotonic() - started >= 0.7  # arrival, then stable for 0.2 s
    assert step(report, "remote").result == {"files": ["/drop/a.csv", "/drop/b.csv"], "count": 2}
    assert step(report, "local").result == {"files": [str(env.dir / "landing/x.csv")], "count": 1}


def test_wait_for_waits_until_a_growing_file_is_stable(env: JobEnv) -> None:
    (env.dir / "landing").mkdir()
    growing = env.dir / "landing/big.csv"
    growing.write_text("start\n")
    finished: list[float] = []

    def grow() -> None:
        for _ in range(6):
            time.sleep(0.1)
            with growing.open("a") as f:
                f.write("more\n")
        finished.append(time.monotonic())

    path = env.write(
        """\
        steps:
          - name: stable
            wait_for: {path: "landing/*.csv", stable_for: 0.4, poll: 0.05, timeout: 10}
        """
    )
    thread = later(0, grow)
    report = ok(env.run(path))
    assert step(report, "stable").result == {"files": [str(growing)], "count": 1}
    done = time.monotonic()
    thread.join()
    assert finished and done - finished[0] >= 0.35
    assert growing.read_text().count("more") == 6


def test_wait_for_times_out_with_a_clear_message(env: JobEnv) -> None:
    env.remote("drop").mkdir()
    env.remote("drop/only.csv").write_text("1")
    path = env.write(
        """\
        steps:
          - name: arrived
            wait_for:
              path: "partner:/drop/*.csv"
              min_count: 2
              stable_for: 0
              poll: 0.1
              timeout: 0.5
          - name: never
            wait_for: {path: "partner:/nothing/*.csv", poll: 0.1, timeout: 0.3}
            when: always
        """
    )
    started = time.monotonic()
    report = env.run(path)
    assert time.monotonic() - started < 5
    arrived = step(report, "arrived")
    assert arrived.status == "failed" and isinstance(arrived.error, TimeoutError)
    assert arrived.error.message == (
        "waited 0.5 s for 2 stable file(s) matching partner:/drop/*.csv; found 1"
    )
    assert "did not arrive in time" in (arrived.error.hint or "")
    assert str(step(report, "never").error).startswith("waited 0.3 s for 1 stable file(s)")
    assert str(step(report, "never").error).endswith("found 0 -- " + (arrived.error.hint or ""))
    assert report.exit_code == ExitCode.CONNECTION


# --- load and export ---------------------------------------------------------------------------

LOAD = """\
steps:
  - name: fetch
    receive: {from: "partner:/out/orders_*.csv", to: inbox/, if_exists: overwrite}
  - name: load
    load:
      files: "{{ steps.fetch.files }}"
      into: "warehouse:orders"
      format: {column_types: {order_id: integer, amount: real}}
      mode: $MODE
      key: $KEY
"""


def test_load_append_replace_upsert(env: JobEnv) -> None:
    append = env.write(LOAD, MODE="append", KEY="[]")
    report = ok(env.run(append))
    assert step(report, "load").result == {
        "files": [str(env.dir / "inbox/orders_1.csv"), str(env.dir / "inbox/orders_2.csv")],
        "rows": 3,
        "tables": ["orders"],
        "already_loaded": [],
    }
    ok(env.run(append))
    assert env.rows("select count(*) from orders") == [(6,)]

    replace = env.write(LOAD.replace("orders_*.csv", "orders_2.csv"), MODE="replace", KEY="[]")
    ok(env.run(replace))
    assert env.rows("select order_id, amount from orders order by order_id") == [(3, 30.0)]

    upsert = env.write(
        LOAD.replace("warehouse:orders", "warehouse:latest"), MODE="upsert", KEY="[order_id]"
    )
    ok(env.run(upsert))
    env.remote("out/orders_1.csv").write_text("order_id,amount\n1,11\n4,40\n")
    ok(env.run(upsert))
    assert env.rows("select order_id, amount from latest order by order_id") == [
        (1, 11.0),
        (2, 20.0),
        (3, 30.0),
        (4, 40.0),
    ]


def test_load_replace_with_several_files_keeps_all_of_them(env: JobEnv) -> None:
    (env.dir / "warehouse.db").touch()
    with contextlib.closing(sqlite3.connect(env.dir / "warehouse.db")) as db, db:
        db.execute("create table orders (order_id integer, amount real)")
        db.execute("insert into orders values (99, 9.9)")
    ok(env.run(env.write(LOAD, MODE="replace", KEY="[]")))
    assert env.rows("select order_id from orders order by order_id") == [(1,), (2,), (3,)]


def test_a_bad_row_fails_the_load_with_file_and_line(env: JobEnv) -> None:
    (env.dir / "in").mkdir()
    (env.dir / "in/1.csv").write_text("order_id,amount\n1,1\n2,2\n")
    (env.dir / "in/2.csv").write_text("order_id,amount\n3,3\n4,4\nfive,5\n6,6\n")
    (env.dir / "in/3.csv").write_text("order_id,amount\n7,7\n")
    path = env.write(
        """\
        steps:
          - name: load
            load:
              files: "in/*.csv"
              into: "warehouse:orders"
              format: {column_types: {order_id: integer}}
        """
    )
    report = env.run(path)
    load = step(report, "load")
    assert load.status == "failed" and isinstance(load.error, LoadError)
    assert load.error.message == f"{env.dir}/in/2.csv:4: column order_id: 'five' is not an integer"
    assert load.result["files"] == [str(env.dir / "in/1.csv")] and load.result["rows"] == 2
    # nothing of 2.csv (not even the rows before the bad one), 3.csv never started
    assert env.rows("select order_id from orders order by order_id") == [(1,), (2,)]
    assert report.exit_code == 9  # ExitCode.LOAD
    result = env.cli("run", path)
    assert result.exit_code == 9 and f"{env.dir}/in/2.csv:4:" in result.stderr


def test_export_then_send_the_report(env: JobEnv) -> None:
    report = ok(
        env.run(
            env.write(
                """\
                variables:
                  day: "20261123"
                steps:
                  - name: fetch
                    receive: {from: "partner:/out/orders_*.csv", to: inbox/}
                  - name: load
                    load:
                      files: "{{ steps.fetch.files }}"
                      into: "warehouse:orders"
                      format: {column_types: {order_id: integer, amount: real}}
                  - name: report
                    export:
                      query: "select count(*) as orders, sum(amount) as total from orders"
                      from: warehouse
                      to: "out/report_{{ day }}.csv"
                  - name: publish
                    send: {from: "{{ steps.report.file }}", to: "partner:/in/"}
                """
            )
        )
    )
    assert step(report, "report").result == {
        "file": str(env.dir / "out/report_20261123.csv"),
        "rows": 1,
    }
    assert step(report, "publish").result["files"] == ["/in/report_20261123.csv"]
    assert env.remote("in/report_20261123.csv").read_text() == "orders,total\n3,60.5\n"


def test_export_of_a_bad_query_fails(env: JobEnv) -> None:
    path = env.write(
        """\
        steps:
          - name: report
            export: {query: "select * from no_such_table", from: warehouse, to: out/r.csv}
        """
    )
    report = env.run(path)
    assert "no such database file" in str(step(report, "report").error)
    with contextlib.closing(sqlite3.connect(env.dir / "warehouse.db")) as db:
        db.execute("create table orders (id integer)")
    report = env.run(
        env.write(
            """\
            steps:
              - name: report
                export: {query: "select * from no_such_table", from: warehouse, to: out/r.csv}
            """
        )
    )
    assert step(report, "report").status == "failed"
    assert "no_such_table" in str(step(report, "report").error)
    assert report.exit_code == ExitCode.LOAD
    assert not (env.dir / "out/r.csv").exists()


def test_a_database_used_as_a_file_place_is_refused(env: JobEnv) -> None:
    report = env.run(
        env.write(
            """\
            variables:
              db: warehouse
              nowhere: nowhere
            steps:
              - name: wrong
                list: {path: "{{ db }}:/x/*.csv"}
              - name: unknown
                when: always
                export: {query: "select 1", from: "{{ nowhere }}", to: out/r.csv}
            """
        )
    )
    # written out, both are found when the job is loaded (tests/test_jobs_validate.py); from
    # expressions, when the steps run
    assert str(step(report, "wrong").error) == (
        "'warehouse:/x/*.csv' names a database connection where files are expected"
    )
    assert str(step(report, "unknown").error).startswith(
        "no database connection named 'nowhere' -- add it under connections:"
    )
    assert report.exit_code == ExitCode.USAGE


def test_a_receive_refusing_a_hostile_name_copies_the_others_and_says_which(
    env: JobEnv,
) -> None:
    (env.remote("out") / "evil\x1b[2J.csv").write_text("x\n", encoding="utf-8")
    report = env.run(
        env.write(
            """\
            steps:
              - name: fetch
                receive: {from: "partner:/out/*.csv", to: inbox/}
            """
        )
    )
    fetch = step(report, "fetch")
    assert fetch.status == "failed" and fetch.error is not None
    assert "refused 1 unsafe name(s) from the server; the other files were copied" in (
        fetch.error.message
    )
    assert env.files("inbox") == ["orders_1.csv", "orders_2.csv"]
