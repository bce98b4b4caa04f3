"""Refresh the generated parts of docs/ (run after changing a connection setting, the job
file's schema or a command-line option): the settings table of connections.md, the reference
of jobs.md and serve.md, job.schema.json, and the option tables of cli.md."""

from __future__ import annotations

import re
from pathlib import Path

from ferryman.cli.reference import common_options_table, global_options_table
from ferryman.connection import settings_table
from ferryman.jobs.reference import job_schema_text, reference_tables, unattended_tables

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _fill(text: str, marker: str, content: str) -> str:
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    return pattern.sub(lambda _: f"{begin}\n{content}{end}", text)


def render(text: str) -> str:
    """connections.md with its settings table filled in (kept for the docs test)."""
    return _fill(text, "settings", settings_table())


def rendered() -> dict[Path, str]:
    """Every generated document: path -> the content it should have."""
    connections = DOCS / "connections.md"
    jobs = DOCS / "jobs.md"
    cli = _fill((DOCS / "cli.md").read_text(encoding="utf-8"), "options", common_options_table())
    return {
        DOCS / "cli.md": _fill(cli, "global-options", global_options_table()),
        connections: render(connections.read_text(encoding="utf-8")),
        jobs: _fill(jobs.read_text(encoding="utf-8"), "reference", reference_tables()),
        DOCS / "job.schema.json": job_schema_text(),
        DOCS / "serve.md": _fill(
            (DOCS / "serve.md").read_text(encoding="utf-8"), "reference", unattended_tables()
        ),
    }


if __name__ == "__main__":
    for path, content in rendered().items():
        path.write_text(content, encoding="utf-8")
