"""The generated parts of the docs match the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_connection_settings_table_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "connections.md").read_text(encoding="utf-8")
    assert module.render(text) == text, "run: python scripts/gen_docs.py"
    assert "| `fingerprint` |" in text
