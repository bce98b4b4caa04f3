"""``ferryman serve``: run jobs on their schedules and file-arrival triggers (docs/serve.md)."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from ..errors import ConfigError
from .output import emit_json, say

if TYPE_CHECKING:
    from ..serve.scheduler import Scheduler
    from ..web import Dashboard

__all__ = ["serve"]


def _absolute(paths: tuple[Path, ...]) -> list[Path]:
    return [p.expanduser().absolute() for p in paths] or [Path.cwd()]


def _check(sources: list[Path], state: Path | None, json_output: bool) -> None:
    from ..serve.jobset import load_jobs  # noqa: PLC0415
    from ..serve.schedules import JobSchedule  # noqa: PLC0415

    jobs, problems = load_jobs(sources)
    report: list[dict[str, object]] = []
    for name, entry in sorted(jobs.items()):
        settings = entry.loaded.job.serve
        schedules = []
        for schedule in settings.schedules if settings else []:
            known = JobSchedule.of(schedule)
            upcoming = known.upcoming(datetime.now(UTC), 3)
            schedules.append(
                {
                    "cron": schedule.cron,
                    "timezone": known.zone.key,
                    "next": [t.astimezone(known.zone).isoformat() for t in upcoming],
                }
            )
        triggers = [t.path for t in settings.triggers] if settings else []
        enabled = settings.enabled if settings else True
        report.append(
            {
                "job": name,
                "path": str(entry.path),
                "enabled": enabled,
                "schedules": schedules,
                "triggers": triggers,
            }
        )
    if json_output:
        emit_json(
            {
                "ok": not problems,
                "jobs": report,
                "problems": [{"path": str(p.path), "message": p.message} for p in problems],
            }
        )
    else:
        for item in report:
            say(f"job {item['job']} ({item['path']}){'' if item['enabled'] else ' disabled'}")
            for schedule in item["schedules"]:  # type: ignore[attr-defined]
                say(f"  schedule {schedule['cron']!r} ({schedule['timezone']}): next")
                for moment in schedule["next"]:
                    say(f"    {moment}")
            for trigger in item["triggers"]:  # type: ignore[attr-defined]
                say(f"  trigger on files at {trigger}")
            if not item["schedules"] and not item["triggers"]:
                say("  no schedule or trigger: runs only when started (run now)")
        for problem in problems:
            for line in problem.message.split("\n"):
                say(f"ferryman: error: {line}", err=True)
            if problem.hint:
                say(f"ferryman: hint: {problem.hint}", err=True)
        say(f"{len(report)} job(s) valid, {len(problems)} file(s) with problems", err=True)
    if problems:
        click.get_current_context().meta["ferryman.json_emitted"] = True
        raise ConfigError(
            f"{len(problems)} job file(s) have problems (listed above)",
            hint="fix them; serve would leave them out and run the others",
        )


class _Signals:
    """SIGTERM/SIGINT stop, SIGHUP reloads; a second SIGINT/SIGTERM skips the grace."""

    def __init__(self, wake: threading.Event) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.urgent = False
        self.wake = wake

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.urgent = self.stop.is_set()
        self.stop.set()
        self.wake.set()

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload.set()
        self.wake.set()


@click.command("serve")
@click.argument("jobs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Validate the jobs, print their next run times, exit.")
@click.option(
    "--print-systemd-unit", "print_unit", is_flag=True, help="Print a systemd unit file, exit."
)
@click.option("--user", "unit_user", help="User= of the systemd unit.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    help="State file for every job instead of each job's own.",
)
@click.option(
    "--max-runs",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Runs at once, all jobs together.",
)
@click.option(
    "--grace",
    type=click.FloatRange(0, 86400),
    default=60,
    show_default=True,
    help="Seconds running steps get to finish on SIGTERM before they are interrupted.",
)
@click.option(
    "--log-format",
    type=click.Choice(["human", "json"]),
    default="human",
    show_default=True,
    help="serve's log on stderr: lines for people, or JSON lines.",
)
@click.option(
    "--notify",
    "notify_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Global notifications file (default $FERRYMAN_NOTIFY or ~/.config/ferryman/notify.yaml).",
)
@click.option(
    "--watch-jobs",
    type=click.FloatRange(0, 3600),
    default=5,
    show_default=True,
    help="Seconds between looks for changed job files (reloaded as on SIGHUP); 0: only SIGHUP.",
)
@click.option(
    "--web",
    metavar="[HOST:]PORT",
    help="Serve the web dashboard there (docs/dashboard.md); HOST defaults to 127.0.0.1.",
)
@click.option(
    "--web-private",
    is_flag=True,
    help="The dashboard's read-only pages and JSON want the token too (actions always do).",
)
@click.option("-v", "--verbose", count=True, help="More log: -v debug, -vv transcripts too.")
@click.option("--json", "json_output", is_flag=True, help="With --check: JSON on stdout.")
def serve(
    jobs: tuple[Path, ...],
    check: bool,
    print_unit: bool,
    unit_user: str | None,
    state: Path | None,
    max_runs: int,
    grace: float,
    log_format: str,
    notify_file: Path | None,
    watch_jobs: float,
    web: str | None,
    web_private: bool,
    verbose: int,
    json_output: bool,
) -> None:
    """Run the jobs of JOBS (job files, or directories of them; default: here) on their
    schedules and file-arrival triggers, in the foreground, until SIGTERM or Ctrl-C.

    A job file that does not validate is reported and left out. SIGHUP (or a changed job
    file) reloads them. On SIGTERM no new run starts, running steps get --grace seconds to
    finish, then what is left is interrupted (recorded as such); exit status 0."""
    ctx = click.get_current_context()
    ctx.meta["ferryman.json"] = json_output
    sources = _absolute(jobs)
    if state is not None:
        state = state.expanduser().absolute()
    if print_unit:
        from ..serve.systemd import systemd_unit  # noqa: PLC0415

        arguments = [str(s) for s in sources]
        if state is not None:
            arguments += ["--state", str(state)]
        arguments += ["--max-runs", str(max_runs), "--grace", f"{grace:g}"]
        if notify_file is not None:
            arguments += ["--notify", str(notify_file.absolute())]
        if web is not None:
            arguments += ["--web", web] + (["--web-private"] if web_private else [])
        click.echo(systemd_unit(arguments, unit_user, grace), nl=False)
        return
    if check:
        _check(sources, state, json_output)
        return
    address = _web_address(web, web_private) if web is not None else None
    _serve(sources, state, max_runs, grace, log_format, notify_file, watch_jobs, verbose, address)


def _web_address(given: str, private: bool) -> tuple[str, int, bool]:
    """(host, port, private) of ``--web``: ``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, _, port = given.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"--web {given!r}: not a port or HOST:PORT",
            hint="e.g. --web 8470 or --web 127.0.0.1:8470",
        )
    return host, int(port), private


