"""One run of a job at a time: an exclusive ``flock`` per job, beside the state file.

The lock of job ``nightly`` with state file ``/x/state.db`` is ``/x/state.db.locks/nightly.lock``
(names are sanitized: anything but letters, digits, ``_`` and ``-`` becomes ``_``, and a
changed or long name gets a hash of the original, so two names never share a lock and no name
can reach outside the lock directory).

``flock(LOCK_EX | LOCK_NB)`` is held on the open file for the whole run. The kernel releases it
when the process ends in any way, SIGKILL and crashes included: a stale lock cannot exist, and
nothing ever needs deleting (the lock files are kept on purpose -- removing a lock file while
another process waits on it would let two runs in). The holder writes its pid, host and start
time into the file so that a refused run can say who holds the lock. The file descriptor is
not inherited by programs the run starts.

``flock`` is per host on most network file systems: runs on two machines sharing a state file
over NFS may not exclude each other.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, JobLockedError
from .location import ensure_private_dir
from .records import now_iso

__all__ = ["JobLock", "LockOwner", "job_lock", "lock_path", "safe_job_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 80


def safe_job_name(job_name: str) -> str:
    """A file name for ``job_name``: only ``[A-Za-z0-9_-]``, unique per job name."""
    if not job_name:
        raise ConfigError("a job needs a name to be locked", hint="give the job a `name:`")
    safe = _UNSAFE.sub("_", job_name)
    if safe != job_name or len(safe) > _MAX_NAME:
        digest = hashlib.sha256(job_name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        safe = f"{safe[:_MAX_NAME]}-{digest}"
    return safe


def lock_path(state_file: Path, job_name: str) -> Path:
    """Where the lock of ``job_name`` lives for ``state_file``."""
    state_file = Path(state_file)
    return state_file.with_name(state_file.name + ".locks") / f"{safe_job_name(job_name)}.lock"


@dataclass(frozen=True)
class LockOwner:
    """Who holds a job's lock, as written into the lock file."""

    job: str
    pid: int
    host: str
    since: str

    def to_dict(self) -> dict[str, object]:
        return {"job": self.job, "pid": self.pid, "host": self.host, "since": self.since}


@dataclass(frozen=True)
class JobLock:
    """A held job lock (valid inside :func:`job_lock`)."""

    path: Path
    owner: LockOwner


def _read_owner(fd: int) -> LockOwner | None:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode("utf-8"))
        return LockOwner(str(data["job"]), int(data["pid"]), str(data["host"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # empty (the holder is just writing it) or not ours


def _locked_error(job_name: str, path: Path, owner: LockOwner | None) -> JobLockedError:
    if owner is None:
        who = "another process"
        what = "wait for it to finish; the lock is released when that process ends"
    else:
        who = f"process {owner.pid} on {owner.host} (since {owner.since})"
        what = (
            f"wait for that run to finish, or stop it (on {owner.host}: kill {owner.pid}); "
            "the lock is released when that process ends, even if it crashes"
        )
    return JobLockedError(
        f"job {job_name!r} is already running: {who} holds its lock {path}",
        hint=f"{what}; do not delete the lock file",
    )


@contextmanager
def job_lock(state_file: Path, job_name: str) -> Iterator[JobLock]:
    """Hold the lock of ``job_name`` for the ``with`` block, or raise :class:`JobLockedError`.

    Exclusive across processes and across threads of one process (each call opens the file
    anew, and ``flock`` locks belong to the open file).
    """
    path = lock_path(state_file, job_name)
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise ConfigError(
            f"cannot open the lock file {path} of job {job_name!r}: {err.strerror or err}",
            hint="make the directory beside the state file writable by this user, or "
            "configure another state file",
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError(
                    f"cannot lock {path} for job {job_name!r}: {err.strerror or err}",
                    hint="the file system of the state file may not support locks; "
                    "configure a state file on a local disk",
                ) from None
            raise _locked_error(job_name, path, _read_owner(fd)) from None
        owner = LockOwner(job_name, os.getpid(), socket.gethostname(), now_iso())
        data = json.dumps(owner.to_dict()).encode("utf-8") + b"\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        try:
            yield JobLock(path, owner)
        finally:
            os.ftruncate(fd, 0)  # nobody holds it now; closing releases the flock
    finally:
        os.close(fd)
