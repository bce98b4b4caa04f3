"""``ferryman run``, ``validate``, ``history``, ``show`` and ``schema``: the job runner's CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, FerrymanError
from ..jobs.loader import LoadedJob, load_job
from ..jobs.reference import job_schema_text
from ..jobs.run import RunReport, parse_var, run_job
from ..state import StateStore, state_path
from .output import emit_json, say

__all__ = ["JOB_COMMANDS"]


@click.command("validate")
@click.argument("job", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def validate(job: Path, json_output: bool) -> None:
    """Check a job file: every problem, each at file:line:column, and what is allowed."""
    ctx = click.get_current_context()
    ctx.meta["ferryman.json"] = json_output
    try:
        loaded = load_job(job)
    except ConfigError as err:
        if json_output:
            problems = err.message.splitlines()
            emit_json({"ok": False, "job": str(job), "problems": problems, **err.to_dict()})
            ctx.meta["ferryman.json_emitted"] = True
        raise
    steps = len(loaded.job.steps)
    summary = {
        "ok": True,
        "job": str(job),
        "name": loaded.job.name,
        "steps": [s.name for s in loaded.job.steps],
        "connections": sorted(loaded.connections),
        "databases": sorted(loaded.databases),
    }
    if json_output:
        emit_json(summary)
    else:
        click.echo(
            f"{job}: job {loaded.job.name!r} is valid: {steps} step(s), "
            f"{len(loaded.connections)} server connection(s), "
            f"{len(loaded.databases)} database(s)"
        )


@click.command("schema")
def schema() -> None:
    """Print the job file's JSON Schema (for editor completion)."""
    click.echo(job_schema_text(), nl=False)


def _print_report(report: RunReport) -> None:
    if report.dry_run:
        say(f"job {report.job}, dry run (changes nothing; not recorded in the history)")
    else:
        say(f"job {report.job}, run {report.run_id} (state {report.state_file})")
    for step in report.steps:
        line = f"  {step.status:9} {step.name:<20} {step.action:<13}"
        if step.status == "skipped":
            line += f" ({step.reason})"
        else:
            line += f" {step.seconds:6.2f} s"
            for key in ("count", "rows", "bytes", "exit_code"):
                if key in step.result and step.result[key] is not None:
                    line += f"  {key} {step.result[key]}"
            if step.attempts > 1:
                line += f"  attempts {step.attempts}"
        say(line)
        if step.error is not None:
            say(f"            {'handled: ' if step.handled else ''}{step.error}")
    say(f"{report.status} in {report.seconds:.2f} s; log: {report.log_file}")


