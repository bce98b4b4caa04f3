"""``ferryman get``, ``put`` and ``sync``: many files, in parallel, with policies and filters."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from ..backends.base import Backend, Entry
from ..backends.local import LocalBackend
from ..connection import Connection, login_relative
from ..retry import RetryPolicy
from ..terminal import safe_text
from ..transfer import (
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
from ..transfer.inflight import MAX_PARALLEL
from .options import CommonOptions, common_options, open_remote, retrying
from .output import emit_json, say
from .pgp_options import PgpChoices, pgp_options
from .progress import transfer_progress
from .transfer_limits import LIMIT_OPTIONS

__all__ = ["TRANSFER_COMMANDS"]

F = TypeVar("F", bound=Callable[..., Any])
_REMOTE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://|[A-Za-z_][A-Za-z0-9_.-]*:)")


@dataclass(frozen=True)
class _Choices:
    recursive: bool
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    newer_than: str | None
    older_than: str | None
    min_size: str | None
    max_size: str | None
    if_exists: str | None
    overwrite: bool
    parallel: int | None
    preserve_mtime: bool
    verify_hash: bool
    delete_source: bool
    move_source_to: str | None
    stable_for: float
    ascii: bool
    dry_run: bool
    segments: int
    segment_min_size: int
    bwlimit: float | None
    bwlimit_per_file: float | None

    def filters(self) -> Filters:
        return Filters.parse(
            include=self.include,
            exclude=self.exclude,
            min_size=self.min_size,
            max_size=self.max_size,
            newer_than=self.newer_than,
            older_than=self.older_than,
        )

    def options(self, conn: Connection | None, default: IfExists) -> TransferOptions:
        policy = IfExists(self.if_exists) if self.if_exists else default
        if self.overwrite:
            policy = IfExists.OVERWRITE
        after = SourceAction.KEEP
        if self.delete_source:
            after = SourceAction.DELETE
        if self.move_source_to:
            after = SourceAction.MOVE
        retry = RetryPolicy(conn.retries, conn.retry_delay) if conn else RetryPolicy()
        return TransferOptions(
            if_exists=policy,
            parallel=self.parallel,
            retry=retry,
            chunk_size=conn.chunk_size if conn else 256 * 1024,
            preserve_mtime=self.preserve_mtime,
            verify_hash=self.verify_hash,
            after=after,
            move_to=self.move_source_to,
            stable_for=self.stable_for,
            ascii=self.ascii,
            dry_run=self.dry_run,
            segments=self.segments,
            segment_min_size=self.segment_min_size,
            bwlimit=self.bwlimit,
            bwlimit_per_file=self.bwlimit_per_file,
        )


class _Parallel(click.ParamType):  # type: ignore[type-arg]
    """``auto`` (None: chosen from the round trip) or a number of files in flight."""

    name = "N|auto"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.name  # as written, not upper-cased

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | None:
        if value is None or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return None
        if not text.isdigit() or not 1 <= int(text) <= MAX_PARALLEL:
            self.fail(f"{value!r} is not auto or a number from 1 to {MAX_PARALLEL}", param, ctx)
        return int(text)


PARALLEL = _Parallel()

_RECURSIVE_HELP = "Copy a directory's contents, all levels."
_SYNC_RECURSIVE_HELP = "Accepted and ignored: sync always mirrors all levels."

_CHOICE_OPTIONS: list[Callable[[F], F]] = [
    click.option("--include", multiple=True, metavar="GLOB", help="Take only matching files."),
    click.option("--exclude", multiple=True, metavar="GLOB", help="Leave matching files out."),
    click.option(
        "--newer-than", metavar="AGE|DATE", help="Only files modified after (2h, 2026-11-01)."
    ),
    click.option("--older-than", metavar="AGE|DATE", help="Only files modified before."),
    click.option("--min-size", metavar="SIZE", help="Only files at least this big (10K, 5M)."),
    click.option("--max-size", metavar="SIZE", help="Only files at most this big."),
    click.option(
        "--if-exists",
        type=click.Choice([p.value for p in IfExists]),
        help="When the destination has the file: fail (default for get/put), skip, "
        "overwrite, newer, different (default for sync), resume.",
    ),
    click.option("--overwrite", is_flag=True, help="Short for --if-exists overwrite."),
    click.option(
        "-P",
        "--parallel",
        type=PARALLEL,
        default="auto",
        show_default=True,
        help="Files in flight at once, 1-256, or auto: 4 on a short round trip, more as the "
        "measured round trip grows, never more than a server accepted before.",
    ),
    click.option(
        "--preserve-mtime", is_flag=True, help="Give copies the source's modification time."
    ),
    click.option(
        "--verify-hash/--no-verify-hash",
        default=True,
        show_default=True,
        help="Also verify by a server-side hash when the server offers one.",
    ),
    click.option(
        "--delete-source", is_flag=True, help="Delete each source file after its verified copy."
    ),
    click.option(
        "--move-source-to",
        metavar="DIR",
        help="Move each source file to DIR after its verified copy.",
    ),
    click.option(
        "--stable-for",
        type=click.FloatRange(0, 3600),
        default=0,
        metavar="SECONDS",
        help="Skip files whose size or time changes within SECONDS (still being written).",
    ),
    click.option(
        "--ascii",
        is_flag=True,
        help="FTP ASCII mode (TYPE A): convert line ends of text files; never resumed.",
    ),
    click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing."),
    *LIMIT_OPTIONS,
]


def choice_options(func: F, recursive_help: str = _RECURSIVE_HELP) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        names = [f for f in _Choices.__dataclass_fields__]
        choices = _Choices(**{n: kwargs.pop(n) for n in names})
        if choices.delete_source and choices.move_source_to:
            raise click.UsageError("give --delete-source or --move-source-to, not both")
        return func(*args, choices=choices, **kwargs)

    for option in reversed(_CHOICE_OPTIONS):
        wrapper = option(wrapper)
    wrapper = click.option("-r", "--recursive", is_flag=True, help=recursive_help)(wrapper)
    return wrapper  # type: ignore[return-value]


def sync_choice_options(func: F) -> F:
    """The same options; sync always recurses, so its -r says it changes nothing."""
    return choice_options(func, _SYNC_RECURSIVE_HELP)


def _exists_locally(spec: str) -> bool:
    try:
        return Path(spec).exists()
    except OSError:  # a URL no file system could hold as a path (a 5 000-character name)
        return False


def _endpoint(
    spec: str, opts: CommonOptions, stack: ExitStack
) -> tuple[Backend, str, Connection | None]:
    """A connected backend, the path on it, and its connection (None for the local disk).

    A URL or ``NAME:PATH`` is remote, unless a local file of that name exists."""
    if _REMOTE.match(spec) and not _exists_locally(spec):
        target = opts.target(spec)
        backend = stack.enter_context(open_remote(target, retry_refused=opts.retries_given))
        return backend, target.path or ".", target.connection
    return stack.enter_context(LocalBackend()), spec, None


def _lister(conn: Connection | None) -> Callable[[str, Callable[[], list[Entry]]], list[Entry]]:
    def call(what: str, action: Callable[[], list[Entry]]) -> list[Entry]:
        return retrying(conn, what, action) if conn is not None else action()

    return call


def _report(summary: Summary, opts: CommonOptions) -> None:
    if opts.json:
        emit_json(summary.to_dict())
    else:
        lines = []  # one write for all of them: a click.echo per file costs more than a copy
        for f in summary.files:
            line = f"{f.status:8} {f.source or f.target}"
            if f.source and f.target:
                line += f" -> {f.target}"
            if f.status == "copied":
                rate = f.bytes / max(f.seconds, 1e-6) / 1e6
                line += f"  {f.size} bytes  {f.seconds:.2f} s  {rate:.1f} MB/s  {f.verified}"
                if f.resumed_from:
                    line += f"  resumed at {f.resumed_from}"
                if f.source_action:
                    line += f"  source {f.source_action}"
            elif f.reason:
                line += f"  ({f.reason})"
            lines.append(safe_text(line))  # names from the server: shown, never obeyed
        for s in summary.skipped_names:
            lines.append(
                safe_text(f"{'refused' if s.unsafe else 'skipped'}  {s.path}  ({s.reason})")
            )
        counts = ", ".join(
            f"{n} {s}"
            for s in ("copied", "skipped", "planned", "deleted", "failed")
            if (n := summary.count(s))
        )
        lines.append(
            f"{counts or 'nothing to do'}; {summary.bytes} bytes in {summary.seconds:.2f} s"
        )
        click.echo("\n".join(lines))
    failures = summary.failures
    for err in failures[1:]:
        say(f"ferryman: error: {err}", err=True)
    failed = failures[0] if failures else summary.refusal()
    if failed is not None:
        if opts.json:
            click.get_current_context().meta["ferryman.json_emitted"] = True
        raise failed


def _run(
    src_spec: str,
    dst_spec: str,
    opts: CommonOptions,
    choices: _Choices,
    sync_options: SyncOptions | None = None,
    pgp: PgpChoices | None = None,
) -> None:
    if pgp is not None and pgp.wanted and choices.ascii:
        raise click.UsageError("--ascii changes line ends, which encrypted data must keep")
    with ExitStack() as stack:
        src, src_path, src_conn = _endpoint(src_spec, opts, stack)
        dst, dst_path, dst_conn = _endpoint(dst_spec, opts, stack)
        default = IfExists.FAIL if sync_options is None else IfExists.DIFFERENT
        options = choices.options(src_conn or dst_conn, default)
        if src_conn is not None and options.move_to is not None:
            # a remote archive reads /~/ as URLs do: below the login directory
            options = dataclasses.replace(options, move_to=login_relative(options.move_to))
        if pgp is not None and pgp.wanted:
            transform = pgp.transform(opts.connections)
            options = dataclasses.replace(options, transform=transform)
        filters, call = choices.filters(), _lister(src_conn)
        if sync_options is not None:
            summary = sync(
                src, src_path, dst, dst_path, options, sync_options, filters=filters, call=call
            )
        else:
            plan = build_plan(
                src, src_path, recursive=choices.recursive, filters=filters, call=call
            )
            with transfer_progress(not opts.json, len(plan.items), plan.total_bytes) as events:
                summary = transfer_plan(plan, src, dst, dst_path, options, events=events)
    _report(summary, opts)


@click.command("get")
@click.argument("source")
@click.argument("local", required=False, default=".")
@choice_options
@pgp_options(upload=False)
@common_options
def get(source: str, local: str, choices: _Choices, pgp: PgpChoices, opts: CommonOptions) -> None:
    """Download SOURCE (a file, a glob such as /out/*.csv, or a directory with -r) to LOCAL
    (default: here). Several files go into LOCAL as a directory, created when missing."""
    _run(source, local, opts, choices, pgp=pgp)


@click.command("put")
@click.argument("local")
@click.argument("destination")
@choice_options
@pgp_options(upload=True)
@common_options
def put(
    local: str, destination: str, choices: _Choices, pgp: PgpChoices, opts: CommonOptions
) -> None:
    """Upload LOCAL (a file, a glob, or a directory with -r) to DESTINATION (a URL; ending in
    / or naming a directory keeps the local names)."""
    _run(local, destination, opts, choices, pgp=pgp)


@click.command("sync")
@click.argument("source")
@click.argument("destination")
@click.option("--delete", is_flag=True, help="Delete destination files the source does not have.")
@click.option(
    "--max-delete",
    type=click.IntRange(0, 100),
    default=50,
    show_default=True,
    metavar="PERCENT",
    help="Refuse to delete more than this share of the destination's files.",
)
@click.option("--force", is_flag=True, help="Delete even beyond --max-delete.")
@sync_choice_options
@common_options
def sync_command(
    source: str,
    destination: str,
    delete: bool,
    max_delete: int,
    force: bool,
    choices: _Choices,
    opts: CommonOptions,
) -> None:
    """Make directory DESTINATION a copy of directory SOURCE (either may be local or remote);
    copies what is missing or different, and with --delete removes what the source lacks."""
    guard = SyncOptions(delete=delete, max_delete_share=max_delete / 100, force=force)
    _run(source, destination, opts, choices, guard)


TRANSFER_COMMANDS: list[click.Command] = [get, put, sync_command]
