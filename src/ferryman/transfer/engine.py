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
import posixpath
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ..backends.base import Backend, Entry, ReadStream
from ..errors import FerrymanError, NotFoundError, ResumeRefusedError, TargetExistsError
from ..retry import RetryPolicy
from . import hostlimits
from .copy import CopyResult, copy_file, discard_partial, exists, partial_name, source_tag
from .inflight import choose_parallel, host_key
from .plan import PlanItem
from .policy import Decision, IfExists, decide
from .readahead import opens_ahead, workers_and_window
from .report import FileOutcome, Status, Summary
from .segments import DEFAULT_SEGMENT_MIN_SIZE, copy_in_segments
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


class _RunOver(Exception):
    """A connection was made after the run ended: it was closed, there is nothing to do."""


class Lender(Protocol):
    """Where a run borrows its extra connections instead of making and closing its own (the
    fsspec filesystem's pool, which keeps them for the next call)."""

    def acquire(self) -> Backend: ...
    def release(self, backend: Backend) -> None: ...


class _Side:
    """One endpoint's connections: the first one, then siblings made on demand (or borrowed
    from ``lender``, and given back at the end)."""

    def __init__(self, first: Backend, lender: Lender | None = None) -> None:
        self.first = first
        self.lender = lender
        self._first_taken = False
        self._lock = threading.Lock()
        self._closed = False
        self.extra: list[Backend] = []
        #: connections the server refused, and the most this side held at once
        self.refused = 0
        self.most = 1

    def _another(self) -> Backend:
        if self.lender is not None:
            return self.lender.acquire()
        backend = self.first.sibling()
        try:
            backend.connect()
        except BaseException:
            backend.close()
            raise
        return backend

    def take(self) -> Backend:
        with self._lock:
            if not self._first_taken:
                self._first_taken = True
                return self.first
        try:
            backend = self._another()
        except FerrymanError:
            with self._lock:
                self.refused += 1
            raise
        if backend is not self.first:
            with self._lock:
                late = self._closed
                if not late:
                    self.extra.append(backend)
                    self.most = max(self.most, 1 + len(self.extra))
            if late:  # the run ended while this connection was being made (issue 13)
                self._end(backend)
                raise _RunOver
        return backend

    def _end(self, backend: Backend) -> None:
        if self.lender is not None:
            self.lender.release(backend)
        else:
            backend.close()

    def remember_limit(self) -> None:
        """A server that refused connections: remember how many it took (``hostlimits``)."""
        if self.refused and self.lender is None:
            hostlimits.remember(host_key(self.first), self.most)

    def close_extra(self) -> None:
        """Close (or give back) the siblings; one whose connect is still under way closes
        when it returns."""
        with self._lock:
            self._closed = True
            extra, self.extra = self.extra, []
        for backend in extra:
            self._end(backend)


def _stat_or_none(backend: Backend, path: str) -> Entry | None:
    try:
        return backend.stat(path)
    except NotFoundError:
        return None


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


def archive(backend: Backend, path: str, relative: str, archive_dir: str) -> str:
    """Move ``path`` to ``archive_dir/relative`` (directories made as needed) and return
    where it went; an archived file of that name is never overwritten: the newcomer gets a
    time-stamp suffix."""
    archived = posixpath.join(archive_dir, relative)
    ensure_directory(backend, posixpath.dirname(archived))
    if exists(backend, archived):
        archived += "." + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    backend.rename(path, archived)
    return archived


def ensure_directory(backend: Backend, path: str) -> None:
    """``mkdir -p``: create ``path`` and its missing parents."""
    if path in ("", ".", "/"):
        return
    entry = _stat_or_none(backend, path)
    if entry is not None:
        if not entry.is_dir:
            raise TargetExistsError(
                f"{path} exists on {backend.describe()} but is not a directory",
                hint="rename that file or choose another destination",
            )
        return
    ensure_directory(backend, posixpath.dirname(path.rstrip("/")))
    try:
        backend.mkdir(path)
    except FerrymanError:
        if not (made := _stat_or_none(backend, path)) or not made.is_dir:
            raise  # another worker may have made it meanwhile; anything else is an error


class _TargetIndex:
    """The destination's entries, one listing per directory instead of a stat per file
    (many small files: one round trip saved for each)."""

    #: fewer files than this in a directory: a stat each is cheaper than listing it
    MIN_FILES = 8

    def __init__(self, targets: list[str]) -> None:
        self._counts = Counter(posixpath.dirname(t) for t in targets)
        self._dirs: dict[str, dict[str, Entry] | None] = {}
        self._lock = threading.Lock()

    def lookup(self, backend: Backend, path: str) -> Entry | None:
        directory, name = posixpath.split(path)
        if self._counts[directory] < self.MIN_FILES:
            return _stat_or_none(backend, path)
        with self._lock:
            if directory not in self._dirs:
                self._dirs[directory] = self._list(backend, directory)
            entries = self._dirs[directory]
        if entries is None:  # the directory could not be listed: ask about the file itself
            return _stat_or_none(backend, path)
        return entries.get(name)

    @staticmethod
    def _list(backend: Backend, directory: str) -> dict[str, Entry] | None:
        try:
            return {e.name: e for e in backend.list(directory or ".")}
        except NotFoundError:
            return {}
        except FerrymanError:
            return None


class _Runner:
    def __init__(
        self,
        src: _Side,
        dst: _Side,
        options: TransferOptions,
        summary: Summary,
        events: Events | None,
    ) -> None:
        self.src, self.dst, self.options = src, dst, options
        self.summary, self.events = summary, events
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.index = _TargetIndex([])  # replaced by run_jobs once the jobs are known
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
        except _RunOver:
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
                if opened is not None:  # opened ahead: a small file, one stream, from byte 0
                    first, opened = opened, None
                    return copy_file(
                        src,
                        item.source,
                        dst,
                        job.target,
                        replace=replace_final,
                        chunk_size=options.chunk_size,
                        progress=self._progress(job),
                        source_entry=item.entry,
                        verify_hash=options.verify_hash,
                        preserve_mtime=options.preserve_mtime,
                        cleanup=False,
                        target_checked=True,
                        throttle=throttle,
                        opened=first,
                    )
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
            partial = _stat_or_none(dst, _partial(job, item, src))
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
    src, dst = _Side(source, lenders[0]), _Side(destination, lenders[1])
    runner = _Runner(src, dst, options, summary, events)
    runner.index = _TargetIndex([job.target for job in jobs])
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
