"""Running a job: steps in order, precedence, ``if:``, retries, foreach, the run report.

Precedence follows SSIS: a step with ``when: success`` (the default) runs while nothing has
failed unhandled; ``when: failure`` runs only after an unhandled failure (alerts, clean-up);
``when: always`` runs regardless. A failure of a step with ``continue_on_error`` is recorded
but handled. The job's exit code is that of its first unhandled failure (0 when none).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from ..connection import format_validation_error
from ..crashpoints import crash_point
from ..errors import ConfigError, ExitCode, FerrymanError
from ..redact import mask_data
from ..transfer import build_plan
from .context import RunContext
from .file_steps import FILE_STEPS, StepOutcome
from .model import ForeachAction, RunAction, Step

__all__ = ["RunStopped", "StepRecord", "execute_steps"]

log = logging.getLogger("ferryman.jobs")

_OUTPUT_LIMIT = 64 * 1024  #: bytes of a program's stdout/stderr kept in the step result


class RunStopped(FerrymanError):
    """The run was asked to stop (``serve`` shutting down): the steps left were not started."""


@dataclass
class StepRecord:
    name: str
    action: str
    status: str  #: succeeded, failed, skipped
    reason: str = ""
    attempts: int = 0
    started: str = ""
    seconds: float = 0.0
    error: FerrymanError | None = None
    handled: bool = False  #: failed with continue_on_error
    result: dict[str, Any] = field(default_factory=dict, repr=False)  #: argv may hold a secret
    outcome: StepOutcome | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "status": self.status,
            "reason": self.reason or None,
            "attempts": self.attempts,
            "started": self.started or None,
            "seconds": round(self.seconds, 6),
            "error": self.error.to_dict() if self.error else None,
            "handled": self.handled,
            "result": mask_data(self.result),  # a run step's argv, stdout, stderr
        }


def _rendered(ctx: RunContext, step: Step) -> BaseModel:
    """The step's action with its expressions rendered, validated again."""
    action = step.action
    raw = action.model_dump(by_alias=True, mode="python")
    if isinstance(action, ForeachAction):
        raw["items"] = ctx.render(raw["items"], f"{ctx.loaded.at(f'step {step.name}')}: items")
        return action.model_copy(update={"items": raw["items"]})
    rendered = ctx.render(raw, ctx.loaded.at(f"step {step.name}"))
    try:
        return type(action).model_validate(rendered)
    except ValidationError as err:
        raise ConfigError(
            format_validation_error(err, f"step {step.name!r} after expressions")
        ) from None


