"""The ad-hoc commands: ls, rm, mkdir, rmdir, mv (get, put and sync are in ``transfers``)."""

from __future__ import annotations

import fnmatch
import json
import posixpath
import sys
from pathlib import Path

import click

from ..backends.base import Backend, Entry
from ..connection import login_relative
from ..errors import (
    ConfigError,
    FerrymanError,
    NotFoundError,
    ProtocolError,
    TargetExistsError,
)
from .options import CommonOptions, common_options, open_remote, retrying
from .output import emit_json, format_entry
from .transfers import TRANSFER_COMMANDS

__all__ = ["COMMANDS"]

_GLOB = set("*?[")


def _split_glob(path: str) -> tuple[str, str | None]:
    """(directory, pattern) when the last component is a glob, else (path, None)."""
    head, tail = posixpath.split(path)
    if _GLOB & set(head):
        raise ConfigError(
            f"{path}: wildcards are allowed only in the file-name part",
            hint="write e.g. /outbound/*.csv",
        )
    if _GLOB & set(tail):
        return head or "/", tail
    return path, None


def _list_or_stat(backend: Backend, path: str) -> list[Entry]:
    try:
        return backend.list(path)
    except (NotFoundError, ProtocolError):
        entry = backend.stat(path)
        if entry.is_dir:
            raise
        return [entry]


@click.command("ls")
@click.argument("url")
@common_options
def ls(url: str, opts: CommonOptions) -> None:
    """List a remote directory (name, type, size, modified); globs filter the names."""
    target = opts.target(url)
    directory, pattern = _split_glob(target.path)
    with open_remote(target, retry_refused=opts.retries_given) as backend:
        entries = retrying(
            target.connection, f"listing {directory}", lambda: _list_or_stat(backend, directory)
        )
    if pattern is not None:
        entries = [e for e in entries if fnmatch.fnmatchcase(e.name, pattern)]
    entries.sort(key=lambda e: (not e.is_dir, e.name))
    # Written in pieces, not built whole: a 100 000-entry directory stays a few MB of output
    # buffer instead of three full copies of the listing. sys.stdout is the stream click.echo
    # writes to (and the one CliRunner swaps in); click.get_text_stream is deprecated in 8.5.
    out = sys.stdout
    if opts.json:
        out.write('{\n  "ok": true,\n  "path": ' + json.dumps(target.path) + ',\n  "entries": [')
        for n, entry in enumerate(entries):
            out.write(("," if n else "") + "\n    " + json.dumps(entry.to_dict()))
        out.write("\n  ]\n}\n" if entries else "]\n}\n")
    else:
        out.writelines(format_entry(entry) + "\n" for entry in entries)
    out.flush()


def _simple(name: str, doc: str, action: str) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("url")
    @common_options
    def command(url: str, opts: CommonOptions) -> None:
        target = opts.target(url)
        if target.path in ("", "/"):
            raise ConfigError(f"{name} needs a path after the host", hint=f"e.g. {name} URL/dir")
        with open_remote(target, retry_refused=opts.retries_given) as remote:
            method = getattr(remote, action)
            retrying(target.connection, f"{name} {target.path}", lambda: method(target.path))
        if opts.json:
            emit_json({"ok": True, "command": name, "path": target.path})

    return command


def _existing(backend: Backend, path: str) -> Entry | None:
    try:
        return backend.stat(path)
    except NotFoundError:
        return None


def _rename(backend: Backend, source: str, dest: str, overwrite: bool) -> None:
    """Rename ``source`` to ``dest`` the same way on every server: an existing ``dest`` is
    refused unless ``overwrite``, and then replaced (a file only) even where the server's
    rename does not replace (ProFTPD): it is deleted first."""
    existing = _existing(backend, dest)
    if existing is not None and not overwrite:
        raise TargetExistsError(
            f"mv: {dest} exists", hint="give --overwrite to replace it, or choose another name"
        )
    if existing is not None and existing.is_dir:
        raise TargetExistsError(
            f"mv: {dest} is an existing directory; mv does not replace directories",
            hint="remove it first (rmdir) or choose another name",
        )
    try:
        backend.rename(source, dest)
    except FerrymanError:
        if existing is None or _existing(backend, dest) is None:
            raise
        if _existing(backend, source) is None:
            raise
        backend.remove(dest)  # the server refused to replace: remove, then rename
        backend.rename(source, dest)


@click.command("mv")
@click.argument("url")
@click.argument("new_path")
@click.option("--overwrite", is_flag=True, help="Replace NEW_PATH when it is an existing file.")
@common_options
def mv(url: str, new_path: str, overwrite: bool, opts: CommonOptions) -> None:
    """Rename a remote file or directory (NEW_PATH: relative to URL's directory, or absolute).

    An existing NEW_PATH is refused unless --overwrite (the same on every server)."""
    target = opts.target(url)
    new = login_relative(new_path)  # /~/x and ~/x: below the login directory, as in URLs
    if new == "~" or new.startswith("~/"):
        dest = new
    else:
        dest = posixpath.join(posixpath.dirname(target.path.rstrip("/")), new)
    with open_remote(target, retry_refused=opts.retries_given) as remote:
        retrying(
            target.connection,
            "rename",
            lambda: _rename(remote, target.path, dest, overwrite),
        )
    if opts.json:
        emit_json({"ok": True, "command": "mv", "path": target.path, "new_path": dest})


COMMANDS = [
    ls,
    *TRANSFER_COMMANDS,
    mv,
    _simple("rm", "Delete a remote file.", "remove"),
    _simple("mkdir", "Create a remote directory.", "mkdir"),
    _simple("rmdir", "Remove an empty remote directory.", "rmdir"),
]


@click.command("demo")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".ferryman-demo"),
    show_default=True,
    help="Where the demo keeps its server files, job, database, state and logs.",
)
@click.option("-v", "--verbose", count=True, help="Print the run log and transcript to stderr.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def demo(workdir: Path, verbose: int, json_output: bool) -> None:
    """Run a sample job twice against an embedded FTPS server: receive only new files, load
    them into SQLite, export a report, send it back, archive the originals."""
    from ..demo import demo_command, run_demo  # noqa: PLC0415 - the server loads only when asked

    report = run_demo(workdir.resolve(), verbose)
    if json_output:
        emit_json({"ok": all(r.exit_code == 0 for r in report.runs), **report.to_dict()})
        return
    click.echo(f"Embedded FTPS server: {report.server} (explicit TLS, certificate verified)")
    click.echo(f"Job file: {report.job_file}")
    for number, run in enumerate(report.runs, 1):
        steps = {s.name: s for s in run.steps}
        fetched = steps["fetch"].result.get("count", 0)
        rows = steps["load"].result.get("rows", 0) if steps["load"].status != "skipped" else 0
        click.echo(
            f"Run {number} (id {run.run_id}): {run.status}; took {fetched} new file(s), "
            f"loaded {rows} row(s), report sent: {steps['publish'].status}"
        )
        for step in run.steps:
            click.echo(f"  {step.status:9} {step.name}")
        click.echo(f"  log: {run.log_file}")
    resumed = "yes" if report.sessions_resumed else "NO"
    click.echo(f"TLS session resumed on every data connection: {resumed}")
    click.echo(
        "The second run took only the new file: the one put back unchanged was in the ledger."
    )
    click.echo(
        "The demo's server has stopped; to run it all again: "
        + demo_command(report.workdir, here=True)
    )
    failed = next((r.error for r in report.runs if r.error is not None), None)
    if failed is not None:
        raise failed


COMMANDS.append(demo)
