"""A run started by ``serve``: a child process (:mod:`.child`), a thread that waits for it,
and the ways to stop it (:meth:`RunProcess.stop_after_step`, :meth:`interrupt`, :meth:`kill`).

When the child ends without a summary (killed), the run is looked up in the state file by
the child's pid, and the state file -- which marks runs of dead processes ``interrupted``
when it is opened -- says how it ended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..jobs.context import Trigger
from ..redact import mask
from ..state import StateStore

__all__ = ["RunProcess", "RunRequest"]

log = logging.getLogger("ferryman.serve")

#: lines of a child's stderr passed on to serve's log, at most (the run log has everything)
_STDERR_LINES = 20


@dataclass
class RunRequest:
    """A run to start: which job, why, with which variables."""

    name: str
    path: Path
    state: Path  #: the job's state file
    trigger: Trigger
    variables: dict[str, str] = field(default_factory=dict)
    state_override: Path | None = None  #: serve --state
    #: called with the summary when the run ends (file triggers free their files)
    on_done: Callable[[dict[str, Any]], None] | None = None


class RunProcess:
    """One child process running one request; ``finished`` is called from its thread."""

    def __init__(
        self,
        request: RunRequest,
        finished: Callable[[RunProcess, dict[str, Any]], None],
        python: str = sys.executable,
    ) -> None:
        self.request = request
        self.finished = finished
        self.started = time.monotonic()
        self.summary: dict[str, Any] | None = None
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the waiting thread
        payload = {
            "name": request.name,
            "job": str(request.path),
            "variables": request.variables,
            "state": str(request.state_override) if request.state_override else None,
            "trigger": request.trigger.to_dict(),
        }
        self.proc = subprocess.Popen(
            [python, "-m", "ferryman.serve.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a Ctrl-C at serve's terminal is serve's to handle
            close_fds=True,
        )
        self._payload = json.dumps(payload).encode("utf-8")
        self.thread = threading.Thread(target=self._wait, name=f"run-{request.name}", daemon=True)
        self.thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait(self) -> None:
        try:
            out, _ = self.proc.communicate(self._payload)
        except (OSError, ValueError):
            out = b""
            self.proc.wait()
        summary = self._summary(out)
        self._pass_on_stderr()
        self.summary = summary
        self.finished(self, summary)

    def _summary(self, out: bytes) -> dict[str, Any]:
        for line in reversed(out.decode("utf-8", "replace").splitlines()):
            if line.startswith("{"):
                try:
                    data: dict[str, Any] = json.loads(line)
                    return data
                except ValueError:
                    break
        return self._from_state()

    def _from_state(self) -> dict[str, Any]:
        """The run of this child's pid, as the state file has it (it marks the run of a
        dead process interrupted when opened)."""
        request = self.request
        summary: dict[str, Any] = {
            "job": request.name,
            "run_id": None,
            "status": "interrupted",
            "exit_code": self.proc.returncode,
            "error": {
                "message": f"the run's process ended with status {self.proc.returncode}",
                "hint": "see the run log",
            },
            "steps": [],
            "trigger": request.trigger.scope(),
            "state_file": str(request.state),
            "seconds": time.monotonic() - self.started,
        }
        try:
            with StateStore(request.state) as store:
                for run in store.runs(request.name, limit=20):
                    if run.pid == self.pid:
                        summary.update(run_id=run.id, status=run.status, exit_code=run.exit_code)
                        detail = store.run_detail(run.id)
                        summary["log_file"] = str(detail.transcript) if detail.transcript else None
                        break
        except Exception as err:  # the summary still goes out without the run id
            log.warning("cannot read the state file %s: %s", request.state, err)
        return summary

    def _pass_on_stderr(self) -> None:
        with self._stderr:
            self._stderr.seek(0)
            lines = self._stderr.read().decode("utf-8", "replace").splitlines()
        for line in [x for x in lines if x.strip()][-_STDERR_LINES:]:
            log.warning(
                "job %s: %s",
                self.request.name,
                mask(line),
                extra={"event": "run_output", "job": self.request.name},
            )

    # --- stopping ------------------------------------------------------------------------

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def stop_after_step(self) -> None:
        """Start no further step (SIGTERM): the run ends interrupted after the step running."""
        self._signal(signal.SIGTERM)

    def interrupt(self) -> None:
        """Interrupt the step running (SIGINT): the run is recorded interrupted."""
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the run to end (its summary handled)."""
        self.thread.join(max(0.0, timeout))
        return not self.thread.is_alive()
