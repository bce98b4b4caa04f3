"""The ad-hoc commands: ls, get, put, rm, mkdir, rmdir, mv."""

from __future__ import annotations

import fnmatch
import posixpath
from pathlib import Path

import click

from ..backends.base import Backend, Entry
from ..backends.local import LocalBackend
from ..connection import RemoteTarget
from ..errors import ConfigError, FerrymanError, NotFoundError, ProtocolError
from ..paths import safe_local_child
from ..transfer.copy import CopyResult, copy_file
from .options import CommonOptions, common_options, open_remote, retrying
from .output import emit_json, format_entry, progress_for

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
    with open_remote(target) as backend:
        entries = retrying(
            target.connection, f"listing {directory}", lambda: _list_or_stat(backend, directory)
        )
    if pattern is not None:
        entries = [e for e in entries if fnmatch.fnmatchcase(e.name, pattern)]
    entries.sort(key=lambda e: (not e.is_dir, e.name))
    if opts.json:
        emit_json({"ok": True, "path": target.path, "entries": [e.to_dict() for e in entries]})
        return
    for entry in entries:
        click.echo(format_entry(entry))


def _copy(
    src: Backend,
    src_path: str,
    dst: Backend,
    dst_path: str,
    entry: Entry,
    opts: CommonOptions,
    target: RemoteTarget,
    overwrite: bool,
) -> CopyResult:
    conn = target.connection

    def attempt() -> CopyResult:
        with progress_for(posixpath.basename(src_path), entry.size, not opts.json) as tick:
            return copy_file(
                src,
                src_path,
                dst,
                dst_path,
                overwrite=overwrite,
                chunk_size=conn.chunk_size,
                progress=tick,
                source_entry=entry,
            )

    return retrying(conn, f"copying {src_path}", attempt)


def _report(results: list[CopyResult], errors: list[FerrymanError], opts: CommonOptions) -> None:
    if opts.json:
        emit_json(
            {
                "ok": not errors,
                "files": [r.to_dict() for r in results],
                "errors": [e.to_dict() for e in errors],
            }
        )
    else:
        for r in results:
            rate = r.bytes / max(r.seconds, 1e-6) / 1e6
            click.echo(
                f"{r.source} -> {r.target}  {r.bytes} bytes  {r.seconds:.2f} s  {rate:.1f} MB/s"
            )
    for err in errors[1:]:  # the first one is raised and printed by the group
        click.echo(f"ferryman: error: {err}", err=True)
    if errors:
        if opts.json:  # the document above already carries the errors: print only one
            click.get_current_context().meta["ferryman.json_emitted"] = True
        raise errors[0]


@click.command("get")
@click.argument("url")
@click.argument("local", required=False, type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace local files that exist.")
@common_options
def get(url: str, local: Path | None, overwrite: bool, opts: CommonOptions) -> None:
    """Download a file (or the files a glob matches) to LOCAL (default: here)."""
    target = opts.target(url)
    directory, pattern = _split_glob(target.path)
    local = local or Path()
    results: list[CopyResult] = []
    errors: list[FerrymanError] = []
    with open_remote(target) as remote, LocalBackend() as disk:
        if pattern is None:
            entry = retrying(target.connection, "stat", lambda: remote.stat(target.path))
            name = posixpath.basename(target.path.rstrip("/"))
            dest = safe_local_child(local, name) if local.is_dir() else local
            jobs = [(target.path, dest, entry)]
        else:
            listed = retrying(target.connection, "listing", lambda: remote.list(directory))
            matched = [e for e in listed if e.is_file and fnmatch.fnmatchcase(e.name, pattern)]
            if not matched:
                raise NotFoundError(f"no file in {directory} matches {pattern}")
            if not local.is_dir():
                raise ConfigError(f"{local} is not a directory", hint="create it first")
            jobs = []
            for e in matched:
                try:
                    jobs.append(
                        (posixpath.join(directory, e.name), safe_local_child(local, e.name), e)
                    )
                except FerrymanError as err:
                    errors.append(err)
        for src_path, dest, entry in jobs:
            try:
                results.append(
                    _copy(remote, src_path, disk, str(dest), entry, opts, target, overwrite)
                )
            except FerrymanError as err:
                errors.append(err)
    _report(results, errors, opts)


@click.command("put")
@click.argument("local", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("url")
@click.option("--overwrite", is_flag=True, help="Replace remote files that exist.")
@common_options
def put(local: Path, url: str, overwrite: bool, opts: CommonOptions) -> None:
    """Upload LOCAL to URL (a directory ending in / keeps the local name)."""
    target = opts.target(url)
    with open_remote(target) as remote, LocalBackend() as disk:
        dest = target.path
        if not dest or dest.endswith("/"):
            dest = posixpath.join(dest or ".", local.name)
        else:
            try:
                if remote.stat(dest).is_dir:
                    dest = posixpath.join(dest, local.name)
            except NotFoundError:
                pass
        entry = disk.stat(str(local))
        result = _copy(disk, str(local), remote, dest, entry, opts, target, overwrite)
    _report([result], [], opts)


def _simple(name: str, doc: str, action: str) -> click.Command:
    @click.command(name, help=doc)
    @click.argument("url")
    @common_options
    def command(url: str, opts: CommonOptions) -> None:
        target = opts.target(url)
        if target.path in ("", "/"):
            raise ConfigError(f"{name} needs a path after the host", hint=f"e.g. {name} URL/dir")
        with open_remote(target) as remote:
            method = getattr(remote, action)
            retrying(target.connection, f"{name} {target.path}", lambda: method(target.path))
        if opts.json:
            emit_json({"ok": True, "command": name, "path": target.path})

    return command


@click.command("mv")
@click.argument("url")
@click.argument("new_path")
@common_options
def mv(url: str, new_path: str, opts: CommonOptions) -> None:
    """Rename a remote file or directory (NEW_PATH: relative to URL's directory, or absolute)."""
    target = opts.target(url)
    dest = posixpath.join(posixpath.dirname(target.path.rstrip("/")), new_path)
    with open_remote(target) as remote:
        retrying(target.connection, "rename", lambda: remote.rename(target.path, dest))
    if opts.json:
        emit_json({"ok": True, "command": "mv", "path": target.path, "new_path": dest})


COMMANDS = [
    ls,
    get,
    put,
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
    help="Where the demo keeps its server files, downloads and transcript.",
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
def demo(workdir: Path, json_output: bool) -> None:
    """Start an embedded FTPS server on loopback and run a sample transfer against it."""
    from ..demo import run_demo  # noqa: PLC0415 - the embedded server loads only when asked
    from ..wirelog import configure_logging  # noqa: PLC0415

    workdir = workdir.resolve()
    transcript = workdir / "transcript.log"
    transcript.unlink(missing_ok=True)
    configure_logging(0, transcript)
    report = run_demo(workdir)
    if json_output:
        emit_json({"ok": True, **report.to_dict(), "transcript": str(transcript)})
        return
    click.echo(f"Embedded FTPS server: {report.server} (explicit TLS, certificate verified)")
    click.echo(f"Listed /outbound: {', '.join(report.listed)}")
    for r in [*report.downloaded, *report.uploaded]:
        click.echo(f"  {r.source} -> {r.target}  {r.bytes} bytes, verified by {r.verified}")
    click.echo(f"Rows downloaded: {report.rows}; report uploaded to /inbound/report.csv")
    resumed = "yes" if report.sessions_resumed else "NO"
    click.echo(f"TLS session resumed on every data connection: {resumed}")
    click.echo(f"Protocol transcript (password masked): {transcript}")


COMMANDS.append(demo)
