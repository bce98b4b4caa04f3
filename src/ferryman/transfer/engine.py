"""Run a plan: many safe copies on a pool of connections per side.

Each worker thread holds one connection to the source and one to the destination, made from
the endpoint's first connection (``Backend.sibling``) and reused for every file it takes. A
connection the server refuses (``421 too many connections``, ``530 too many users``, SSH
``MaxSessions``) retires that worker and the others carry on: the pool shrinks to what the
server allows instead of failing. The run ends when the queue is empty and no worker holds a
job: a worker still connecting then (a server at its user limit that holds extra connections
without a greeting) is not waited for, and closes its connections when its connect returns.
Per file: the overwrite policy decides, the copy runs with back-off retries that continue the
temporary file from where it stopped when the source is unchanged (REST / SFTP offsets), and
only after a verified copy is the source deleted or moved.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Protocol

from ..backends.base import Backend, Entry, ReadStream
from ..errors import FerrymanError, ResumeRefusedError
from ..retry import RetryPolicy
from .copy import CopyResult, discard_partial, partial_name, source_tag
from .directories import TargetIndex, archive, ensure_directory, stat_or_none
from .inflight import choose_parallel
from .plan import PlanItem
from .policy import Decision, IfExists, decide
from .readahead import opens_ahead, workers_and_window
from .report import FileOutcome, Status, Summary
from .segments import DEFAULT_SEGMENT_MIN_SIZE, copy_in_segments
from .sides import Lender, RunOver, Side
from .throttle import Bandwidth
from .transform import StreamTransform

__all__ = [
    "Events",
    "Job",
    "Lender",
    "SourceAction",
    "TransferOptions",
    "archive",
    "ensure_directory",
    "run_jobs",
]

log = logging.getLogger("ferryman.transfer")


class SourceAction(enum.StrEnum):
    """What happens to a source file after its copy is verified."""

    KEEP = "keep"
    DELETE = "delete"
    MOVE = "move"  #: to ``TransferOptions.move_to`` (an archive directory on the source side)


@dataclass(frozen=True)
class TransferOptions:
    if_exists: IfExists = IfExists.FAIL
    #: files in flight at once; None: chosen from the round trip (``transfer.inflight``)
    parallel: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    chunk_size: int = 256 * 1024
    preserve_mtime: bool = False
    verify_hash: bool = True
    after: SourceAction = SourceAction.KEEP
    move_to: str | None = None
    #: take a source file only when its size and time stay the same for this many seconds
    stable_for: float = 0.0
    #: text in FTP's ASCII mode (TYPE A): line ends converted, never resumed
    ascii: bool = False
    dry_run: bool = False
    #: bytes changed on the way (encrypt, decrypt: ``transfer.transform``); never resumed
    transform: StreamTransform | None = None
    #: a large download in this many parallel segments (``transfer.segments``); 1: off, 0: auto
    #: (several segments when the round trip is long, one stream otherwise)
    segments: int = 0
    #: the smallest file that is segmented
    segment_min_size: int = DEFAULT_SEGMENT_MIN_SIZE
    #: bytes per second for all transfers together, and for each one (``transfer.throttle``)
    bwlimit: float | None = None
    bwlimit_per_file: float | None = None


@dataclass(frozen=True, slots=True)
class Job:
    item: PlanItem
    target: str  #: the destination path


class Events(Protocol):
    """Progress hooks; called from worker threads."""

    def started(self, job: Job, offset: int) -> None: ...
    def advanced(self, job: Job, nbytes: int) -> None: ...
    def finished(self, outcome: FileOutcome) -> None: ...


@dataclass(slots=True)
class _Started:
    """A file taken by a worker: decided, its read perhaps opened ahead, not yet copied."""

    job: Job
    outcome: FileOutcome
    at: float  #: when the worker took it
    decision: Decision | None = None  #: None: not to be copied (the outcome is final)
    opened: ReadStream | None = None


def _partial(job: Job, item: PlanItem, src: Backend) -> str:
    """The temporary name a copy of ``item`` (as it is now) to the job's target uses."""
    return partial_name(job.target, source_tag(src, item.source, item.entry.size))


def _unchanged(before: Entry, now: Entry) -> bool:
    """Same size, and times equal within the coarser precision: a LIST time shows minutes
    while MDTM shows seconds, and the same unchanged file must not look changed."""
    if before.size != now.size:
        return False
    if before.mtime is None or now.mtime is None:
        return True  # only the sizes can be compared, and they are equal
    precision = max(before.mtime_precision or 1, now.mtime_precision or 1)
    return abs(before.mtime - now.mtime) < timedelta(seconds=precision)


