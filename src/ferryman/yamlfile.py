"""YAML files with positions: every error names file:line:column (connections and job files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import ConfigError

__all__ = ["load_yaml", "position"]


def load_yaml(path: Path) -> Any:
    """Parse ``path`` keeping line/column marks; duplicate keys are refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}", hint="check the path") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (err.context, err.problem) if p)
        raise ConfigError(f"{where}: {problem}", hint="fix the YAML syntax there") from None
    except YAMLError as err:
        raise ConfigError(f"{path}: {err}") from None


def position(data: Any, loc: Sequence[str | int]) -> tuple[int, int] | None:
    """1-based (line, column) of the item at ``loc`` in data loaded by :func:`load_yaml`.

    Walks as deep as the location exists and returns the deepest known position, so an
    error inside a missing or wrongly typed value still points at its key.
    """
    found: tuple[int, int] | None = None
    node = data
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.key(key)
            found = (line + 1, col + 1)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line, col = node.lc.item(key)
            found = (line + 1, col + 1)
            node = node[key]
        else:
            break
    if found is None and isinstance(data, CommentedMap | CommentedSeq):
        found = (data.lc.line + 1, data.lc.col + 1)
    return found
