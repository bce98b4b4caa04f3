"""The dashboard of ``ferryman serve --web`` in a real browser: Debian's headless Chromium,
driven by Playwright, against a real serve process whose state file holds real runs (files
received with only_new from the embedded FTPS server, and a job that fails). Every page is
clicked through and photographed (``test-artifacts/dashboard/``), every action is taken, and
an action without the token is refused. Paging of a long history is checked on the state file
directly (the timing of a large one is in benchmarks/dashboard.py)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferryman.embedded import EmbeddedServer
from ferryman.state import StateStore
from ferryman.state.browse import RunFilter, connect_readonly, ledger_page, runs_page
from tests.servers.processes import free_port, stop_group

CHROMIUM = Path("/usr/bin/chromium")
#: what Chromium needs here: no sandbox as root, and no calls home (the network is closed)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FERRYMAN = [sys.executable, "-m", "ferryman"]
PASSWORD = "ftp-Pass-w0rd-never-shown"
ARTIFACTS = Path(
    os.environ.get("FERRYMAN_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts")
)


def _browser_parts() -> Any:
    """Playwright's sync API, with Debian's Chromium present; a failure (not a skip) in CI."""
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("the Python package playwright (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (bash scripts/install-test-servers.sh installs chromium)")
    if missing:
        message = "the browser tests need " + " and ".join(missing)
        if os.environ.get("FERRYMAN_ALLOW_SKIP") and not os.environ.get("CI"):
            pytest.skip(message)
        raise RuntimeError(message)
    return sync_playwright


class Http:
    """Plain requests to the dashboard, for what a browser would not send."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(
        self,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        url = self.base + path  # always http://127.0.0.1:PORT/...
        request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def json(self, path: str, **kw: Any) -> Any:
        status, body = self.call(path, **kw)
        assert status == 200, body
        return json.loads(body)