class _Runner:
    def __init__(
        self,
        src: Side,
        dst: Side,
        options: TransferOptions,
        summary: Summary,
        events: Events | None,
    ) -> None:
        self.src, self.dst, self.options = src, dst, options
        self.summary, self.events = summary, events
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.index = TargetIndex([])  # replaced by run_jobs once the jobs are known
        self.active = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        #: workers holding a job; a job is taken and counted under ``_idle`` at once
        self.busy = 0
        self._idle = threading.Condition()
        self.bandwidth = Bandwidth(options.bwlimit, options.bwlimit_per_file)
        #: files each worker holds in flight (``transfer.readahead``)
        self.window = 1

    # -- workers -------------------------------------------------------------------------------

    def worker(self, index: int, pair: tuple[Backend, Backend] | None = None) -> None:
        try:
            src, dst = pair or (self.src.take(), self.dst.take())
        except RunOver:
            return
        except FerrymanError as err:
            with self._lock:
                self.active -= 1
                left = self.active
            log.warning(
                "connection %d refused (%s); carrying on with %d parallel", index + 1, err, left
            )
            return
        # A window of files (``transfer.readahead``): each is decided and its read opened
        # when taken, then they are copied in turn; a window of 1 is one file at a time.
        window: deque[_Started] = deque()
        try:
            while not self.stopping.is_set():
                while len(window) < self.window and (job := self._take()) is not None:
                    started = self._guarded(job, functools.partial(self.begin, job, src, dst))
                    if isinstance(started, FileOutcome):
                        self._report(started)
                    elif started.decision is None:
                        self._report(started.outcome)  # skipped, planned or failed
                    else:
                        window.append(started)
                    if self.stopping.is_set():
                        break
                if not window or self.stopping.is_set():
                    return
                first = window.popleft()
                more = bool(window) or not self.jobs.empty()
                for side in (src, dst):  # lets FTP ask for the next data port early (issue 19)
                    if side.capabilities.prepares_transfers:
                        side.transfers_follow(more)
                outcome = self._guarded(first.job, functools.partial(self.finish, first, src, dst))
                self._report(outcome if isinstance(outcome, FileOutcome) else outcome.outcome)
        finally:
            for dropped in window:  # stopping (Ctrl-C): the reads opened ahead are closed
                if dropped.opened is not None:
                    dropped.opened.abort()
                self._done()

    def _take(self) -> Job | None:
        with self._idle:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return None
            self.busy += 1
            return job

    @staticmethod
    def _guarded(job: Job, step: Callable[[], _Started | FileOutcome]) -> _Started | FileOutcome:
        try:
            return step()
        except Exception as err:  # a bug must not lose the file silently in a thread
            log.exception("internal error while copying %s", job.item.source)
            outcome = FileOutcome(job.item.source, job.target, Status.FAILED)
            outcome.error = FerrymanError(f"internal error: {err!r}")
            outcome.reason = outcome.error.message
            return outcome

    def _report(self, outcome: FileOutcome) -> None:
        try:
            self.summary.add(outcome)
            if self.events is not None:
                self.events.finished(outcome)
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self.busy -= 1
            self._idle.notify_all()

    def wait_for_jobs(self) -> None:
        """Return once no job is queued and none is being copied. Workers still connecting
        are not waited for: with nothing left to take they would only close again."""
        with self._idle:
            self._idle.wait_for(lambda: self.busy == 0 and self.jobs.empty())

    def begin(self, job: Job, src: Backend, dst: Backend) -> _Started:
        """Decide about one file; when it is to be copied, open its read ahead if it may
        (``transfer.readahead``). ``decision`` None: the outcome is final."""
        item = job.item
        outcome = FileOutcome(item.source, job.target, Status.FAILED, size=item.entry.size)
        started = _Started(job, outcome, time.monotonic())
        try:
            if self.options.stable_for > 0:
                now = src.stat(item.source)
                if not _unchanged(item.entry, now):
                    outcome.status = Status.SKIPPED
                    outcome.reason = (
                        f"still being written (changed within {self.options.stable_for:g} s)"
                    )
                    return started
            decision = self.decide(job, src, dst)
            outcome.reason = decision.reason
            if not decision.copies:
                outcome.status = Status.SKIPPED
                return started
            if self.options.dry_run:
                outcome.status = Status.PLANNED
                return started
            started.decision = decision
            if self.window > 1 and opens_ahead(
                item.entry,
                decision.offset,
                src,
                dst,
                segments=self.options.segments,
                segment_min_size=self.options.segment_min_size,
            ):
                with contextlib.suppress(FerrymanError):  # the copy opens it, under retries
                    started.opened = src.open_read_ahead(item.source, item.entry.size or 0)
        except FerrymanError as err:
            outcome.error = err
            outcome.reason = err.message
        finally:
            outcome.seconds = time.monotonic() - started.at
        return started

    def finish(self, started: _Started, src: Backend, dst: Backend) -> FileOutcome:
        """Copy a file :meth:`begin` decided to copy (with its read opened ahead, if it
        was), then act on the source."""
        job, outcome, decision = started.job, started.outcome, started.decision
        if decision is None:
            return outcome
        try:
            result = self.copy(job, src, dst, decision, outcome, opened=started.opened)
            outcome.status = Status.COPIED
            outcome.bytes, outcome.size = result.bytes, result.size
            outcome.verified, outcome.resumed_from = result.verified, result.resumed_from
            outcome.source_action = self.after(job, src)
        except FerrymanError as err:
            outcome.error = err
            if outcome.status is not Status.COPIED:
                outcome.reason = err.message
        finally:
            outcome.seconds = time.monotonic() - started.at
        return outcome

    def decide(self, job: Job, src: Backend, dst: Backend) -> Decision:
        policy = self.options.if_exists
        target = self.index.lookup(dst, job.target)
        partial = None
        if policy is IfExists.RESUME and target is None:
            partial = self.index.lookup(dst, _partial(job, job.item, src))
        compare_times = self.options.preserve_mtime and dst.capabilities.set_mtime
        return decide(
            policy,
            job.item.entry,
            target,
            partial,
            target_name=job.target,
            compare_times=compare_times,
        )

    def copy(
        self,
        job: Job,
        src: Backend,
        dst: Backend,
        decision: Decision,
        outcome: FileOutcome,
        *,
        opened: ReadStream | None = None,
    ) -> CopyResult:
        options, item = self.options, job.item
        resumable = (
            src.capabilities.resume_read
            and dst.capabilities.resume_write
            and not options.ascii
            and options.transform is None
        )
        offset = decision.offset if resumable else 0
        replace_final = decision.replace
        if decision.from_final and offset:
            # keep the final name complete-only
            dst.rename(job.target, _partial(job, item, src))
            replace_final = False
        policy, first_try = options.retry, time.monotonic()
        started_over = False  # after a ResumeRefusedError: the temporary was deleted
        throttle = self.bandwidth.for_file()
        while True:
            if self.events is not None:
                self.events.started(job, offset)
            try:
                first, opened = opened, None  # opened ahead: used by the first try only
                return copy_in_segments(  # copy_file, or in parallel segments (--segments)
                    src,
                    item.source,
                    dst,
                    job.target,
                    replace=replace_final,
                    offset=offset,
                    chunk_size=options.chunk_size,
                    progress=self._progress(job),
                    source_entry=item.entry,
                    verify_hash=options.verify_hash,
                    preserve_mtime=options.preserve_mtime,
                    cleanup=False,
                    target_checked=True,
                    ascii=options.ascii,
                    transform=options.transform,
                    throttle=throttle,
                    segments=options.segments,
                    segment_min_size=options.segment_min_size,
                    retry=policy,
                    outcome=outcome,
                    opened=first,
                )
            except ResumeRefusedError as err:
                if started_over:
                    raise  # refused again with a fresh temporary: a refusal of the write itself
                # the server refused to continue (or to overwrite) the temporary file: ProFTPD's
                # defaults, no REST (issue 12); not a failure of the file: delete, write from 0
                log.info("%s: %s; starting over from byte 0", item.source, err.message)
                discard_partial(dst, _partial(job, item, src))
                offset, resumable, started_over = 0, False, True
                continue
            except FerrymanError as err:
                attempt = outcome.retries + 1
                wait = policy.backoff(attempt)
                spent = time.monotonic() - first_try
                if not err.retriable or attempt > policy.retries or spent + wait > policy.max_total:
                    if options.if_exists is not IfExists.RESUME:  # resume: the next run continues
                        discard_partial(dst, _partial(job, item, src))
                    raise
                outcome.retries = attempt
                log.warning(
                    "%s: %s; retry %d of %d in %.1f s",
                    item.source,
                    err,
                    outcome.retries,
                    policy.retries,
                    wait,
                )
                time.sleep(wait)
                before = _partial(job, item, src)
                item, offset = self._resume_point(job, item, src, dst, resumable)
                if _partial(job, item, src) != before:  # the source changed size: a new tag
                    discard_partial(dst, before)
                if not offset:  # from 0: a server that refuses overwrites (ProFTPD) needs this
                    discard_partial(dst, _partial(job, item, src))

    def _progress(self, job: Job) -> Callable[[int], None] | None:
        events = self.events
        if events is None:
            return None
        return lambda n: events.advanced(job, n)

    def _resume_point(
        self, job: Job, item: PlanItem, src: Backend, dst: Backend, resumable: bool
    ) -> tuple[PlanItem, int]:
        """Where a retry starts: at the end of the temporary file when the source is
        unchanged, else from the start (with the source's new size and time)."""
        try:
            now = src.stat(item.source)
        except FerrymanError:
            return item, 0  # the copy attempt will meet (and classify) the same failure
        if not _unchanged(item.entry, now):
            log.info("%s changed since it was listed; copying it again from the start", item.source)
            return replace(item, entry=now), 0
        if not resumable:
            return item, 0
        try:
            partial = stat_or_none(dst, _partial(job, item, src))
        except FerrymanError:
            return item, 0
        size = partial.size if partial is not None and partial.size else 0
        return item, size if item.entry.size is None or size <= item.entry.size else 0

    def after(self, job: Job, src: Backend) -> str | None:
        options = self.options
        if options.after is SourceAction.DELETE:
            src.remove(job.item.source)
            return "deleted"
        if options.after is SourceAction.MOVE and options.move_to is not None:
            archived = archive(src, job.item.source, job.item.relative, options.move_to)
            return f"moved to {archived}"
        return None


