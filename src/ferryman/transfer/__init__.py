"""The operations layer: plans, policies, safe copies, the connection pool, sync.

It knows only the backend interface (``ferryman.backends.base``), never ftplib or asyncssh,
so every operation works the same over FTP, FTPS, SFTP, memory and the local disk.
"""

from __future__ import annotations

from .copy import PARTIAL_SUFFIX, CopyResult, copy_file
from .engine import Events, Job, SourceAction, TransferOptions, ensure_directory, run_jobs
from .filters import Filters, parse_age_or_time, parse_size
from .operations import destination_jobs, transfer, transfer_plan
from .plan import Plan, PlanItem, Skipped, build_plan, split_glob
from .policy import Decision, IfExists, decide
from .report import FileOutcome, Status, Summary
from .sync import DeletionGuardError, SyncOptions, sync
from .transform import StreamTransform, TransformedStream

__all__ = [
    "PARTIAL_SUFFIX",
    "CopyResult",
    "Decision",
    "DeletionGuardError",
    "Events",
    "FileOutcome",
    "Filters",
    "IfExists",
    "Job",
    "Plan",
    "PlanItem",
    "Skipped",
    "SourceAction",
    "Status",
    "StreamTransform",
    "Summary",
    "SyncOptions",
    "TransferOptions",
    "TransformedStream",
    "build_plan",
    "copy_file",
    "decide",
    "destination_jobs",
    "ensure_directory",
    "parse_age_or_time",
    "parse_size",
    "run_jobs",
    "split_glob",
    "sync",
    "transfer",
    "transfer_plan",
]
