"""One run of a job for ``serve``, in a child process: ``python -m ferryman.serve.child``.

Reads the request (job file, variables, state file, trigger) as JSON on stdin, runs it with
:func:`ferryman.jobs.run.run_job` -- the same runner, state file, lock and history as
``ferryman run`` -- and writes the run's JSON summary as one line on stdout.

Each run has a process of its own so that its run log, its registered secrets and its memory
end with it, and so that ``serve`` can stop it: SIGTERM starts no further step (the run ends
``interrupted``), SIGINT interrupts the step running (``interrupted`` too), SIGKILL is the
last resort (the next opening of the state file marks the run ``interrupted``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import FerrymanError, JobLockedError
from ..jobs.context import Trigger
from ..jobs.run import run_job

__all__ = ["main"]


def _not_run(request: dict[str, Any], status: str, error: FerrymanError) -> dict[str, Any]:
    return {
        "ok": False,
        "job": request.get("name"),
        "run_id": None,
        "status": status,
        "exit_code": int(error.exit_code),
        "error": error.to_dict(),
        "steps": [],
        "trigger": Trigger.from_dict(request.get("trigger") or {}).scope(),
    }


def run(request: dict[str, Any]) -> dict[str, Any]:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    state = request.get("state")
    try:
        report = run_job(
            Path(request["job"]),
            request.get("variables") or {},
            state=Path(state) if state else None,
            trigger=Trigger.from_dict(request.get("trigger") or {}),
            stop=stop,
        )
    except JobLockedError as err:
        return _not_run(request, "locked", err)
    except FerrymanError as err:
        return _not_run(request, "not started", err)
    except KeyboardInterrupt:  # SIGINT from serve: run_job recorded the run as interrupted
        return _not_run(request, "interrupted", FerrymanError("interrupted during a step"))
    return report.to_dict()


def main() -> None:
    request = json.loads(sys.stdin.read())
    summary = run(request)
    sys.stdout.write(json.dumps(summary, default=str) + "\n")
    sys.stdout.flush()
    # no waiting at exit for transfer threads a SIGINT left behind: their files are not
    # published (temporary names), and the run is recorded already
    os._exit(0)


if __name__ == "__main__":
    main()