def _serve(
    sources: list[Path],
    state: Path | None,
    max_runs: int,
    grace: float,
    log_format: str,
    notify_file: Path | None,
    watch_jobs: float,
    verbose: int,
    web: tuple[str, int, bool] | None = None,
) -> None:
    from ..notify import notifications_path  # noqa: PLC0415
    from ..serve.jobset import signature  # noqa: PLC0415
    from ..serve.log import configure_serve_logging  # noqa: PLC0415
    from ..serve.scheduler import Scheduler  # noqa: PLC0415
    from ..serve.systemd import sd_notify  # noqa: PLC0415

    configure_serve_logging(log_format, verbose)
    scheduler = Scheduler(
        sources, state=state, max_runs=max_runs, notify_file=notifications_path(notify_file)
    )
    # bound before anything starts: a port in use stops serve before any run
    dashboard = _bind_dashboard(scheduler, state, web) if web is not None else None
    signals = _Signals(scheduler.wakeup)
    signals.install()
    scheduler.load()
    if dashboard is not None:
        dashboard.start()
    sd_notify("READY=1")
    seen = signature(sources)
    last_look = time.monotonic()

    def reload_due() -> bool:
        nonlocal seen, last_look
        wanted = signals.reload.is_set()
        signals.reload.clear()
        if not wanted and watch_jobs and time.monotonic() - last_look >= watch_jobs:
            last_look = time.monotonic()
            now = signature(sources)
            wanted, seen = now != seen, now
        elif wanted:
            seen = signature(sources)
        if wanted:
            sd_notify("RELOADING=1")
            threading.Timer(0.1, sd_notify, ("READY=1",)).start()
        return wanted

    try:
        scheduler.serve(signals.stop, reload_due)
    finally:
        sd_notify("STOPPING=1")
        if dashboard is not None:
            dashboard.stop()
        scheduler.shutdown(0 if signals.urgent else grace)


def _bind_dashboard(
    scheduler: Scheduler, state: Path | None, web: tuple[str, int, bool]
) -> Dashboard:
    """The dashboard on ``web`` (host, port, private), listening but not yet serving; its
    token from the environment or beside the state file."""
    from ..state import state_path  # noqa: PLC0415
    from ..web import Dashboard, load_token, token_path  # noqa: PLC0415

    host, port, private = web
    token = load_token(token_path(state or state_path(None, None)))
    try:
        dashboard = Dashboard(scheduler, token, host, port, state=state, protect_reads=private)
    except OSError as err:
        raise ConfigError(
            f"--web {host}:{port}: cannot listen there: {err.strerror or err}",
            hint="choose another port (another program uses it), or a host of this machine",
        ) from None
    return dashboard
