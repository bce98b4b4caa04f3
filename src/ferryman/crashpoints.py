"""Named points where ferryman's own crash tests kill the process, to prove that a re-run
after a crash at any of them converges (issue 11; docs/jobs.md, "What a crash leaves").

``FERRYMAN_CRASH_AT=NAME:N`` sends SIGKILL to this process the N-th time it reaches the point
NAME (``N`` defaults to 1). Without the variable -- always, outside those tests -- a point
costs one comparison. The points are where an effect outside the process has just happened:

- ``file-done``: a transfer step finished one file (copied, verified, published);
- ``load-committed``: one file's load committed in the target database;
- ``after-step:NAME``: step NAME finished;
- ``uploads-recorded``: a send recorded its uploads in the state file, before uploading;
- ``ledger-committed``: the run's ledger and pending source actions were committed;
- ``source-action``: one source was archived or deleted.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

__all__ = ["ENV_VAR", "armed", "crash_point"]

ENV_VAR = "FERRYMAN_CRASH_AT"


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(ENV_VAR, "")
    if not spec:
        return None
    name, _, count = spec.rpartition(":")
    if name and count.isdigit():
        return name, int(count)
    return spec, 1


_TARGET = _target()
_seen: Counter[str] = Counter()
_lock = threading.Lock()


def armed() -> bool:
    """Whether a crash point is set for this process."""
    return _TARGET is not None


def crash_point(name: str) -> None:
    """Kill this process here if ``FERRYMAN_CRASH_AT`` names this point and visit."""
    if _TARGET is None or _TARGET[0] != name:
        return
    with _lock:
        _seen[name] += 1
        due = _seen[name] == _TARGET[1]
    if due:
        os.kill(os.getpid(), signal.SIGKILL)
