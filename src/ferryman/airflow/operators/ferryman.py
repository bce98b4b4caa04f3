"""``FerrymanTransferOperator`` (get/put/copy/sync) and ``FerrymanJobOperator`` (job files)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from ...backends import open_backend
from ...backends.base import Backend, Entry
from ...backends.local import LocalBackend
from ...cli.options import retrying
from ...connection import Connection, login_relative
from ...errors import ExitCode, FerrymanError
from ...jobs.run import run_job
from ...retry import RetryPolicy
from ...transfer import (
    Filters,
    IfExists,
    SourceAction,
    Summary,
    SyncOptions,
    TransferOptions,
    build_plan,
    sync,
    transfer_plan,
)
from ..hooks.ferryman import FerrymanHook

__all__ = ["FerrymanJobError", "FerrymanJobOperator", "FerrymanTransferOperator"]


class FerrymanJobError(AirflowException):
    """A ferryman transfer or job failed; the text is ferryman's, with its exit code's name."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _meaning(code: int) -> str:
    try:
        return ExitCode(code).name.lower().replace("_", " ")
    except ValueError:
        return "failure"


def _failed(err: FerrymanError, what: str) -> FerrymanJobError:
    code = int(err.exit_code)
    return FerrymanJobError(f"{what} failed (exit code {code}, {_meaning(code)}): {err}", code)


