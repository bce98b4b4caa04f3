"""What the CLI prints: errors in one readable line, JSON for scripts, progress on terminals."""

from __future__ import annotations

import json
from typing import Any

import click

from ..backends.base import Entry
from ..errors import FerrymanError
from ..terminal import safe_text

__all__ = ["emit_json", "format_entry", "print_error", "say"]


def emit_json(payload: Any) -> None:
    # ensure_ascii (the default): control characters in names and replies come out as
    # \u001b, never as raw bytes a terminal would act on
    click.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=True))


def say(text: str, *, err: bool = False) -> None:
    """Print one line of human output: names and replies from servers are shown, never obeyed
    (control characters spelled out, see :func:`ferryman.terminal.safe_text`; a line break
    in a name too: one call, one line)."""
    click.echo(safe_text(text), err=err)


def print_error(err: FerrymanError, as_json: bool) -> None:
    """One line saying what failed, one saying what to do; JSON on stdout with --json."""
    # a job file's problems: one per line (LF only: other breaks, \x85 and the like, are shown)
    for line in err.message.split("\n"):
        click.echo(f"ferryman: error: {safe_text(line)}", err=True)
    if err.hint:
        click.echo(f"ferryman: hint: {safe_text(err.hint)}", err=True)
    if as_json:
        emit_json({"ok": False, **err.to_dict()})


def format_entry(entry: Entry) -> str:
    kind = {"dir": "d", "file": "-", "link": "l"}.get(str(entry.type), "?")
    size = "-" if entry.size is None or entry.is_dir else str(entry.size)
    when = entry.mtime.strftime("%Y-%m-%d %H:%M") if entry.mtime else "-"
    name = safe_text(entry.name)  # as ``ls -b``: ESC is \e, a stray byte \xNN
    if entry.link_target:
        name += f" -> {safe_text(entry.link_target)}"
    return f"{kind} {size:>12}  {when:16}  {name}"
