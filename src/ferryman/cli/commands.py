"""The ad-hoc commands: ls, rm, mkdir, rmdir, mv (get, put and sync are in ``transfers``)."""

from __future__ import annotations

import fnmatch
import posixpath
from pathlib import Path

import click

from ..backends.base import Backend, Entry
from ..errors import ConfigError, NotFoundError, ProtocolError
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
