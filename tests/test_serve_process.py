"""``ferryman serve`` as a real process: files arriving on vsftpd and on OpenSSH trigger runs
(once each; a file still being written waits until stable), a per-second schedule and the
catch-up after a restart, SIGTERM in the middle of a transfer (nothing published, the run
interrupted, exit 0), SIGHUP reload, a bad job file beside good ones, notifications from serve,
``--check``, the systemd unit and its readiness messages."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ferryman.state import StateStore
from tests.servers.processes import free_port, stop_group
from tests.servers.receivers import webhook_receiver
from tests.servers.sshd import RemoteDir, Sshd
from tests.servers.vsftpd import Vsftpd, Workdir

Event = dict[str, Any]
#: a run step's program: succeeds when given exactly one argument
ONE_ARGUMENT = "import sys; sys.exit(len(sys.argv[1:]) != 1)"


class Serve:
    """``python -m ferryman serve ... --log-format json`` with its log read as events."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.log = cwd / f"serve-{time.monotonic_ns()}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ferryman", "serve", *args, "--log-format", "json"],
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )

    def events(self) -> list[Event]:
        found = []
        for line in self.log.read_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                found.append({"event": "text", "message": line})
        return found

    def wait_for(self, test: Callable[[Event], bool], timeout: float = 20, count: int = 1) -> Event:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [e for e in self.events() if test(e)]
            if len(hits) >= count:
                return hits[count - 1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no such event within {timeout} s; log:\n{self.log.read_text()}")

    def finished(self, job: str) -> list[Event]:
        return [e for e in self.events() if e["event"] == "run_finished" and e.get("job") == job]

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            stop_group(self.proc)


@pytest.fixture
def started() -> Iterator[list[Serve]]:
    processes: list[Serve] = []
    yield processes
    for process in processes:
        process.close()


def runs(state: Path, job: str) -> list[str]:
    with StateStore(state) as store:
        return [r.status for r in reversed(store.runs(job))]


def test_files_on_vsftpd_trigger_one_run_each(
    tmp_path: Path, vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir, started: list[Serve]
) -> None:
    server, work = vsftpd_explicit, vsftpd_workdir
    assert server.pki is not None
    work.write("out/a.csv", b"a\n")
    work.write("out/b.csv", b"b\n")
    (tmp_path / "ftp.yaml").write_text(
        f"""\
name: from-vsftpd
state: {tmp_path}/state.db
connections:
  partner: {{url: "ftpes://{server.user}@127.0.0.1:{server.port}/", password_env: VSFTPD_PW,
            ca_file: {server.pki.ca_cert}, timeout: 10, retries: 0}}
serve:
  triggers: [{{path: "partner:{work.path}/out/*.csv", poll: 0.5, stable_for: 0.5}}]
steps:
  - name: fetch
    receive: {{from: "partner:{work.path}/out/*.csv", to: inbox/, only_new: true}}
"""
    )
    serve = Serve([str(tmp_path / "ftp.yaml")], tmp_path, {"VSFTPD_PW": server.password})
    started.append(serve)
    first = serve.wait_for(lambda e: e["event"] == "run_finished")
    assert first["status"] == "succeeded" and first["files"] == 2 and first["trigger"] == "files"
    time.sleep(2)  # four more looks: the files stay on the server, but the ledger has them
    assert len(serve.finished("from-vsftpd")) == 1
    work.write("out/c.csv", b"c\n")
    second = serve.wait_for(lambda e: e["event"] == "run_finished", count=2)
    assert second["files"] == 1
    assert serve.stop() == 0
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["a.csv", "b.csv", "c.csv"]
    assert runs(tmp_path / "state.db", "from-vsftpd") == ["succeeded", "succeeded"]


def test_a_file_still_being_written_on_sshd_waits_until_stable(
    tmp_path: Path, sshd: Sshd, sshd_workdir: RemoteDir, started: list[Serve]
) -> None:
    work = sshd_workdir
    (tmp_path / "sftp.yaml").write_text(
        f"""\
name: from-sshd
state: {tmp_path}/state.db
connections:
  bank: {{url: "sftp://{sshd.user}@127.0.0.1:{sshd.port}/", password_env: SSHD_PW,
         known_hosts: {sshd.known_hosts}, timeout: 10, retries: 0}}
serve:
  triggers: [{{path: "bank:{work.path}/*.dat", poll: 0.3, stable_for: 1.5}}]
steps:
  - name: fetch
    receive: {{from: "bank:{work.path}/*.dat", to: inbox/, only_new: true, after: {{delete: true}}}}
"""
    )
    serve = Serve([str(tmp_path / "sftp.yaml")], tmp_path, {"SSHD_PW": sshd.password})
    started.append(serve)
    serve.wait_for(lambda e: e["event"] == "loaded")
    part = b"x" * 1000 + b"\n"
    target = work.write("big.dat", part)
    for _ in range(8):  # appended to for ~2.4 s: never stable for 1.5 s meanwhile
        time.sleep(0.3)
        with target.open("ab") as stream:
            stream.write(part)
    last_write = time.time()
    done = serve.wait_for(lambda e: e["event"] == "run_finished")
    run_started = serve.wait_for(lambda e: e["event"] == "run_started")
    started_at = time.mktime(time.strptime(run_started["time"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert started_at - time.timezone >= last_write - 1  # not while it was being written
    assert done["status"] == "succeeded" and done["files"] == 1
    assert (tmp_path / "inbox" / "big.dat").read_bytes() == part * 9
    assert not target.exists()  # after: delete, once the run succeeded
    assert serve.stop() == 0


def kinds_job(directory: Path, catch_up: str = "latest") -> Path:
    (directory / "kinds.py").write_text(
        "import sys\nopen(sys.argv[1], 'a').write(sys.argv[2] + '\\n')\n"
    )
    path = directory / "tick.yaml"
    path.write_text(
        f"""\
name: tick
state: {directory}/state.db
serve:
  catch_up: {catch_up}
  schedules: [{{cron: "*/2 * * * * *", timezone: Europe/Berlin}}]
steps:
  - name: note
    run: [{sys.executable}, kinds.py, kinds.txt, "{{{{ trigger.kind }}}}"]
"""
    )
    return path


def test_a_per_second_schedule_and_catch_up_after_a_restart(
    tmp_path: Path, started: list[Serve]
) -> None:
    job = kinds_job(tmp_path)
    serve = Serve([str(job)], tmp_path)
    started.append(serve)
    serve.wait_for(lambda e: e["event"] == "run_finished", timeout=20)
    assert serve.stop() == 0
    before = (tmp_path / "kinds.txt").read_text().split()
    assert set(before) == {"schedule"}
    time.sleep(4.2)  # down for two schedule times (or three)
    again = Serve([str(job)], tmp_path)
    started.append(again)
    again.wait_for(lambda e: e["event"] == "run_finished", count=2)
    assert again.stop() == 0
    after = (tmp_path / "kinds.txt").read_text().split()[len(before) :]
    assert after[0] == "catch_up" and after.count("catch_up") == 1  # latest: one, first
    assert set(after[1:]) == {"schedule"}
    assert set(runs(tmp_path / "state.db", "tick")) == {"succeeded"}


def test_sigterm_during_a_transfer(tmp_path: Path, started: list[Serve]) -> None:
    """A 4 MB download at 400 KB/s is cut by SIGTERM with a 1 s grace: the step is
    interrupted, nothing appears under the final name, the run is recorded interrupted, the
    ledger takes nothing, and serve exits 0."""
    with Vsftpd("none", extra_config={"local_max_rate": "400000"}) as server:
        work = server.workdir("slow")
        work.write("big.bin", os.urandom(4 * 1024 * 1024))
        (tmp_path / "slow.yaml").write_text(
            f"""\
name: slow
state: {tmp_path}/state.db
connections:
  partner: {{url: "ftp://{server.user}@127.0.0.1:{server.port}/", password_env: VSFTPD_PW,
            timeout: 10, retries: 0}}
serve:
  triggers: [{{path: "partner:{work.path}/big.bin", poll: 0.5, stable_for: 0}}]
steps:
  - name: fetch
    receive: {{from: "partner:{work.path}/big.bin", to: inbox/, only_new: true}}
  - name: after
    run: [{sys.executable}, -c, "pass"]
"""
        )
        serve = Serve(
            [str(tmp_path / "slow.yaml"), "--grace", "1"], tmp_path, {"VSFTPD_PW": server.password}
        )
        started.append(serve)
        serve.wait_for(lambda e: e["event"] == "run_started")
        time.sleep(2)
        stopped_at = time.monotonic()
        assert serve.stop(timeout=40) == 0
        assert time.monotonic() - stopped_at < 20
    events = serve.events()
    assert any("interrupting its step" in e["message"] for e in events)
    (done,) = serve.finished("slow")
    assert done["status"] == "interrupted"
    assert runs(tmp_path / "state.db", "slow") == ["interrupted"]
    assert not (tmp_path / "inbox" / "big.bin").exists()
    with StateStore(tmp_path / "state.db") as store:
        assert store.taken("slow") == []


def test_reload_a_bad_file_notifications_and_systemd(tmp_path: Path, started: list[Serve]) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (tmp_path / "in").mkdir()
    (jobs / "bad.yaml").write_text("name: bad\nsteps:\n  - name: x\n    sned: {}\n")
    (jobs / "local.yaml").write_text(
        f"""\
name: local
state: {tmp_path}/state.db
serve:
  triggers: [{{path: ../in/, poll: 30, stable_for: 0}}]
steps:
  - name: take
    run: [{sys.executable}, -c, "{ONE_ARGUMENT}", "{{{{ trigger.files | join(' ') }}}}"]
"""
    )
    notify_socket = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_socket))
    listener.settimeout(20)
    with listener, webhook_receiver() as hook:
        down = f"http://127.0.0.1:{free_port()}/down"
        serve = Serve(
            [str(jobs), "--watch-jobs", "0"], tmp_path, {"NOTIFY_SOCKET": str(notify_socket)}
        )
        started.append(serve)
        assert listener.recv(100) == b"READY=1"
        invalid = serve.wait_for(lambda e: e["event"] == "invalid")
        assert f"{jobs / 'bad.yaml'}:4:5: steps.0.sned: unknown key" in invalid["message"]
        (tmp_path / "in" / "one.csv").write_text("1\n")  # inotify: no 30 s poll to wait for
        first = serve.wait_for(lambda e: e["event"] == "run_finished", timeout=10)
        assert first["job"] == "local" and first["status"] == "succeeded"
        (jobs / "failing.yaml").write_text(
            f"""\
name: failing
state: {tmp_path}/state.db
serve:
  schedules: [{{cron: "* * * * * *"}}]
steps:
  - name: boom
    run: [{sys.executable}, -c, "import sys; sys.exit(4)"]
notify:
  - webhook: {{url: "{hook.url}", retries: 0}}
  - webhook: {{url: "{down}", retries: 0, timeout: 2}}
"""
        )
        time.sleep(0.5)
        assert not [e for e in serve.events() if e.get("job") == "failing"]  # not without HUP
        serve.proc.send_signal(signal.SIGHUP)
        assert listener.recv(100) == b"RELOADING=1"
        failed = serve.wait_for(lambda e: e["event"] == "run_finished" and e["job"] == "failing")
        assert failed["status"] == "failed" and failed["exit_code"] == 1
        serve.wait_for(lambda e: "notification failed: webhook http://127.0.0.1" in e["message"])
        serve.wait_for(lambda e: "notification sent: webhook" in e["message"])
        (jobs / "failing.yaml").unlink()
        serve.proc.send_signal(signal.SIGHUP)
        serve.wait_for(lambda e: e["event"] == "removed")
        assert serve.stop() == 0
        messages = []
        while b"STOPPING=1" not in messages:
            messages.append(listener.recv(100))  # READY=1 after each reload, then STOPPING=1
    assert messages.count(b"RELOADING=1") == 1
    body = hook.bodies[0]
    assert body["job"] == "failing" and body["event"] == "failure" and body["step"] == "boom"


def test_check_and_the_systemd_unit(tmp_path: Path) -> None:
    job = kinds_job(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: bad\nserve: {catch_up: later}\nsteps: []\n")
    ferryman = [sys.executable, "-m", "ferryman", "serve"]
    check = subprocess.run(
        [*ferryman, "--check", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 2
    assert "job tick" in check.stdout and "(Europe/Berlin): next" in check.stdout
    assert f"{tmp_path / 'bad.yaml'}:2:9: serve.catch_up: Input should be" in check.stderr
    good = subprocess.run(
        [*ferryman, "--check", str(job), "--json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0
    (item,) = json.loads(good.stdout)["jobs"]
    assert len(item["schedules"][0]["next"]) == 3
    unit = subprocess.run(
        [*ferryman, str(tmp_path), "--print-systemd-unit", "--user", "etl", "--grace", "90"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "Type=notify" in unit and "User=etl" in unit and "TimeoutStopSec=120" in unit
    assert f"serve {tmp_path} --max-runs 4 --grace 90 --log-format json" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
