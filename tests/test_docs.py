"""The generated parts of the docs match the code."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import click

from ferryman.cli import cli
from ferryman.connection.urls import SUPPORTED_SCHEMES

ROOT = Path(__file__).resolve().parent.parent


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_are_current() -> None:
    for path, content in _gen_docs().rendered().items():
        assert path.read_text(encoding="utf-8") == content, "run: python scripts/gen_docs.py"


def test_generated_docs_hold_what_they_should() -> None:
    assert "| `fingerprint` |" in (ROOT / "docs/connections.md").read_text(encoding="utf-8")
    jobs = (ROOT / "docs/jobs.md").read_text(encoding="utf-8")
    assert "| `only_new` |" in jobs and "### `wait_for`" in jobs
    assert "| `recursive` | `True` | Always true" in jobs  # sync's
    cli_md = (ROOT / "docs/cli.md").read_text(encoding="utf-8")
    assert "| `--fingerprint FP` |" in cli_md and "| `--passive` / `--active` |" in cli_md
    assert re.search(r"^\| `--timeout S` \| .* \| `get`, `ls`, ", cli_md, re.M)
    schema = json.loads((ROOT / "docs/job.schema.json").read_text(encoding="utf-8"))
    assert schema["title"] == "ferryman job" and "steps" in schema["properties"]


# --- prose that must agree with the command line (issue 12) ----------------------------------


def _backticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def test_the_readme_says_which_commands_take_which_options() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    start = readme.index("The remote commands (")
    sentence = readme[start : readme.index("(docs/cli.md)", start)]
    commands_part, rest = sentence.split(") take ", 1)
    options_part, before_part = rest.split("; `-v`, `--log`", 1)
    ctx = click.Context(cli)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    remote = {name for name, c in commands.items() if c and "retries" in {p.name for p in c.params}}
    assert set(_backticked(commands_part)) == remote
    named = {n for item in _backticked(options_part) for n in item.split("/")}
    common = {
        name
        for p in commands["ls"].params  # type: ignore[union-attr]
        if isinstance(p, click.Option)
        for name in [*p.opts, *p.secondary_opts]
        if name.startswith("--") or name == "-v"
    } - {"--verbose", "--help", "-h"}
    assert named == common
    before = set(_backticked("`-v`, `--log`" + before_part.split(" may also come")[0]))
    globals_ = {p.opts[0] for p in cli.params if p.name not in ("help", "version")}
    assert before == globals_


def test_the_url_table_lists_every_scheme_with_its_port() -> None:
    text = (ROOT / "docs/connections.md").read_text(encoding="utf-8")
    table = text[text.index("| scheme | meaning | default port |") :].split("\n\n")[0]
    rows = {m[0]: int(m[1]) for m in re.findall(r"^\| `(\w+)://` \|.*\| (\d+) \|$", table, re.M)}
    ports = {"ftp": 21, "ftpes": 21, "ftps": 990, "sftp": 22}
    assert set(SUPPORTED_SCHEMES) == set(ports)
    assert rows == ports


def test_the_quick_benchmark_takes_as_long_everywhere() -> None:
    """docs/benchmarks.md, benchmarks/README.md and run.py --help give one duration."""
    run = (ROOT / "benchmarks/run.py").read_text(encoding="utf-8")
    (helped,) = re.findall(r'"--quick".*?\(<(\d+) min\)', run, re.S)
    docs = (ROOT / "docs/benchmarks.md").read_text(encoding="utf-8")
    (documented,) = re.findall(r"run\.py --quick .*\(<(\d+) min\)", docs)
    readme = (ROOT / "benchmarks/README.md").read_text(encoding="utf-8")
    (read_me,) = re.findall(r"run\.py --quick .*under (\d+) minutes", readme)
    assert helped == documented == read_me