@click.command("run")
@click.argument("job", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a variable.")
@click.option("--dry-run", is_flag=True, help="Plan every step; change nothing.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    help="State file (history, ledger) instead of the job's or the default.",
)
@click.option(
    "--notify",
    "notify_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Global notifications file (default $FERRYMAN_NOTIFY or "
    "~/.config/ferryman/notify.yaml); the job's notify: list applies too.",
)
@click.option("-v", "--verbose", count=True, help="Print the run log and transcript to stderr.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def run(
    job: Path,
    variables: tuple[str, ...],
    dry_run: bool,
    state: Path | None,
    notify_file: Path | None,
    verbose: int,
    json_output: bool,
) -> None:
    """Run a job file: its steps in order, with precedence, history and the only-new ledger.

    Sends the job's notifications (and the global ones) when it ends: on failure, success or
    no files, as each says (docs/serve.md#notifications)."""
    ctx = click.get_current_context()
    ctx.meta["ferryman.json"] = json_output
    overrides = dict(parse_var(v) for v in variables)
    if state is not None:  # a path on the command line is relative to the working directory
        state = state.expanduser().absolute()
    targets = [] if dry_run else _notifications(job, notify_file)
    report = run_job(job, overrides, dry_run=dry_run, verbose=verbose, state=state)
    if targets:
        from ..notify import Notifier  # noqa: PLC0415 - smtplib and urllib only when used

        notifier = Notifier()
        notifier.notify(targets, report.to_dict())
        notifier.close(timeout=_NOTIFY_WAIT)
    if json_output:
        emit_json(report.to_dict())
    else:
        _print_report(report)
    if report.error is not None:
        if json_output:
            ctx.meta["ferryman.json_emitted"] = True
        raise report.error


#: seconds ``ferryman run`` waits at most, after the run, for its notifications to go out
_NOTIFY_WAIT = 60.0


def _notifications(job: Path, notify_file: Path | None) -> list[tuple[Any, Path]]:
    """The job's notifications and the global ones, each with its base directory."""
    from ..notify import global_notifications, notifications_path  # noqa: PLC0415

    found: list[tuple[Any, Path]] = global_notifications(notifications_path(notify_file))
    loaded = load_job(job)
    found += [(n, loaded.base) for n in loaded.job.notify]
    return found


@dataclass(frozen=True)
class _Located:
    """Which state file ``history``/``show`` read, for which job, and why that one."""

    state: Path
    job: str | None
    why: str


def _job_files_named(name: str) -> list[LoadedJob]:
    """The job files here and in ./jobs/ whose job is called ``name`` (invalid ones ignored)."""
    found: list[LoadedJob] = []
    for directory in (Path.cwd(), Path.cwd() / "jobs"):
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            try:
                loaded = load_job(path)
            except (FerrymanError, OSError, ValueError):
                continue
            if loaded.job.name == name:
                found.append(loaded)
    return found


def _locate(job: str | None, state: Path | None) -> _Located:
    """The state file to read: ``--state`` (relative to the working directory, as for
    ``run``); else the job file's own; else, for a job name, the state of the job file of that
    name here or in ./jobs/; else the default one (``$FERRYMAN_STATE`` or the XDG one)."""
    loaded = load_job(Path(job)) if job is not None and Path(job).is_file() else None
    name = loaded.job.name if loaded is not None else job
    if state is not None:
        return _Located(state.expanduser().absolute(), name, "given with --state")
    if loaded is not None:
        return _Located(state_path(loaded.path, loaded.job.state), name, f"of {loaded.path}")
    if name is not None:
        files = {state_path(f.path, f.job.state): f.path for f in _job_files_named(name)}
        if len(files) == 1:
            ((found, path),) = files.items()
            return _Located(found, name, f"of {path}")
    return _Located(state_path(None, None), name, "the default")


def _elsewhere(what: str) -> str:
    return (
        f"a job with its own `state:` keeps its runs there: give the job file ({what} "
        "path/to/job.yaml) or --state FILE"
    )


@click.command("history")
@click.argument("job", required=False)
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@click.option("--state", type=click.Path(path_type=Path, dir_okay=False), help="State file.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def history(job: str | None, limit: int, state: Path | None, json_output: bool) -> None:
    """Recent runs (of JOB: a job name or job file), newest first.

    The runs are read from the job's own state file: that of the job file given, or of the
    job file of that name here or in ./jobs/; else from --state or the default state file."""
    where = _locate(job, state)
    with StateStore(where.state) as store:
        runs = store.runs(where.job, limit=limit)
    if json_output:
        emit_json({"ok": True, "state_file": str(where.state), "runs": [r.to_dict() for r in runs]})
        return
    of = f" of job {where.job}" if where.job else ""
    say(f"runs{of} in state file {where.state} ({where.why}):")
    for r in runs:
        d = r.to_dict()
        say(
            f"{d.get('id')!s:>6}  {d.get('job')!s:<24} {d.get('status')!s:<12} "
            f"exit {d.get('exit_code')!s:<4} {d.get('started')}"
        )
    if not runs:
        say("  (none)")
        if where.why == "the default":
            say(f"ferryman: hint: {_elsewhere('ferryman history')}", err=True)


@click.command("show")
@click.argument("run_id", type=int)
@click.argument("job", required=False)
@click.option("--state", type=click.Path(path_type=Path, dir_okay=False), help="State file.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def show(run_id: int, job: str | None, state: Path | None, json_output: bool) -> None:
    """One run: its steps, files, bytes, durations, errors and log file.

    Run ids are numbered per state file: give JOB (a job file or name) or --state to read
    the job's own state file rather than the default one."""
    where = _locate(job, state)
    with StateStore(where.state) as store:
        try:
            detail = store.run_detail(run_id)
        except ConfigError as err:
            raise ConfigError(err.message, hint=_elsewhere(f"ferryman show {run_id}")) from None
    r = detail.run
    if where.job is not None and r.job != where.job:
        raise ConfigError(
            f"run {run_id} in the state file {where.state} is of job {r.job}, not {where.job}",
            hint=_elsewhere(f"ferryman show {run_id}"),
        )
    if json_output:
        emit_json({"ok": True, "state_file": str(where.state), **detail.to_dict()})
        return
    say(f"run {r.id} of job {r.job} ({r.job_file}): {r.status}, exit code {r.exit_code}")
    say(f"  state file {where.state}")
    say(f"  started {r.started}, finished {r.finished}, host {r.host}, pid {r.pid}")
    if r.error:
        say(f"  error: {r.error}")
    for step in detail.steps:
        seconds = f"{step.seconds:.2f} s" if step.seconds is not None else ""
        say(f"  step {step.name:<20} {step.action or '':<13} {step.status:<9} {seconds}")
        if step.reason:
            say(f"       {step.reason}")
        if step.error:
            say(f"       error: {step.error}")
    for f in detail.files:
        say(
            f"  file {f.status:<8} {f.source} -> {f.target}  {f.bytes} bytes  "
            f"{f.seconds or 0:.2f} s  {f.verified or ''} {f.error or ''}".rstrip()
        )
    say(f"  log: {detail.transcript}")


JOB_COMMANDS: list[click.Command] = [run, validate, history, show, schema]
