"""One run of a job: lock, state, variables, steps, ledger, history.

The order of things is what makes runs safe to repeat: the job's lock first (an overlapping
run stops before touching anything), then the run record, then what a killed run left
undone (``effects.recover_sources``), then the steps; the only-new ledger is written last
and only when the run succeeded, so a failed or crashed run leaves its files to be taken
again. docs/jobs.md has the table of what a crash at each point leaves and what the re-run
does.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError, FerrymanError
from ..redact import contains_secret, mask_data, register_secret
from ..state import StateStore, job_lock, safe_job_name, state_path
from ..wirelog import configure_logging
from .context import RunContext, Trigger
from .effects import commit_taken, finish_sources, recover_sources
from .expressions import is_template
from .loader import LoadedJob, load_job
from .runner import RunStopped, StepRecord, execute_steps, exit_code_of

__all__ = ["HIDDEN_VARIABLE", "RunReport", "parse_var", "run_job", "run_log_path"]

#: what the history records for a variable that may hold a secret (:func:`_recordable`)
HIDDEN_VARIABLE = "(from the environment: not recorded)"

log = logging.getLogger("ferryman.jobs")


@dataclass
class RunReport:
    job: str
    run_id: int | None
    status: str  #: succeeded, failed, interrupted (stopped by serve)
    exit_code: int
    dry_run: bool
    steps: list[StepRecord] = field(default_factory=list)
    error: FerrymanError | None = None
    seconds: float = 0.0
    log_file: Path | None = None
    state_file: Path | None = None
    #: what the run finished for earlier, killed runs (and source actions it could not do)
    recovered: list[str] = field(default_factory=list)
    trigger: Trigger = field(default_factory=Trigger)

    def to_dict(self) -> dict[str, Any]:
        """The JSON run summary, every registered secret masked (``ferryman.redact``)."""
        summary = {
            "ok": self.exit_code == 0,
            "job": self.job,
            "run_id": self.run_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 6),
            "error": self.error.to_dict() if self.error else None,
            "steps": [s.to_dict() for s in self.steps],
            "recovered": self.recovered,
            "trigger": self.trigger.scope(),
            "log_file": str(self.log_file) if self.log_file else None,
            "state_file": str(self.state_file) if self.state_file else None,
        }
        masked: dict[str, Any] = mask_data(summary)
        return masked


def parse_var(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` from ``--var``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"--var {text!r} is not NAME=VALUE", hint="e.g. --var day=20261123")
    return name.strip(), value


def run_log_path(state_file: Path, job: str, started: datetime) -> Path:
    stamp = started.strftime("%Y%m%dT%H%M%S%fZ")
    return state_file.parent / "logs" / safe_job_name(job) / f"{stamp}.log"


def _variables(ctx: RunContext, overrides: Mapping[str, str]) -> None:
    unknown = sorted(set(overrides) - set(ctx.loaded.job.variables))
    if unknown:
        known = ", ".join(sorted(ctx.loaded.job.variables)) or "(none)"
        raise ConfigError(
            f"--var {unknown[0]}: the job has no such variable", hint=f"its variables: {known}"
        )
    for name, raw in ctx.loaded.job.variables.items():
        value = overrides.get(name, raw)
        ctx.variables[name] = rendered = ctx.render(value, ctx.loaded.at(f"variables.{name}"))
        if name in _secret_variables(ctx.loaded, ctx.variables) and isinstance(rendered, str):
            register_secret(rendered)  # "{{ pw | upper }}" is a secret too, whatever its value


def _secret_variables(loaded: LoadedJob, values: Mapping[str, Any]) -> set[str]:
    """Variables computed from the environment (where secrets live), directly or through
    other such variables, and those whose value holds a registered secret."""
    secret: set[str] = set()
    for name, value in values.items():
        definition = str(loaded.job.variables.get(name, ""))  # a list's or a dict's too
        names = {"env", *secret}
        computed = is_template(definition) and any(
            re.search(rf"\b{re.escape(n)}\b", definition) for n in names
        )
        if computed or contains_secret(str(value)):
            secret.add(name)
    return secret


def _recordable(loaded: LoadedJob, values: Mapping[str, Any]) -> dict[str, Any]:
    """Variables for the run's history: simple values, but never a secret one (see
    :func:`_secret_variables`): it is recorded as hidden."""
    hidden = _secret_variables(loaded, values)
    shown: dict[str, Any] = {}
    for name, value in values.items():
        if name in hidden:
            shown[name] = HIDDEN_VARIABLE
        elif isinstance(value, str | int | float | bool):
            shown[name] = value
    return shown


def _record(store: StateStore, run_id: int, records: list[StepRecord], order: int = 0) -> int:
    """Record steps (those inside a foreach once per iteration, after it); the next position."""
    for record in records:
        store.record_step(
            run_id,
            record.name,
            record.status,
            action=record.action,
            order=order,
            started=record.started or None,
            seconds=record.seconds,
            attempts=max(record.attempts, 1),
            reason=record.reason or None,
            error=record.error,
            result=record.result,
        )
        order += 1
        if record.outcome is not None and record.outcome.files:
            store.record_files(run_id, record.name, record.outcome.files)
        if record.outcome is not None and record.outcome.steps:
            order = _record(store, run_id, record.outcome.steps, order)
    return order


@contextmanager
def _locked_store(loaded: LoadedJob, state: Path) -> Iterator[StateStore]:
    with job_lock(state, loaded.job.name), StateStore(state) as store:
        yield store


def run_job(
    path: Path,
    overrides: Mapping[str, str] | None = None,
    *,
    dry_run: bool = False,
    verbose: int = 0,
    state: Path | None = None,
    trigger: Trigger | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """Run the job at ``path``; see the module docstring. Never raises for a step's
    failure (the report carries it); raises ConfigError for a job that cannot start and
    JobLockedError when another run holds the lock.

    ``trigger`` says what started the run (``serve``); its files enter the ledger when the
    run succeeds. Once ``stop`` is set no further step starts and the run ends
    ``interrupted``."""
    trigger = trigger or Trigger(time=datetime.now(UTC).isoformat(timespec="seconds"))
    loaded = load_job(path)
    state_file = state_path(loaded.path, state or loaded.job.state)
    started = datetime.now(UTC)
    log_file = run_log_path(state_file, loaded.job.name, started)
    with _locked_store(loaded, state_file) as store:
        configure_logging(verbose, log_file)
        ctx = RunContext(loaded, dry_run=dry_run, ledger=store, trigger=trigger, stop=stop)
        if not dry_run:
            ctx.pending.extend(trigger.files)  # taken when the run succeeds, as only_new's
        _variables(ctx, overrides or {})
        public = _recordable(loaded, ctx.variables)
        # A dry run is not a run: it is not stored in the history (where it would read as a
        # real, succeeded run) and never writes the ledger; it has no run id.
        run_id = None
        if dry_run:
            log.info("dry run of job %s (%s), not recorded", loaded.job.name, loaded.path)
        else:
            run_id = store.start_run(
                loaded.job.name, job_file=loaded.path, variables=public, transcript=log_file
            )
            ctx.run_id = run_id
            log.info(
                "run %d of job %s (%s), started by %s",
                run_id,
                loaded.job.name,
                loaded.path,
                trigger.kind,
            )
        report = RunReport(
            loaded.job.name,
            run_id,
            "running",
            0,
            dry_run,
            log_file=log_file,
            state_file=state_file,
            trigger=trigger,
        )
        try:
            report.recovered = recover_sources(ctx)
            records, failure = execute_steps(ctx, loaded.job.steps)
        except KeyboardInterrupt:
            if run_id is not None:
                store.finish_run(run_id, "interrupted", 130, "interrupted (Ctrl-C)")
            raise
        except BaseException as err:  # a bug: the run is recorded as failed, then shown
            if run_id is not None:
                store.finish_run(run_id, "failed", 1, err)
            raise
        report.steps, report.error = records, failure
        report.exit_code = exit_code_of(failure)
        report.status = "succeeded" if failure is None else "failed"
        if isinstance(failure, RunStopped):
            report.status, report.exit_code = "interrupted", 130
        if run_id is not None:
            _record(store, run_id, records)
            if failure is None:
                commit_taken(ctx)  # the ledger and the pending source actions, in one transaction
                report.recovered += finish_sources(ctx)
            store.finish_run(run_id, report.status, report.exit_code, failure)
        report.seconds = (datetime.now(UTC) - started).total_seconds()
        which = "dry run" if run_id is None else f"run {run_id}"
        log.info("%s %s (exit code %d)", which, report.status, report.exit_code)
    return report
