"""What a notification says: built from a run's JSON summary (``RunReport.to_dict()``).

It names the job, the run id, the event and status, the step that failed with its error and
hint, how many files were moved, failed and skipped, the host, and where the run's log and
state file are. Every text passes :func:`ferryman.redact.mask_data`: a registered secret
never leaves in a notification.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from ..redact import mask, mask_data

__all__ = ["TRANSFER_ACTIONS", "Message", "event_of", "file_counts", "message_for"]

#: the steps whose files count as "moved" (no_files: a succeeded run where none moved any)
TRANSFER_ACTIONS = ("send", "receive", "sync")


@dataclass(frozen=True)
class Message:
    """One notification: an e-mail's subject and text, a webhook's JSON body."""

    event: str  #: failure, success, no_files
    subject: str
    text: str
    payload: dict[str, Any]


def file_counts(summary: dict[str, Any]) -> dict[str, int]:
    """Files moved, failed and skipped by the run's transfer steps."""
    counts = {"moved": 0, "failed": 0, "skipped": 0}
    for step in summary.get("steps") or []:
        if step.get("action") not in TRANSFER_ACTIONS:
            continue
        result = step.get("result") or {}
        counts["moved"] += int(result.get("count") or 0)
        counts["failed"] += len(result.get("failed") or [])
        counts["skipped"] += len(result.get("skipped") or [])
    return counts


def event_of(summary: dict[str, Any]) -> str:
    """``failure`` (failed or interrupted), ``no_files`` (succeeded, nothing moved) or
    ``success``."""
    if summary.get("status") != "succeeded":
        return "failure"
    return "no_files" if file_counts(summary)["moved"] == 0 else "success"


def _failed_step(summary: dict[str, Any]) -> dict[str, Any] | None:
    for step in summary.get("steps") or []:
        if step.get("status") == "failed" and not step.get("handled"):
            return dict(step)
    return None


def message_for(summary: dict[str, Any], event: str | None = None) -> Message:
    """The notification for a run summary (the event is computed when not given)."""
    summary = mask_data(summary)
    event = event or event_of(summary)
    job, run_id, status = summary.get("job"), summary.get("run_id"), summary.get("status")
    error = summary.get("error") or {}
    step = _failed_step(summary)
    counts = file_counts(summary)
    host = socket.gethostname()
    run = f"run {run_id}" if run_id is not None else "a run (not recorded)"
    word = {"failure": str(status), "no_files": "succeeded, no files", "success": "succeeded"}
    subject = f"[ferryman] job {job}: {run} {word.get(event, event)} on {host}"
    trigger = summary.get("trigger") or {}
    lines = [
        f"Job:       {job}",
        f"Run:       {run_id if run_id is not None else '-'} ({status}, exit code "
        f"{summary.get('exit_code')})",
        f"Host:      {host}",
        f"Started:   by {trigger.get('kind', 'manual')}"
        + (f" ({trigger.get('count')} file(s))" if trigger.get("count") else ""),
        f"Files:     {counts['moved']} moved, {counts['failed']} failed, "
        f"{counts['skipped']} skipped",
        f"Duration:  {float(summary.get('seconds') or 0):.1f} s",
    ]
    if step is not None:
        lines.append(f"Step:      {step.get('name')} ({step.get('action')})")
    if error:
        lines.append(f"Error:     {error.get('message')}")
        if error.get("hint"):
            lines.append(f"Hint:      {error.get('hint')}")
    lines.append(f"Log:       {summary.get('log_file') or '-'}")
    lines.append(f"State:     {summary.get('state_file') or '-'}")
    if run_id is not None:
        lines.append(f"Details:   ferryman show {run_id} --state {summary.get('state_file')}")
    payload = {
        "event": event,
        "job": job,
        "run_id": run_id,
        "status": status,
        "exit_code": summary.get("exit_code"),
        "host": host,
        "seconds": summary.get("seconds"),
        "step": step.get("name") if step else None,
        "error": {"message": error.get("message"), "hint": error.get("hint")} if error else None,
        "files": counts,
        "trigger": {k: trigger.get(k) for k in ("kind", "time", "count", "schedule", "path")},
        "log_file": summary.get("log_file"),
        "state_file": summary.get("state_file"),
        "steps": [
            {"name": s.get("name"), "status": s.get("status")} for s in summary.get("steps") or []
        ],
        "text": mask("\n".join(lines)),
    }
    return Message(event, mask(subject), mask("\n".join(lines) + "\n"), mask_data(payload))
