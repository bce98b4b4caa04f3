"""ferryman's state: run history, step results, per-file records and the only-new ledger.

Everything lives in one SQLite file (stdlib ``sqlite3``; WAL; foreign keys; schema versioned
with ``PRAGMA user_version`` and migrated forward only), by default
``$XDG_DATA_HOME/ferryman/state.db`` (see :func:`state_path`), created private to the user.
Beside it, ``<state>.locks/`` holds one ``flock`` per job (:func:`job_lock`), so that two runs
of one job never overlap.

Typical use by the job runner::

    path = state_path(job_file, job.state)
    with job_lock(path, job.name), StateStore(path) as store:
        run_id = store.start_run(job.name, job_file=job_file, variables=public_vars)
        fresh = store.filter_new(job.name, "ftpes://orders@host:21", listing)
        ...  # transfer, store.record_files(run_id, step, summary.files), store.record_step(...)
        store.remember(job.name, "ftpes://orders@host:21", taken, run_id)  # on success only
        store.finish_run(run_id, "succeeded", 0)

Modules: :mod:`.location` (where the file is), :mod:`.schema` (versions, migrations),
:mod:`.db` (connection, transactions, thread safety, error translation), :mod:`.history`
(runs, steps, files, interrupted runs), :mod:`.ledger` (only-new; its contract), :mod:`.effects`
(source actions and uploads, journaled so that re-runs converge), :mod:`.lock`.
"""

from __future__ import annotations

from .effects import PendingSourceAction, Publication
from .history import FileOutcomeLike
from .ledger import LedgerEntry
from .location import ENV_VAR, state_path
from .lock import JobLock, LockOwner, job_lock, lock_path, safe_job_name
from .records import (
    FileRecord,
    RunDetail,
    RunStatus,
    RunSummary,
    StepResult,
    StepStatus,
    TakenFile,
)
from .schema import SCHEMA_VERSION
from .store import StateStore

__all__ = [
    "ENV_VAR",
    "SCHEMA_VERSION",
    "FileOutcomeLike",
    "FileRecord",
    "JobLock",
    "LedgerEntry",
    "LockOwner",
    "PendingSourceAction",
    "Publication",
    "RunDetail",
    "RunStatus",
    "RunSummary",
    "StateStore",
    "StepResult",
    "StepStatus",
    "TakenFile",
    "job_lock",
    "lock_path",
    "safe_job_name",
    "state_path",
]