class FerrymanTransferOperator(BaseOperator):
    """Copy (``mode="copy"``) or mirror (``mode="sync"``) files between two places, each a
    ferryman connection (``*_conn_id``) or, without one, the worker's local disk: a download,
    an upload, or server to server through the worker.

    ``source`` is a file, a glob (``/outbound/*.csv``) or, with ``recursive`` (or in sync
    mode), a directory; ``/~/`` or ``~/`` at its start means the login directory. Files go
    into ``destination`` when it is a directory or ends with ``/``. Every copy is written to a
    temporary name, verified (size, and the server's hash where it offers one), then renamed;
    retries resume. ``after="delete"``/``"move"`` (to ``move_to``) acts on each source file
    once its copy is verified. Returns (XCom) ferryman's JSON summary; the task fails when a
    file failed, with ferryman's message and hint."""

    template_fields: Sequence[str] = (
        "source",
        "destination",
        "source_conn_id",
        "destination_conn_id",
        "include",
        "exclude",
        "newer_than",
        "older_than",
        "move_to",
    )

    def __init__(
        self,
        *,
        source: str,
        destination: str,
        source_conn_id: str | None = None,
        destination_conn_id: str | None = None,
        mode: str = "copy",
        recursive: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        newer_than: str | None = None,
        older_than: str | None = None,
        min_size: str | None = None,
        max_size: str | None = None,
        if_exists: str | None = None,
        parallel: int | None = None,
        verify_hash: bool = True,
        preserve_mtime: bool = False,
        after: str = "keep",
        move_to: str | None = None,
        stable_for: float = 0.0,
        delete: bool = False,
        max_delete_share: float = 0.5,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("copy", "sync"):
            raise ValueError(f"mode must be 'copy' or 'sync', not {mode!r}")
        self.source, self.destination = source, destination
        self.source_conn_id, self.destination_conn_id = source_conn_id, destination_conn_id
        self.mode, self.recursive = mode, recursive
        self.include, self.exclude = list(include), list(exclude)
        self.newer_than, self.older_than = newer_than, older_than
        self.min_size, self.max_size = min_size, max_size
        default = IfExists.FAIL if mode == "copy" else IfExists.DIFFERENT
        self.if_exists = IfExists(if_exists) if if_exists else default
        self.after = SourceAction(after)
        self.parallel, self.verify_hash, self.preserve_mtime = parallel, verify_hash, preserve_mtime
        self.move_to, self.stable_for = move_to, stable_for
        self.delete, self.max_delete_share, self.dry_run = delete, max_delete_share, dry_run

    def _endpoint(
        self, conn_id: str | None, path: str, stack: ExitStack
    ) -> tuple[Backend, str, Connection | None]:
        if conn_id is None:
            return LocalBackend(), str(Path(path).expanduser()), None
        settings = FerrymanHook(conn_id).get_settings()
        backend = stack.enter_context(open_backend(settings))
        return backend, login_relative(path), settings

    def _options(self, conn: Connection | None) -> TransferOptions:
        move_to = self.move_to
        if move_to is not None and self.source_conn_id is not None:
            move_to = login_relative(move_to)
        return TransferOptions(
            if_exists=self.if_exists,
            parallel=self.parallel,
            retry=RetryPolicy(conn.retries, conn.retry_delay) if conn else RetryPolicy(),
            chunk_size=conn.chunk_size if conn else 256 * 1024,
            preserve_mtime=self.preserve_mtime,
            verify_hash=self.verify_hash,
            after=self.after,
            move_to=move_to,
            stable_for=self.stable_for,
            dry_run=self.dry_run,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        filters = Filters.parse(
            include=self.include,
            exclude=self.exclude,
            min_size=self.min_size,
            max_size=self.max_size,
            newer_than=self.newer_than,
            older_than=self.older_than,
        )
        what = f"ferryman {self.mode} {self.source} -> {self.destination}"
        try:
            with ExitStack() as stack:
                src, src_path, src_conn = self._endpoint(self.source_conn_id, self.source, stack)
                dst, dst_path, dst_conn = self._endpoint(
                    self.destination_conn_id, self.destination, stack
                )
                options = self._options(src_conn or dst_conn)
                call = _lister(src_conn)
                if self.mode == "sync":
                    guard = SyncOptions(delete=self.delete, max_delete_share=self.max_delete_share)
                    summary = sync(
                        src, src_path, dst, dst_path, options, guard, filters=filters, call=call
                    )
                else:
                    plan = build_plan(
                        src, src_path, recursive=self.recursive, filters=filters, call=call
                    )
                    summary = transfer_plan(plan, src, dst, dst_path, options)
        except FerrymanError as err:
            raise _failed(err, what) from None
        return _checked(summary, what)


def _lister(conn: Connection | None) -> Callable[[str, Callable[[], list[Entry]]], list[Entry]]:
    def call(what: str, action: Callable[[], list[Entry]]) -> list[Entry]:
        return retrying(conn, what, action) if conn is not None else action()

    return call


def _checked(summary: Summary, what: str) -> dict[str, Any]:
    data = summary.to_dict()
    failures = summary.failures
    failed = failures[0] if failures else summary.refusal()
    if failed is not None:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise _failed(failed, what + more)
    return data


@contextmanager
def _ferryman_logging() -> Iterator[None]:
    """Give back the "ferryman" logger as it was: a run routes it to the job's run log and
    stops it propagating, which must not outlast the task in a worker running many."""
    logger = logging.getLogger("ferryman")
    before = (logger.level, logger.propagate, list(logger.handlers))
    try:
        yield
    finally:
        for handler in list(logger.handlers):
            if handler not in before[2]:
                logger.removeHandler(handler)
                handler.close()
        logger.setLevel(before[0])
        logger.propagate = before[1]


class FerrymanJobOperator(BaseOperator):
    """Run a ferryman job file (docs/jobs.md): its steps, precedence and foreach, its history
    and only-new ledger in ferryman's state file (``state_file``, or the job's own), as
    ``ferryman run`` does. ``variables`` (templated) set the job's variables, as ``--var``.

    Returns (XCom) the JSON run summary (``ferryman run --json``); a failed run fails the task
    with ferryman's error text and the meaning of its exit code."""

    template_fields: Sequence[str] = ("job_file", "variables", "state_file")

    def __init__(
        self,
        *,
        job_file: str,
        variables: dict[str, Any] | None = None,
        state_file: str | None = None,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_file = job_file
        self.variables = dict(variables or {})
        self.state_file = state_file
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        overrides = {str(k): str(v) for k, v in self.variables.items()}
        state = Path(self.state_file).expanduser().absolute() if self.state_file else None
        what = f"ferryman job {self.job_file}"
        try:
            with _ferryman_logging():
                report = run_job(Path(self.job_file), overrides, dry_run=self.dry_run, state=state)
        except FerrymanError as err:  # a job that cannot start (invalid file, locked)
            raise _failed(err, what) from None
        summary = report.to_dict()
        for step in report.steps:
            self.log.info("%s %s (%s)", step.status, step.name, step.action)
        if report.error is not None:
            raise _failed(report.error, f"ferryman job {report.job!r} run {report.run_id}")
        self.log.info("job %s run %s %s", report.job, report.run_id, report.status)
        return summary
