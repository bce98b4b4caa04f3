"""What a transfer did, file by file, and the run summary (the ``--json`` document)."""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass, field

from ..errors import FerrymanError, ProtocolError
from .plan import Skipped

__all__ = ["FileOutcome", "Status", "Summary"]


class Status(enum.StrEnum):
    COPIED = "copied"
    SKIPPED = "skipped"  #: by the overwrite policy, or a file still being written
    FAILED = "failed"
    PLANNED = "planned"  #: --dry-run: would be copied
    DELETED = "deleted"  #: sync --delete removed it from the destination


@dataclass
class FileOutcome:
    source: str
    target: str
    status: Status
    reason: str = ""
    bytes: int = 0  #: bytes moved (less than ``size`` after a resume)
    size: int | None = None
    seconds: float = 0.0
    retries: int = 0
    verified: str | None = None  #: "size", "size+sha256", ...
    resumed_from: int = 0
    source_action: str | None = None  #: "deleted" or "moved to ..." after a verified copy
    error: FerrymanError | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "target": self.target,
            "status": str(self.status),
            "reason": self.reason or None,
            "bytes": self.bytes,
            "size": self.size,
            "seconds": round(self.seconds, 6),
            "retries": self.retries,
            "verified": self.verified,
            "resumed_from": self.resumed_from,
            "source_action": self.source_action,
            "error": self.error.to_dict() if self.error else None,
        }


@dataclass
class Summary:
    """Every file's outcome plus what the plan skipped; ``ok`` when nothing failed."""

    dry_run: bool = False
    files: list[FileOutcome] = field(default_factory=list)
    skipped_names: list[Skipped] = field(default_factory=list)
    #: failures that are not one file's (a listing, the deletion guard)
    errors: list[FerrymanError] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, outcome: FileOutcome) -> None:
        with self._lock:
            self.files.append(outcome)

    def finish(self) -> Summary:
        self.seconds = time.monotonic() - self.started
        return self

    def count(self, status: Status | str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failures(self) -> list[FerrymanError]:
        return self.errors + [f.error for f in self.files if f.error is not None]

    @property
    def ok(self) -> bool:
        return not self.failures and not any(s.unsafe for s in self.skipped_names)

    def refusal(self) -> FerrymanError | None:
        """The run's error for the names it refused (hostile, or too long for the local file
        system) when nothing else failed; None when none was refused."""
        refused = [s for s in self.skipped_names if s.unsafe]
        if not refused:
            return None
        hostile = sum(1 for s in refused if not s.local)
        local = len(refused) - hostile
        if not local:
            what = f"{hostile} unsafe name(s) from the server"
        elif not hostile:
            what = f"{local} name(s) from the server that the local file system cannot hold"
        else:
            what = (
                f"{len(refused)} name(s) from the server ({hostile} unsafe, {local} too long "
                "for the local file system)"
            )
        hints = ["the listing had names that could write outside the destination"] * bool(hostile)
        if local:
            hints.append("get such a file alone under a shorter local name")
        return ProtocolError(f"refused {what}; the other files were copied", hint="; ".join(hints))

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_dict(self) -> dict[str, object]:
        counts = {str(s): self.count(s) for s in Status}
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "counts": counts,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 6),
            "files": [f.to_dict() for f in self.files],
            "skipped_names": [s.to_dict() for s in self.skipped_names],
            "errors": [e.to_dict() for e in self.errors],
        }
