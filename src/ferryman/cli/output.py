"""What the CLI prints: errors in one readable line, JSON for scripts, progress on terminals."""

from __future__ import annotations

import json
from typing import Any

import click

from ..backends.base import Entry
from ..errors import FerrymanError

__all__ = ["emit_json", "format_entry", "print_error"]


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def print_error(err: FerrymanError, as_json: bool) -> None:
    """One line saying what failed, one saying what to do; JSON on stdout with --json."""
    for line in err.message.splitlines() or [""]:  # a job file's problems: one per line
        click.echo(f"ferryman: error: {line}", err=True)
    if err.hint:
        click.echo(f"ferryman: hint: {err.hint}", err=True)
    if as_json:
        emit_json({"ok": False, **err.to_dict()})


def format_entry(entry: Entry) -> str:
    kind = {"dir": "d", "file": "-", "link": "l"}.get(str(entry.type), "?")
    size = "-" if entry.size is None or entry.is_dir else str(entry.size)
    when = entry.mtime.strftime("%Y-%m-%d %H:%M") if entry.mtime else "-"
    name = entry.name.encode("utf-8", "backslashreplace").decode("utf-8")
    if entry.link_target:
        name += f" -> {entry.link_target}"
    return f"{kind} {size:>12}  {when:16}  {name}"
