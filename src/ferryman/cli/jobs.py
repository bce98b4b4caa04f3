"""``ferryman run``, ``validate``, ``history``, ``show`` and ``schema``: the job runner's CLI."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError
from ..jobs.loader import load_job
from ..jobs.reference import job_schema_text
from ..jobs.run import RunReport, parse_var, run_job
from ..state import StateStore, state_path
from .output import emit_json

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
    mode = " (dry run)" if report.dry_run else ""
    click.echo(f"job {report.job}, run {report.run_id}{mode}")
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
        if step.error is not None:
            line += f"\n            {'handled: ' if step.handled else ''}{step.error}"
        click.echo(line)
    click.echo(f"{report.status} in {report.seconds:.2f} s; log: {report.log_file}")


@click.command("run")
@click.argument("job", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a variable.")
@click.option("--dry-run", is_flag=True, help="Plan every step; change nothing.")
@click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    help="State file (history, ledger) instead of the job's or the default.",
)
@click.option("-v", "--verbose", count=True, help="Print the run log and transcript to stderr.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def run(
    job: Path,
    variables: tuple[str, ...],
    dry_run: bool,
    state: Path | None,
    verbose: int,
    json_output: bool,
) -> None:
    """Run a job file: its steps in order, with precedence, history and the only-new ledger."""
    ctx = click.get_current_context()
    ctx.meta["ferryman.json"] = json_output
    overrides = dict(parse_var(v) for v in variables)
    if state is not None:  # a path on the command line is relative to the working directory
        state = state.expanduser().absolute()
    report = run_job(job, overrides, dry_run=dry_run, verbose=verbose, state=state)
    if json_output:
        emit_json(report.to_dict())
    else:
        _print_report(report)
    if report.error is not None:
        if json_output:
            ctx.meta["ferryman.json_emitted"] = True
        raise report.error


def _store(job: str | None, state: Path | None) -> StateStore:
    configured = state
    job_file = None
    if job is not None and Path(job).is_file():
        loaded = load_job(Path(job))
        job_file, configured = loaded.path, state or loaded.job.state
    return StateStore(state_path(job_file, configured))


@click.command("history")
@click.argument("job", required=False)
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@click.option("--state", type=click.Path(path_type=Path, dir_okay=False), help="State file.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def history(job: str | None, limit: int, state: Path | None, json_output: bool) -> None:
    """Recent runs (of JOB: a job name or job file), newest first."""
    with _store(job, state) as store:
        name = load_job(Path(job)).job.name if job and Path(job).is_file() else job
        runs = store.runs(name, limit=limit)
    if json_output:
        emit_json({"ok": True, "runs": [r.to_dict() for r in runs]})
        return
    for r in runs:
        d = r.to_dict()
        click.echo(
            f"{d.get('id')!s:>6}  {d.get('job')!s:<24} {d.get('status')!s:<12} "
            f"exit {d.get('exit_code')!s:<4} {d.get('started')}"
        )


@click.command("show")
@click.argument("run_id", type=int)
@click.option("--state", type=click.Path(path_type=Path, dir_okay=False), help="State file.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def show(run_id: int, state: Path | None, json_output: bool) -> None:
    """One run: its steps, files, bytes, durations, errors and log file."""
    with _store(None, state) as store:
        detail = store.run_detail(run_id)
    if json_output:
        emit_json({"ok": True, **detail.to_dict()})
        return
    r = detail.run
    click.echo(f"run {r.id} of job {r.job} ({r.job_file}): {r.status}, exit code {r.exit_code}")
    click.echo(f"  started {r.started}, finished {r.finished}, host {r.host}, pid {r.pid}")
    if r.error:
        click.echo(f"  error: {r.error}")
    for step in detail.steps:
        seconds = f"{step.seconds:.2f} s" if step.seconds is not None else ""
        click.echo(f"  step {step.name:<20} {step.action or '':<13} {step.status:<9} {seconds}")
        if step.reason:
            click.echo(f"       {step.reason}")
        if step.error:
            click.echo(f"       error: {step.error}")
    for f in detail.files:
        click.echo(
            f"  file {f.status:<8} {f.source} -> {f.target}  {f.bytes} bytes  "
            f"{f.seconds or 0:.2f} s  {f.verified or ''} {f.error or ''}".rstrip()
        )
    click.echo(f"  log: {detail.transcript}")


JOB_COMMANDS: list[click.Command] = [run, validate, history, show, schema]