def _run_program(ctx: RunContext, action: RunAction) -> StepOutcome:
    if ctx.dry_run:
        return StepOutcome({"argv": action.argv, "exit_code": None})
    cwd = ctx.local_path(action.cwd) if action.cwd else ctx.loaded.base
    try:
        done = subprocess.run(  # an argv list from the job file, never a shell
            action.argv,
            cwd=cwd,
            capture_output=True,
            timeout=action.timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(
            f"program {action.argv[0]!r} not found", hint="give its full path or fix PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise FerrymanError(
            f"{action.argv[0]} did not finish within {action.timeout:g} s and was killed",
            hint="raise the step's timeout, or find out why the program hangs",
        ) from None
    stdout = done.stdout[-_OUTPUT_LIMIT:].decode("utf-8", "replace")
    stderr = done.stderr[-_OUTPUT_LIMIT:].decode("utf-8", "replace")
    result = {"argv": action.argv, "exit_code": done.returncode, "stdout": stdout, "stderr": stderr}
    if done.returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or ["(no output on stderr)"]
        error = FerrymanError(
            f"{action.argv[0]} exited with status {done.returncode}: {tail[0]}",
            hint="see the step's stderr in `ferryman show RUN`",
        )
        return StepOutcome(result, error)
    return StepOutcome(result)


def _foreach_items(ctx: RunContext, action: ForeachAction) -> list[Any]:
    items = action.items
    if isinstance(items, list):
        return items
    place = ctx.endpoint(items)  # a glob or directory: its files
    with ctx.backend(place) as backend:
        return [i.source for i in build_plan(backend, place.path).items]


def _foreach(ctx: RunContext, step: Step, action: ForeachAction) -> StepOutcome:
    iterations: list[dict[str, Any]] = []
    nested: list[Any] = []
    items = _foreach_items(ctx, action)
    for item in items:
        ctx.items[action.as_] = item
        try:
            records, failure = execute_steps(ctx, action.steps)
        finally:
            ctx.items.pop(action.as_, None)
        nested.extend(records)
        iterations.append({"item": item, "steps": {r.name: r.result for r in records}})
        if failure is not None:
            result = {"count": len(iterations), "iterations": iterations}
            return StepOutcome(result, failure, steps=nested)
    return StepOutcome({"count": len(items), "iterations": iterations}, steps=nested)


def _dispatch(ctx: RunContext, step: Step) -> StepOutcome:
    action = _rendered(ctx, step)
    name = step.action_name
    ctx.step = step.name
    if name in FILE_STEPS:
        return FILE_STEPS[name](ctx, action)
    if isinstance(action, RunAction):
        return _run_program(ctx, action)
    if isinstance(action, ForeachAction):
        return _foreach(ctx, step, action)
    from .pgp_steps import PGP_STEPS  # noqa: PLC0415 - with the other steps that load on use

    if name in PGP_STEPS:
        return PGP_STEPS[name](ctx, action)
    from .data_steps import DATA_STEPS  # noqa: PLC0415 - database code loads only when used

    return DATA_STEPS[name](ctx, action)


def _should_run(step: Step, failure: FerrymanError | None) -> str | None:
    """None when the step runs, else why it is skipped."""
    if step.when == "success" and failure is not None:
        return "an earlier step failed"
    if step.when == "failure" and failure is None:
        return "runs only after a failure"
    return None


def _attempts(
    ctx: RunContext, step: Step, record: StepRecord, sleep: Callable[[float], None]
) -> None:
    for attempt in range(step.retries + 1):
        record.attempts = attempt + 1
        try:
            outcome = _dispatch(ctx, step)
        except FerrymanError as err:
            outcome = StepOutcome(error=err)
        record.outcome, record.result, record.error = outcome, outcome.result, outcome.error
        if outcome.error is None or isinstance(outcome.error, ConfigError):
            return  # success, or a mistake in the job that no retry can fix
        if attempt < step.retries:
            log.warning(
                "step %s failed (%s); retry %d of %d in %g s",
                step.name,
                outcome.error.message,  # one short line a retry; the hint comes with the end
                attempt + 1,
                step.retries,
                step.retry_delay,
            )
            sleep(step.retry_delay)


def execute_steps(
    ctx: RunContext,
    steps: list[Step],
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[StepRecord], FerrymanError | None]:
    """Run ``steps`` in order; returns their records and the first unhandled failure."""
    records: list[StepRecord] = []
    failure: FerrymanError | None = None
    for step in steps:
        record = StepRecord(step.name, step.action_name, "skipped")
        records.append(record)
        reason = _should_run(step, failure)
        if ctx.stop is not None and ctx.stop.is_set():
            reason = "the run was stopped before this step (ferryman serve is stopping)"
            failure = failure or RunStopped(
                "stopped before step " + step.name,
                hint="ferryman serve was asked to stop; the next run starts over",
            )
        elif reason is None and step.if_ is not None:
            try:
                if not ctx.expressions.truth(
                    step.if_, ctx.scope(), f"{ctx.loaded.at(f'step {step.name}')}: if"
                ):
                    reason = f"if: {step.if_} is false"
            except FerrymanError as err:
                record.status, record.error = "failed", err
                failure = failure or err
                ctx.results[step.name] = {"status": "failed", "error": err.message}
                continue
        if reason is not None:
            record.reason = reason
            ctx.results[step.name] = {"status": "skipped", "reason": reason, "error": None}
            continue
        started = time.monotonic()
        record.started = datetime.now(UTC).isoformat(timespec="seconds")
        _attempts(ctx, step, record, sleep)
        record.seconds = time.monotonic() - started
        if record.error is None:
            record.status = "succeeded"
        else:
            record.status = "failed"
            record.handled = step.continue_on_error
            if not record.handled:
                failure = failure or record.error
        ctx.results[step.name] = {
            **record.result,
            "status": record.status,
            "error": record.error.message if record.error else None,
        }
        log.info("step %s %s in %.2f s", step.name, record.status, record.seconds)
        crash_point(f"after-step:{step.name}")
    return records, failure


def exit_code_of(failure: FerrymanError | None) -> int:
    return int(ExitCode.OK) if failure is None else int(failure.exit_code)
