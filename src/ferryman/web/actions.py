"""The dashboard's actions -- run now, enable, disable, retry -- through the scheduler.

Who may act is checked before (:mod:`.auth`, :mod:`.server`); here the action itself.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote

from ..jobs.run import HIDDEN_VARIABLE, parse_var
from ..redact import MASK
from .data import DashboardData, JobSource

__all__ = ["Refused", "Scheduling", "act"]


class Scheduling(JobSource, Protocol):
    """The scheduler's API the dashboard uses (:class:`ferryman.serve.scheduler.Scheduler`)."""

    def enable(self, name: str) -> None: ...
    def disable(self, name: str) -> None: ...
    def run_now(self, name: str, variables: dict[str, str] | None = None) -> None: ...


class Refused(Exception):
    """A request answered with ``status`` and ``message`` (not found, not allowed)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def act(scheduler: Scheduling, data: DashboardData, route: str, form: dict[str, Any]) -> str:
    """Do the action at ``route`` (``/jobs/NAME/run`` ...); what was done, in words."""
    if match := re.fullmatch(r"/jobs/([^/]+)/(run|enable|disable)", route):
        name, verb = unquote(match[1]), match[2]
        if verb == "enable":
            scheduler.enable(name)
            return f"job {name} enabled"
        if verb == "disable":
            scheduler.disable(name)
            return f"job {name} disabled"
        variables = _variables(form.get("variables"))
        scheduler.run_now(name, variables)
        return f"run of job {name} queued" + (
            f" with {', '.join(sorted(variables))}" if variables else ""
        )
    if match := re.fullmatch(r"/runs/(\d+)/retry", route):
        run = data.run(int(form.get("state") or 0), int(match[1]))
        if run is None:
            raise Refused(HTTPStatus.NOT_FOUND, f"there is no run {match[1]}")
        if run["status"] not in ("failed", "interrupted"):
            raise ValueError(f"run {match[1]} {run['status']}: only a failed run is retried")
        variables = _replayable(run["variables"] or {})
        scheduler.run_now(run["job"], variables)
        return f"run {match[1]} of job {run['job']} retried (a new run is queued)"
    raise Refused(HTTPStatus.NOT_FOUND, f"no action {route}")


def _replayable(recorded: dict[str, Any]) -> dict[str, str]:
    """The recorded variables of a run to run it again with: not those the history hid or
    masked (the job computes them again, from the environment, as the first time)."""
    return {
        name: str(value)
        for name, value in recorded.items()
        if value != HIDDEN_VARIABLE and MASK not in str(value)
    }


def _variables(given: Any) -> dict[str, str]:
    """NAME=VALUE lines (a form's text area) or a JSON object."""
    if isinstance(given, dict):
        return {str(k): str(v) for k, v in given.items()}
    found: dict[str, str] = {}
    for line in str(given or "").splitlines():
        if line.strip():
            name, value = parse_var(line.strip())
            found[name] = value
    return found
