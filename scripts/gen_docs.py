"""Refresh the generated parts of docs/ (run after changing a connection setting)."""

from __future__ import annotations

import re
from pathlib import Path

from ferryman.connection import settings_table

DOC = Path(__file__).resolve().parent.parent / "docs" / "connections.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def render(text: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    return pattern.sub(f"{BEGIN}\n{settings_table()}{END}", text)


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text(encoding="utf-8")), encoding="utf-8")
