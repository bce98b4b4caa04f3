"""``ferryman run``, ``validate``, ``history``, ``show`` and ``schema``: the job runner's CLI."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError
from ..jobs.loader import load_job
from ..jobs.reference import job_schema_text
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


JOB_COMMANDS = [validate, schema]
