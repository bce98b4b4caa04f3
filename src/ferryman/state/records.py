"""What the history API returns: plain, frozen records with ``to_dict()`` for ``--json``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FileRecord",
    "RunDetail",
    "RunStatus",
    "RunSummary",
    "StepResult",
    "StepStatus",
    "TakenFile",
    "iso",
    "now_iso",
    "seconds_between",
]


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  #: its process ended (killed, crashed) without finishing it


class StepStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


def iso(moment: datetime | str | None) -> str | None:
    """UTC ISO 8601 text of ``moment`` (naive means UTC); ISO text is normalized to UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            raise ValueError(f"{moment!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def seconds_between(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    delta = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    return round(delta.total_seconds(), 6)


@dataclass(frozen=True)
class RunSummary:
    """One run, as ``ferryman history`` lists it."""

    id: int
    job: str
    job_file: str | None
    status: str
    started: str
    finished: str | None
    exit_code: int | None
    error: str | None
    host: str
    pid: int
    files: int = 0  #: file records of all its steps
    failed_files: int = 0
    bytes: int = 0  #: bytes moved, all steps

    @property
    def seconds(self) -> float | None:
        return seconds_between(self.started, self.finished)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "job_file": self.job_file,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "seconds": self.seconds,
            "exit_code": self.exit_code,
            "error": self.error,
            "host": self.host,
            "pid": self.pid,
            "files": self.files,
            "failed_files": self.failed_files,
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class StepResult:
    """One step of a run (a step inside ``foreach`` appears once per iteration)."""

    position: int
    name: str
    action: str | None
    status: str
    reason: str | None
    started: str | None
    finished: str | None
    seconds: float | None
    attempts: int
    error: str | None
    hint: str | None
    exit_code: int | None
    result: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "name": self.name,
            "action": self.action,
            "status": self.status,
            "reason": self.reason,
            "started": self.started,
            "finished": self.finished,
            "seconds": self.seconds,
            "attempts": self.attempts,
            "error": (
                {"message": self.error, "hint": self.hint, "exit_code": self.exit_code}
                if self.error is not None
                else None
            ),
            "result": self.result,
        }


@dataclass(frozen=True)
class FileRecord:
    """What one step did to one file."""

    step: str
    source: str
    target: str
    status: str
    reason: str | None
    bytes: int
    seconds: float
    retries: int
    verified: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "source": self.source,
            "target": self.target,
            "status": self.status,
            "reason": self.reason,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "retries": self.retries,
            "verified": self.verified,
            "error": self.error,
        }


@dataclass(frozen=True)
class RunDetail:
    """A run with its steps and files, as ``ferryman show RUN`` prints it."""

    run: RunSummary
    variables: dict[str, Any]
    transcript: str | None
    steps: list[StepResult]
    files: list[FileRecord]
    #: files per status over the whole run (also when ``files`` was limited)
    file_counts: dict[str, int] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return self.run.bytes

    @property
    def errors(self) -> list[str]:
        """The run's error, then every failed step's and file's, in order."""
        found = [self.run.error] if self.run.error else []
        found += [f"step {s.name}: {s.error}" for s in self.steps if s.error]
        found += [f"{f.source}: {f.error}" for f in self.files if f.error]
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.run.to_dict(),
            "variables": self.variables,
            "transcript": self.transcript,
            "file_counts": dict(self.file_counts),
            "steps": [s.to_dict() for s in self.steps],
            "files": [f.to_dict() for f in self.files],
        }


@dataclass(frozen=True)
class TakenFile:
    """One ledger entry: a file ``only_new`` will not take again."""

    job: str
    connection: str
    path: str
    size: int | None
    mtime: str | None
    run_id: int | None
    taken: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "connection": self.connection,
            "path": self.path,
            "size": self.size,
            "mtime": self.mtime,
            "run_id": self.run_id,
            "taken": self.taken,
        }
