"""What ``--help`` says: the exit-code table, aligned; sync's -r saying it changes nothing."""

from __future__ import annotations

import re

from click.testing import CliRunner

from ferryman.cli import EXIT_CODE_LABELS, cli
from ferryman.errors import ExitCode


def help_of(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_exit_code_table_is_aligned_in_columns() -> None:
    text = help_of()
    lines = text[text.index("Exit codes:") :].splitlines()[1:5]
    assert len(lines) == 4
    assert set(EXIT_CODE_LABELS) == set(ExitCode)
    columns: list[set[int]] = [set(), set(), set()]
    seen = []
    for line in lines:
        cells = list(re.finditer(r"(?:^|\s)\s?(\d{1,2}) \S", line))
        for n, cell in enumerate(cells):
            columns[n].add(cell.end(1))  # where each code ends: the same in every row
            seen.append(int(cell.group(1)))
    assert sorted(seen) == sorted(int(code) for code in ExitCode)
    assert all(len(ends) == 1 for ends in columns), lines
    for code, label in EXIT_CODE_LABELS.items():
        assert re.search(rf"\b{int(code)} {re.escape(label)}(\s|$)", text)


def test_sync_says_that_it_always_recurses() -> None:
    assert "Copy a directory's contents, all levels." in help_of("get")
    text = " ".join(help_of("sync").split())
    assert "-r, --recursive Accepted and ignored: sync always mirrors all levels." in text
