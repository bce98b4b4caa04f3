"""ferryman.terminal.safe_text and the CLI printers that use it (issue 13)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.progress import Progress, TextColumn

from ferryman.backends.base import Entry, EntryType
from ferryman.cli.output import format_entry, print_error, say
from ferryman.cli.progress import BarEvents
from ferryman.errors import RemoteError
from ferryman.terminal import safe_text
from ferryman.transfer import Job, PlanItem
from ferryman.wirelog import WireLog, configure_logging


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\e[2J"),
        ("\x1b]0;title\x07", "\\e]0;title\\x07"),
        ("a\tb\nc\rd", "a\\tb\\nc\\rd"),
        ("\x00\x01\x1f\x7f", "\\x00\\x01\\x1f\\x7f"),
        ("\x85\x9b2J", "\\x85\\x9b2J"),  # C1: NEL and the 8-bit CSI
        ("\u202eexe.txt", "\\u202eexe.txt"),
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("caf\udce9", "caf\\xe9"),  # an undecodable byte kept by surrogateescape
        ("\ud800", "\\ud800"),
    ],
)
def test_control_characters_are_spelled_out(raw: str, shown: str) -> None:
    assert safe_text(raw) == shown


def test_printable_text_is_kept() -> None:
    text = "Bestellungen_März 2026 (ü) — 日本語 😀 \\ ~ [x] .csv"
    assert safe_text(text) == text


def test_every_control_character_is_spelled_out() -> None:
    controls = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
    shown = safe_text("".join(controls))
    assert all(c not in shown for c in controls)
    assert shown.isprintable()
    shown.encode("utf-8")  # no lone surrogate left either


def test_format_entry_spells_out_name_and_link_target() -> None:
    entry = Entry(
        name="\x1b]0;x\x07n",
        type=EntryType.LINK,
        size=1,
        mtime=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        link_target="\x1b[2J",
    )
    assert format_entry(entry).endswith("\\e]0;x\\x07n -> \\e[2J")


def test_print_error_spells_out_message_and_hint_and_keeps_json_raw() -> None:
    err = RemoteError("refused \x1b[2Jname", hint="reply \x1b]0;t\x07")

    @click.command()
    def run() -> None:
        print_error(err, as_json=True)
        say("line \x9b1\nnext")

    result = CliRunner().invoke(run)
    assert "ferryman: error: refused \\e[2Jname" in result.stderr
    assert "ferryman: hint: reply \\e]0;t\\x07" in result.stderr
    assert "line \\x9b1\\nnext\n" in result.stdout  # one call, one line
    assert "\x1b" not in result.output and "\x9b" not in result.output
    assert '"message": "refused \\u001b[2Jname"' in result.stdout  # JSON: raw, escaped by JSON


def test_progress_labels_are_text_not_markup() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    with Progress(TextColumn("{task.description}"), console=console, auto_refresh=False) as bar:
        events = BarEvents(bar, 1, 10)
        entry = Entry(name="x", type=EntryType.FILE, size=10)
        item = PlanItem("/in/[bold]\x1b]0;t\x07n.csv", "n.csv", entry)
        events.started(Job(item, "/tmp/n.csv"), 0)
        bar.refresh()
    shown = out.getvalue()
    assert "[bold]\\e]0;t\\x07n.csv" in shown  # the brackets are text, not rich markup
    assert "\x07" not in shown and "\x1b]" not in shown


def test_the_transcript_spells_out_what_the_server_sent(tmp_path: Path) -> None:
    log_file = tmp_path / "run.log"
    configure_logging(0, log_file)
    try:
        WireLog("ftp://h").received("150 \x1b]0;owned\x07 name\nforged line")
    finally:
        configure_logging(0, None)
    text = log_file.read_text(encoding="utf-8")
    assert "< 150 \\e]0;owned\\x07 name\\nforged line" in text
    assert "\x1b" not in text and text.count("\n") == 1