def run_jobs(
    jobs: list[Job],
    source: Backend,
    destination: Backend,
    options: TransferOptions,
    *,
    summary: Summary | None = None,
    events: Events | None = None,
    lenders: tuple[Lender | None, Lender | None] = (None, None),
) -> Summary:
    """Copy every job from ``source`` to ``destination`` (both connected; they become the
    first connection of each side's pool) with ``options.parallel`` workers; ``lenders``
    (source side, destination side) lend the further connections, when given."""
    summary = summary or Summary(dry_run=options.dry_run)
    if options.stable_for > 0 and jobs:
        log.info(
            "waiting %.0f s to see that the files are no longer being written", options.stable_for
        )
        time.sleep(options.stable_for)
    src, dst = Side(source, lenders[0]), Side(destination, lenders[1])
    runner = _Runner(src, dst, options, summary, events)
    runner.index = TargetIndex([job.target for job in jobs])
    for job in jobs:
        runner.jobs.put(job)
    total = sum(job.item.entry.size or 0 for job in jobs)
    choice = choose_parallel(options.parallel, len(jobs), total, source, destination)
    binary = not options.ascii and options.transform is None and not options.dry_run
    workers, runner.window = workers_and_window(choice.parallel, source, binary=binary)
    if len(jobs) > 1:
        per = f"; {workers} workers, reads opened ahead" if runner.window > 1 else ""
        log.info("%d file(s) in flight (%s%s)", choice.parallel, choice.reason, per)
    runner.active = workers
    first_pair = (src.take(), dst.take())  # worker 0 never waits for a connection
    threads = [
        threading.Thread(
            target=runner.worker, args=(i,), name=f"ferryman-transfer-{i + 1}", daemon=True
        )
        for i in range(1, workers)
    ]
    try:
        for thread in threads:
            thread.start()
        runner.worker(0, first_pair)  # returns when the queue is empty (or on stopping)
        runner.wait_for_jobs()  # not joined: a worker still connecting holds no job (issue 13)
    except BaseException:
        runner.stopping.set()  # Ctrl-C: workers finish their current file and stop
        for thread in threads:
            thread.join(timeout=5)
        raise
    finally:
        src.remember_limit()
        dst.remember_limit()
        src.close_extra()
        dst.close_extra()
    order = {job.item.source: i for i, job in enumerate(jobs)}
    summary.files.sort(key=lambda f: order.get(f.source, len(order)))
    return summary.finish()
