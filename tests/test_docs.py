"""The generated parts of the docs match the code."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

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
    schema = json.loads((ROOT / "docs/job.schema.json").read_text(encoding="utf-8"))
    assert schema["title"] == "ferryman job" and "steps" in schema["properties"]