def _wait_health(http: Http, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited at start:\n{log.read_text()}")
        try:
            if http.call("/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the dashboard did not answer within 20 s:\n{log.read_text()}")


def _until(test: Any, what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = test()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """serve --web over two jobs with real runs: ``orders`` receives over FTPS, ``broken``
    fails; yields the base URL, the token file, serve's log and the FTP root."""
    root = tmp_path / "ftp"
    (root / "out").mkdir(parents=True)
    for name, size in (("a.csv", 1200), ("b.csv", 5400), ("c.csv", 80_000)):
        (root / "out" / name).write_bytes(b"x" * size)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    state = tmp_path / "state.db"
    env = {**os.environ, "FTP_PW": PASSWORD, "BROKEN_TOKEN": f"tok-{PASSWORD}"}
    env.pop("FERRYMAN_WEB_TOKEN", None)
    with EmbeddedServer(root, tls="explicit", user="orders", password=PASSWORD) as server:
        assert server.pki is not None
        (jobs / "orders.yaml").write_text(
            f"""\
name: orders
connections:
  partner: {{url: "ftpes://orders@127.0.0.1:{server.port}/", password_env: FTP_PW,
            ca_file: {server.pki.ca_cert}, timeout: 10, retries: 0}}
variables:
  batch: none
serve:
  schedules: [{{cron: "0 6 * * MON-FRI", timezone: UTC}}]
steps:
  - name: fetch
    receive: {{from: "partner:/out/*.csv", to: inbox/, only_new: true}}
  - name: announce
    run: [{sys.executable}, -c, "print('batch {{{{ batch }}}} done')"]
"""
        )
        (jobs / "broken.yaml").write_text(
            f"""\
name: broken
env: [BROKEN_TOKEN]
variables:
  token: "{{{{ env.BROKEN_TOKEN }}}}"
steps:
  - name: check
    run: [{sys.executable}, -c, "import sys; sys.exit(3 if sys.argv[1] == 'tok-{PASSWORD}' else 4)",
          "{{{{ token }}}}"]
  - name: after
    run: [{sys.executable}, -c, "print('never')"]
"""
        )
        for job in ("orders", "broken"):
            subprocess.run(
                [*FERRYMAN, "run", str(jobs / f"{job}.yaml"), "--state", str(state)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
        port = free_port()
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    *FERRYMAN,
                    "serve",
                    str(jobs),
                    "--state",
                    str(state),
                    "--web",
                    f"127.0.0.1:{port}",
                ],
                cwd=tmp_path,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            http = Http(f"http://127.0.0.1:{port}")
            _wait_health(http, proc, log)
            yield {"http": http, "state": state, "log": log, "root": root, "tmp": tmp_path}
        finally:
            stop_group(proc)


def test_every_page_and_action_in_chromium(site: dict[str, Any]) -> None:
    sync_playwright = _browser_parts()
    http: Http = site["http"]
    shots = ARTIFACTS / "dashboard"
    shots.mkdir(parents=True, exist_ok=True)
    token_file = Path(str(site["state"]) + ".web-token")
    token = token_file.read_text().strip()
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert site["log"].read_text().count(token) == 1  # printed once, when made
    seen: list[str] = []

    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 860})
        page.set_default_timeout(15_000)
        page.on("dialog", lambda dialog: dialog.accept())

        def shot(name: str) -> None:
            seen.append(page.content())
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

        # jobs: last run, next run, schedule; not logged in
        page.goto(http.base + "/")
        assert page.url.endswith("/jobs")
        orders = page.locator("tr[data-job=orders]")
        assert "succeeded" in orders.inner_text() and "0 6 * * MON-FRI" in orders.inner_text()
        assert "failed" in page.locator("tr[data-job=broken]").inner_text()
        shot("jobs")

        # an action without the token is refused, in the browser and by plain HTTP
        orders.get_by_role("button", name="Run now").click()
        page.wait_for_load_state()  # each click: wait for the page it led to, not the one before
        assert "refused" in page.locator(".flash").inner_text()
        shot("refused")
        assert http.call("/jobs/orders/run", data=b"")[0] == 403
        bad = {"Authorization": "Bearer not-the-token-at-all"}
        assert http.call("/jobs/orders/disable", data=b"", headers=bad)[0] == 403
        assert http.json("/jobs.json")["jobs"][1]["enabled"] is True
        rebound = {"Host": f"attacker.example:{http.base.rsplit(':', 1)[1]}"}
        assert http.call("/jobs.json", headers=rebound)[0] == 421  # DNS rebinding

        # log in: a wrong token, then the right one
        page.goto(http.base + "/login")
        page.fill("input[name=token]", "wrong-token-wrong-token")
        page.click("#login button")
        page.wait_for_load_state()
        assert "not the token" in page.inner_text("main")
        shot("login")
        page.fill("input[name=token]", token)
        page.click("#login button")
        page.wait_for_load_state()
        assert page.url.endswith("/jobs") and "log out" in page.inner_text("header")

        # the session cookie alone is not enough: a form from another site lacks the CSRF field
        cookie = next(c for c in page.context.cookies() if c["name"] == "ferryman_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        forged = {"Cookie": f"ferryman_session={cookie['value']}"}
        assert http.call("/jobs/orders/disable", data=b"back=/jobs", headers=forged)[0] == 403
        other = {**forged, "Origin": "http://evil.example"}
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        assert (
            http.call("/jobs/orders/disable", data=f"csrf={csrf}".encode(), headers=other)[0] == 403
        )

        # run now, with variables: new files on the server first
        (site["root"] / "out" / "d.csv").write_bytes(b"d" * 2500)
        before = len(http.json("/runs.json?job=orders")["runs"])
        orders = page.locator("tr[data-job=orders]")
        orders.locator("textarea[name=variables]").fill("batch=b7")
        orders.get_by_role("button", name="Run now").click()
        page.wait_for_load_state()
        assert "run of job orders queued with batch" in page.locator(".flash").inner_text()

        def finished() -> dict[str, Any] | None:
            found = http.json("/runs.json?job=orders")["runs"]
            done = len(found) > before and found[0]["status"] != "running"
            return found[0] if done else None

        newest = _until(finished, "the run started from the dashboard")
        assert newest["status"] == "succeeded" and newest["files"] == 1, newest
        detail = http.json(f"/runs/{newest['id']}.json")
        assert detail["variables"] == {"batch": "b7"}

        # disable, enable
        page.goto(http.base + "/jobs")
        page.locator("tr[data-job=orders]").get_by_role("button", name="Disable").click()
        page.wait_for_load_state()
        assert "job orders disabled" in page.locator(".flash").inner_text()
        assert "disabled" in page.locator("tr[data-job=orders]").inner_text()
        assert not next(j for j in http.json("/jobs.json")["jobs"] if j["name"] == "orders")[
            "enabled"
        ]
        page.locator("tr[data-job=orders]").get_by_role("button", name="Enable").click()
        page.wait_for_load_state()
        assert "job orders enabled" in page.locator(".flash").inner_text()
        assert next(j for j in http.json("/jobs.json")["jobs"] if j["name"] == "orders")["enabled"]

        # runs: filters
        page.click("header >> text=Runs")
        page.wait_for_load_state()
        assert page.locator("#runs tbody tr").count() >= 3
        shot("runs")
        page.select_option("#run-filter select[name=status]", "failed")
        page.click("#run-filter button")
        page.wait_for_load_state()
        statuses = page.locator("#runs tbody td:nth-child(3)").all_inner_texts()
        assert statuses and set(statuses) == {"failed"}
        shot("runs-failed")
        page.select_option("#run-filter select[name=status]", "")
        page.select_option("#run-filter select[name=job]", "orders")
        page.fill("#run-filter input[name=since]", "2000-01-01")
        page.fill("#run-filter input[name=until]", "2000-01-02")
        page.click("#run-filter button")
        page.wait_for_load_state()
        assert "No runs match" in page.inner_text("#runs")

        # one run: steps, files with sizes and verification; its log
        page.goto(http.base + f"/runs/{newest['id']}")
        assert "fetch" in page.inner_text("#steps") and "announce" in page.inner_text("#steps")
        page.click("#steps summary")
        assert "batch b7 done" in page.inner_text("#steps")
        files = page.inner_text("#files")
        assert "/out/d.csv" in files and "2.5 KB" in files and "size" in files
        shot("run")
        page.click("text=Run log and transcript")
        page.wait_for_load_state()
        assert "step announce succeeded" in page.inner_text("#log")
        shot("log")

        # retry the failed run
        failed = http.json("/runs.json?job=broken&status=failed")["runs"]
        page.goto(http.base + f"/runs/{failed[0]['id']}")
        assert "exited with status 3" in page.inner_text("#steps")
        shot("run-failed")
        page.click("text=Retry this run")
        page.wait_for_load_state()
        assert "retried" in page.locator(".flash").inner_text()
        retried = _until(
            lambda: len(http.json("/runs.json?job=broken&status=failed")["runs"]) == 2,
            "the retried run",
        )
        again = http.json("/runs.json?job=broken")["runs"][0]
        # the hidden variable was not replayed: the job read it from the environment again
        assert "exited with status 3" in again["error"], again
        assert retried
        assert (
            http.call(
                f"/runs/{newest['id']}/retry",
                data=b"",
                headers={"Authorization": f"Bearer {token}"},
            )[0]
            == 400
        )  # a succeeded run is not retried

        # ledger, with search
        page.click("header >> text=Ledger")
        page.wait_for_load_state()
        page.select_option("#ledger-search select[name=job]", "orders")
        page.click("#ledger-search button")
        page.wait_for_load_state()
        assert page.locator("#ledger tbody tr").count() == 4
        page.fill("#ledger-search input[name=q]", "b.csv")
        page.click("#ledger-search button")
        page.wait_for_load_state()
        assert page.locator("#ledger tbody tr").count() == 1
        shot("ledger")

        # charts: inline SVG, no script needed
        page.click("header >> text=Charts")
        page.wait_for_load_state()
        assert page.locator("svg.chart").count() >= 4
        assert page.locator("svg.chart rect").count() >= 30
        shot("charts")
        browser.close()

    # the JSON twins, health and metrics
    for path in ("/jobs", "/runs", f"/runs/{newest['id']}", "/ledger?job=orders", "/charts"):
        status, body = http.call(path + ".json" if "?" not in path else path.replace("?", ".json?"))
        assert status == 200 and json.loads(body)["ok"], path
        seen.append(body)
    seen.append(http.call(f"/runs/{newest['id']}/log.json")[1])
    assert http.json("/health")["ok"]
    # a script acts with the bearer token and JSON
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    done = http.json("/jobs/orders/disable.json", data=b"{}", headers=bearer)
    assert done == {"ok": True, "done": "job orders disabled"}
    assert http.json("/jobs/orders/enable.json", data=b"{}", headers=bearer)["ok"]
    status, body = http.call("/jobs/nope/run.json", data=b"{}", headers=bearer)
    assert status == 400 and "serve has no job named 'nope'" in json.loads(body)["error"]
    status, metrics = http.call("/metrics")
    assert status == 200
    assert 'ferryman_runs_total{job="broken",status="failed"} 2' in metrics
    assert 'ferryman_files_total{job="orders"} 4' in metrics
    assert 'ferryman_bytes_total{job="orders"} 89100' in metrics
    assert 'ferryman_last_success_timestamp_seconds{job="orders"}' in metrics
    # nothing shows a secret: neither the FTP password nor the token
    for text in [*seen, metrics]:
        assert PASSWORD not in text and token not in text


def test_private_dashboard_wants_the_token_for_every_page(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        f"name: quiet\nsteps:\n  - name: x\n    run: [{sys.executable}, -c, 'pass']\n"
    )
    port = free_port()
    token = "a-long-token-from-the-environment"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *FERRYMAN,
                "serve",
                str(tmp_path / "job.yaml"),
                "--state",
                str(tmp_path / "s.db"),
                "--web",
                str(port),
                "--web-private",
            ],
            cwd=tmp_path,
            env={**os.environ, "FERRYMAN_WEB_TOKEN": token},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        http = Http(f"http://127.0.0.1:{port}")
        _wait_health(http, proc, log)
        assert http.call("/jobs.json")[0] == 401
        assert http.call("/metrics")[0] == 401
        assert http.json("/jobs.json", headers={"Authorization": f"Bearer {token}"})["ok"]
        assert http.call("/runs")[1].count("Log in") >= 1  # redirected to the login page
        assert not (tmp_path / "s.db.web-token").exists()  # the environment's token is used
        assert token not in log.read_text()
    finally:
        stop_group(proc)


def test_pages_of_a_long_history_are_keyed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        for n in range(130):
            run = store.start_run("big" if n % 2 else "small")
            store.finish_run(run, "failed" if n % 10 == 0 else "succeeded", 0)
        store.remember("big", "ftp://h:21", [(f"/in/f{n:03}.csv", n, None) for n in range(250)], 1)
    conn = connect_readonly(path)
    try:
        first, more = runs_page(conn, RunFilter(), limit=50)
        assert [r.id for r in first] == list(range(130, 80, -1)) and more
        second, more = runs_page(conn, RunFilter(), before=first[-1].id, limit=50)
        assert second[0].id == 80 and more
        back, more = runs_page(conn, RunFilter(), after=second[0].id, limit=50)
        assert [r.id for r in back] == [r.id for r in first] and not more
        failed, more = runs_page(conn, RunFilter(job="small", status="failed"), limit=50)
        assert [r.id for r in failed] == list(range(121, 0, -10)) and not more
        seen: list[str] = []
        for search in (None, ".csv"):
            key: list[str] | None = None
            pages = 0
            while True:
                entries, key = ledger_page(conn, "big", search, key, 100)
                seen += [e.path for e in entries]
                pages += 1
                if key is None:
                    break
            assert pages == 3 and len(entries) == 50
        assert sorted(seen) == sorted(2 * [f"/in/f{n:03}.csv" for n in range(250)])
        entries, key = ledger_page(conn, "big", "f24", None, 100)
        assert [e.path for e in entries] == [f"/in/f24{n}.csv" for n in range(10)] and not key
        assert ledger_page(conn, "big", "%", None, 10) == ([], None)  # no wildcards
        with pytest.raises(Exception, match="readonly"):
            conn.execute("DELETE FROM runs")
    finally:
        conn.close()


def test_chart_days_kept_only_once_over(tmp_path: Path) -> None:
    """The charts keep the totals of days that are over; a day with a run still going on, and
    every day after it, is read again each time."""
    from datetime import UTC, datetime, timedelta

    from ferryman.serve.scheduler import Scheduler
    from ferryman.state.browse import daily_totals
    from ferryman.web.data import DashboardData

    (tmp_path / "job.yaml").write_text(
        f"name: big\nsteps:\n  - name: x\n    run: [{sys.executable}, -c, 'pass']\n"
    )
    state = tmp_path / "state.db"
    scheduler = Scheduler([tmp_path / "job.yaml"], state=state)
    scheduler.load()
    today = datetime.now(UTC).replace(hour=12)

    def add(days_ago: int, status: str, size: int) -> None:
        with StateStore(state) as store:
            run = store.start_run("big")
        conn = sqlite3.connect(state)
        with conn:
            moment = (today - timedelta(days=days_ago)).isoformat(timespec="milliseconds")
            conn.execute(
                "UPDATE runs SET started = ?, status = ?, pid = 0, host = 'elsewhere' WHERE id = ?",
                (moment, status, run),
            )
            conn.execute(
                "INSERT INTO files (run_id, step, source, target, status, bytes)"
                " VALUES (?, 'x', 'a', 'b', 'copied', ?)",
                (run, size),
            )
        conn.close()

    for days_ago in (9, 8, 6, 3, 1, 0):
        add(days_ago, "succeeded", 100 * days_ago + 1)
    add(5, "running", 7)
    data = DashboardData(scheduler, state)

    def direct() -> list[dict[str, Any]]:
        since = (today - timedelta(days=9)).date()
        conn = connect_readonly(state)
        try:
            return [d for d in daily_totals(conn, since, None) if d["runs"]]
        finally:
            conn.close()

    def shown() -> list[dict[str, Any]]:
        return [d for d in data.charts(0, 10, None)["per_day"] if d["runs"]]

    assert shown() == direct() and len(direct()) == 7
    assert shown() == direct()  # now from what was kept
    add(4, "succeeded", 5000)  # after the running run's day: still read live
    assert shown() == direct() and len(direct()) == 8
    assert sum(d["bytes"] for d in shown()) == sum(d["bytes"] for d in direct())


def test_a_bad_or_busy_web_address_stops_serve_before_any_run(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        f"name: quiet\nsteps:\n  - name: x\n    run: [{sys.executable}, -c, 'pass']\n"
    )
    base = [*FERRYMAN, "serve", str(tmp_path / "job.yaml"), "--state", str(tmp_path / "s.db")]
    bad = subprocess.run(
        [*base, "--web", "localhost:http"], capture_output=True, text=True, timeout=30, check=False
    )
    assert bad.returncode == 2 and "--web 'localhost:http': not a port" in bad.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = subprocess.run(
            [*base, "--web", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert taken.returncode == 2 and "cannot listen there" in taken.stderr
    assert "loaded" not in taken.stderr  # no job was loaded, so nothing ran


def test_jobs_with_their_own_state_files_are_each_read_from_theirs(tmp_path: Path) -> None:
    from ferryman.serve.scheduler import Scheduler
    from ferryman.web.data import DashboardData

    for name in ("alpha", "beta"):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nstate: {name}.db\nsteps:\n"
            f"  - name: x\n    run: [{sys.executable}, -c, 'pass']\n"
        )
        with StateStore(tmp_path / f"{name}.db") as store:
            for _ in range(2 if name == "alpha" else 3):
                store.finish_run(store.start_run(name), "succeeded", 0)
    scheduler = Scheduler([tmp_path])
    scheduler.load()
    data = DashboardData(scheduler)
    assert data.state_files() == [tmp_path / "alpha.db", tmp_path / "beta.db"]
    jobs = {j["name"]: j for j in data.jobs()["jobs"]}
    assert jobs["alpha"]["state"] == 0 and jobs["alpha"]["last_run"]["id"] == 2
    assert jobs["beta"]["state"] == 1 and jobs["beta"]["last_run"]["id"] == 3
    assert [r["job"] for r in data.runs(1, RunFilter())["runs"]] == ["beta"] * 3
    assert data.ledger("beta", None, None)["state"] == 1
    with pytest.raises(LookupError, match="no state file number 2"):
        data.runs(2, RunFilter())
