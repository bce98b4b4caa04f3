"""The serve core (ferryman.serve.scheduler) driven by a controllable clock: schedules, catch-up
policies across restarts (marks in a real state file), if_running, until, enable/disable, the
API a dashboard will use; and the job-file keys of serve: and notify:, with their errors at
file:line:column. Runs that start here are real child processes (python -m ferryman.serve.child).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ferryman.errors import ConfigError
from ferryman.jobs.loader import load_job
from ferryman.serve.scheduler import Scheduler
from ferryman.state import StateStore


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


START = datetime(2026, 12, 4, 9, 59, 30, tzinfo=UTC)


def job_file(
    directory: Path, name: str, serve: str, steps: str | None = None, extra: str = ""
) -> Path:
    path = directory / f"{name}.yaml"
    (directory / "mark.py").write_text(
        "import sys\nwith open(sys.argv[1], 'a') as f:\n"
        "    f.write(' '.join(sys.argv[2:]) + '\\n')\n"
    )
    steps = (
        steps
        or f"""\
  - name: mark
    run: [{sys.executable}, mark.py, {name}.ran, "{{{{ trigger.kind }}}}", "{{{{ trigger.time }}}}"]
"""
    )
    path.write_text(
        f"name: {name}\nstate: {directory}/state.db\n{extra}serve:\n{serve}steps:\n{steps}"
    )
    return path


def queued(scheduler: Scheduler, name: str) -> int:
    return next(j["queued"] for j in scheduler.jobs() if j["name"] == name)


def test_a_schedule_fires_at_its_times(tmp_path: Path) -> None:
    job_file(tmp_path, "hourly", '  schedules: [{cron: "0 * * * *", timezone: UTC}]\n')
    clock = FakeClock(START)
    scheduler = Scheduler([tmp_path], clock=clock, max_runs=0)  # 0: nothing starts
    assert scheduler.load() == []
    (info,) = scheduler.jobs()
    assert info["schedules"][0]["next"] == "2026-12-04T10:00:00+00:00"
    assert queued(scheduler, "hourly") == 0
    assert scheduler.tick() == pytest.approx(30)
    clock.advance(seconds=31)
    scheduler.tick()
    assert queued(scheduler, "hourly") == 1
    clock.advance(seconds=10)
    scheduler.tick()  # skip: the first still waits
    assert queued(scheduler, "hourly") == 1
    assert [t.isoformat() for t, _ in scheduler.next_runs("hourly", 2)] == [
        "2026-12-04T11:00:00+00:00",
        "2026-12-04T12:00:00+00:00",
    ]


@pytest.mark.parametrize(("policy", "expected"), [("none", 0), ("latest", 1), ("all", 3)])
def test_catch_up_after_a_restart(tmp_path: Path, policy: str, expected: int) -> None:
    serve = f'  catch_up: {policy}\n  schedules: [{{cron: "0 * * * *", timezone: UTC}}]\n'
    job_file(tmp_path, "nightly", serve)
    clock = FakeClock(START)
    first = Scheduler([tmp_path], clock=clock, max_runs=0)
    first.load()  # seen for the first time: nothing missed
    assert queued(first, "nightly") == 0
    clock.advance(hours=3)  # down from 09:59:30 to 12:59:30: missed 10, 11 and 12 o'clock
    second = Scheduler([tmp_path], clock=clock, max_runs=0)
    second.load()
    assert queued(second, "nightly") == expected
    with StateStore(tmp_path / "state.db") as store:
        mark = store.schedule_mark("nightly", "0 * * * *@UTC")
    assert mark == datetime(2026, 12, 4, 12, tzinfo=UTC) or (policy == "none" and mark)
    third = Scheduler([tmp_path], clock=clock, max_runs=0)
    third.load()  # the marks moved: nothing is caught up twice
    assert queued(third, "nightly") == 0


def test_until_ends_a_schedule(tmp_path: Path) -> None:
    serve = '  schedules: [{cron: "0 10 * * *", timezone: UTC, until: 2026-12-05}]\n'
    job_file(tmp_path, "ending", serve)
    scheduler = Scheduler([tmp_path], clock=FakeClock(START), max_runs=0)
    scheduler.load()
    times = [t.date().isoformat() for t, _ in scheduler.next_runs("ending", 5)]
    assert times == ["2026-12-04", "2026-12-05"]


def test_disable_enable_and_run_now(tmp_path: Path) -> None:
    job_file(tmp_path, "switch", '  schedules: [{cron: "0 * * * *", timezone: UTC}]\n')
    clock = FakeClock(START)
    scheduler = Scheduler([tmp_path], clock=clock, max_runs=0)
    scheduler.load()
    scheduler.disable("switch")
    clock.advance(minutes=1)
    scheduler.tick()
    assert queued(scheduler, "switch") == 0
    assert scheduler.jobs()[0]["enabled"] is False
    scheduler.run_now("switch", {"x": "1"})  # run now works on a disabled job too
    assert queued(scheduler, "switch") == 1
    scheduler.enable("switch")
    assert scheduler.jobs()[0]["enabled"] is True
    with pytest.raises(ConfigError, match="no job named 'nope'"):
        scheduler.run_now("nope")


def test_queue_keeps_one_waiting_scheduled_run(tmp_path: Path) -> None:
    serve = '  if_running: queue\n  schedules: [{cron: "* * * * * *", timezone: UTC}]\n'
    job_file(tmp_path, "busy", serve)
    clock = FakeClock(START)
    scheduler = Scheduler([tmp_path], clock=clock, max_runs=0)
    scheduler.load()
    for _ in range(3):
        clock.advance(seconds=1)
        scheduler.tick()
    assert queued(scheduler, "busy") == 1


def test_runs_are_real_and_recorded(tmp_path: Path) -> None:
    """A schedule time and a run now: two child processes through run_job, in the history,
    each knowing what started it."""
    job_file(tmp_path, "real", '  schedules: [{cron: "0 * * * *", timezone: UTC}]\n')
    clock = FakeClock(START)
    scheduler = Scheduler([tmp_path], clock=clock, max_runs=2)
    scheduler.load()
    clock.advance(seconds=30)
    scheduler.tick()
    deadline = time.monotonic() + 30
    while sum(scheduler.counts.values()) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.run_now("real")
    while sum(scheduler.counts.values()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scheduler.counts == {"succeeded": 2}
    lines = (tmp_path / "real.ran").read_text().splitlines()
    assert lines[0] == "schedule 2026-12-04T10:00:00+00:00"
    assert lines[1].startswith("now ")
    with StateStore(tmp_path / "state.db") as store:
        assert [r.status for r in store.runs("real")] == ["succeeded", "succeeded"]
    assert scheduler.shutdown(grace=1) == []


def test_a_bad_file_beside_good_ones(tmp_path: Path) -> None:
    job_file(tmp_path, "good", '  schedules: [{cron: "@daily"}]\n')
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nserve:\n  schedules:\n    - cron: '0 25 * * *'\nsteps:\n  - name: x\n"
        "    run: [echo]\n"
    )
    (tmp_path / "twin.yaml").write_text((tmp_path / "good.yaml").read_text())
    scheduler = Scheduler([tmp_path], clock=FakeClock(START), max_runs=0)
    problems = scheduler.load()
    assert [j["name"] for j in scheduler.jobs()] == ["good"]
    messages = "\n".join(p.message for p in problems)
    assert f"{tmp_path / 'bad.yaml'}:4:7: serve.schedules.0.cron: hour: 25 is outside 0-23" in (
        messages
    )
    assert "job name 'good' is already used by" in messages


@pytest.mark.parametrize(
    ("serve", "message"),
    [
        ("  catch_up: some\n", "serve.catch_up: Input should be 'none', 'latest' or 'all'"),
        ("  schedules: [{cron: '@daily', timezone: Mars/Base}]\n", "not a known time zone"),
        ("  triggers: [{path: 'nowhere:/in/*.csv'}]\n", "no connection named 'nowhere'"),
        ("  triggers: [{path: 'in/', poll: 5m}]\n", "takes a number of seconds, not '5m'"),
        ("  schedule: []\n", "serve.schedule: unknown key"),
    ],
)
def test_serve_keys_are_checked(tmp_path: Path, serve: str, message: str) -> None:
    path = job_file(tmp_path, "checked", serve)
    with pytest.raises(ConfigError) as caught:
        load_job(path)
    assert message in caught.value.message
    assert f"{path}:" in caught.value.message


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ("  - webhook: {url: 'ftp://x/'}\n", "is not an http:// or https:// URL"),
        ("  - {on: [sometimes], webhook: {url: 'http://x/'}}\n", "notify.0.on.0: Input should be"),
        ("  - on: [failure]\n", "exactly one of email: or webhook:"),
        (
            "  - email: {to: a@b, from: c@d, host: h, user: u}\n",
            "user needs password_env or password_file",
        ),
    ],
)
def test_notify_keys_are_checked(tmp_path: Path, notify: str, message: str) -> None:
    path = job_file(tmp_path, "told", "  enabled: true\n", extra=f"notify:\n{notify}")
    with pytest.raises(ConfigError) as caught:
        load_job(path)
    assert message in caught.value.message


def test_expressions_may_read_the_trigger(tmp_path: Path) -> None:
    steps = "  - name: show\n    run: [echo, '{{ trigger.count }} {{ trigger.nope }}']\n"
    path = job_file(tmp_path, "expr", "  enabled: true\n", steps=steps)
    with pytest.raises(ConfigError, match=r"trigger.nope does not exist \(trigger.kind"):
        load_job(path)


def test_a_version_2_state_file_gets_schedule_marks(tmp_path: Path) -> None:
    from ferryman.state.schema import MIGRATIONS

    path = tmp_path / "s.db"
    with StateStore(path, migrations=MIGRATIONS[:2]) as old:
        old.start_run("nightly")
    with StateStore(path) as store:
        assert store.schedule_mark("nightly", "@daily@UTC") is None
        store.set_schedule_mark("nightly", "@daily@UTC", START)
        store.set_schedule_mark("nightly", "@daily@UTC", START - timedelta(days=1))  # no
        assert store.schedule_mark("nightly", "@daily@UTC") == START
        assert [r.job for r in store.runs()] == ["nightly"]
