"""YAML files with positions: every error names file:line:column (connections and job files)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, ScalarEvent

from .errors import ConfigError
from .limits import MAX_JOB_FILE_BYTES, MAX_YAML_ALIASES, MAX_YAML_DEPTH, MAX_YAML_NODES

__all__ = ["load_yaml", "position"]

#: half of a UTF-16 pair: a "\ud800" escape in a double-quoted string makes one, and no
#: output can print it
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Limited(MarkedYAMLError):
    """A document over one of the limits of ``ferryman.limits``."""


class _HalfCharacter(_Limited):
    """A lone UTF-16 surrogate, which no output can print."""


class _BoundedComposer(Composer):
    """Composes nodes within the limits: nesting depth, alias uses, and the number of values
    with every alias expanded, counted while composing, so a "billion laughs" stops early.

    Each node's expanded size and height are measured as it is composed (the growth of the
    running count and of the deepest level reached); an alias adds those of its anchor.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.warn_double_anchors = False  # YAML allows it (an alias takes the latest); no noise
        self.expanded = 0  #: values so far, aliases expanded
        self.deepest = 0  #: deepest level reached so far, aliases expanded
        self.aliases = 0
        self.measured: dict[int, tuple[int, int]] = {}  #: id(anchored node) -> (size, height)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _Limited(
                    None, None, f"more than {MAX_YAML_ALIASES} aliases", event.start_mark
                )
            target = self.anchors.get(event.anchor)
            if target is not None:
                if id(target) not in self.measured:
                    raise _Limited(
                        None,
                        None,
                        f"alias *{event.anchor} is inside its own anchor",
                        event.start_mark,
                    )
                size, height = self.measured[id(target)]
                self.count(size, event.start_mark)
                self.reach(self.depth + 1 + height, event.start_mark)
            return super().compose_node(parent, index)
        event = self.parser.peek_event()
        if isinstance(event, ScalarEvent) and _SURROGATE.search(event.value):
            raise _HalfCharacter(
                None,
                None,
                "an escape of half a character (\\uD800 to \\uDFFF); "
                "write the character itself, or \\U0001XXXX",
                event.start_mark,
            )
        self.count(1, event.start_mark)
        self.reach(self.depth + 1, event.start_mark)
        start, deepest = self.expanded, self.deepest
        self.deepest = self.depth + 1
        node = super().compose_node(parent, index)
        if getattr(node, "anchor", None) is not None:
            self.measured[id(node)] = (self.expanded - start, self.deepest - (self.depth + 1))
        self.deepest = max(deepest, self.deepest)
        return node

    def count(self, size: int, mark: Any) -> None:
        self.expanded += size
        if self.expanded > MAX_YAML_NODES:
            raise _Limited(
                None,
                None,
                f"more than {MAX_YAML_NODES} values (aliases expanded)",
                mark,
            )

    def reach(self, depth: int, mark: Any) -> None:
        self.deepest = max(self.deepest, depth)
        if depth > MAX_YAML_DEPTH:
            raise _Limited(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels (aliases expanded)", mark
            )


def _read(path: Path) -> str:
    """The file's text, refused unread past MAX_JOB_FILE_BYTES (a FIFO or /dev/zero too)."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_JOB_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}", hint="check the path") from None
    if len(raw) > MAX_JOB_FILE_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_JOB_FILE_BYTES // (1024 * 1024)} MiB; "
            "not a job or connections file",
            hint="docs/jobs.md#limits lists the limits on job files",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def load_yaml(path: Path) -> Any:
    """Parse ``path`` keeping line/column marks; duplicate keys are refused.

    The limits of ``ferryman.limits`` hold: file size, nesting depth, alias uses and
    values with aliases expanded; past one, a ConfigError at the file:line:column.
    """
    text = _read(path)
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.Composer = _BoundedComposer
    try:
        return yaml.load(text)
    except _Limited as err:
        mark = err.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        hint = (
            "fix the YAML syntax there"
            if isinstance(err, _HalfCharacter)
            else "docs/jobs.md#limits lists the limits on job files"
        )
        raise ConfigError(f"{where}: {err.problem}", hint=hint) from None
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (err.context, err.problem) if p)
        raise ConfigError(f"{where}: {problem}", hint="fix the YAML syntax there") from None
    except YAMLError as err:
        raise ConfigError(f"{path}: {' '.join(str(err).split())}") from None
    except Exception as err:  # the YAML library's own trouble with odd input: one line too
        why = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        raise ConfigError(
            f"{path}: cannot be read as YAML ({why})", hint="fix the YAML syntax"
        ) from None


def _mark(lookup: Any, key: Any) -> tuple[int, int] | None:
    """0-based (line, column) ruamel.yaml kept for ``key``; None for one merged in with
    ``<<: *alias`` (it has none, or raises)."""
    try:
        mark = lookup(key)
    except (KeyError, IndexError, TypeError):
        return None
    return (int(mark[0]), int(mark[1])) if mark else None


def position(data: Any, loc: Sequence[str | int]) -> tuple[int, int] | None:
    """1-based (line, column) of the item at ``loc`` in data loaded by :func:`load_yaml`.

    Walks as deep as the location exists and returns the deepest known position, so an
    error inside a missing or wrongly typed value still points at its key.
    """
    found: tuple[int, int] | None = None
    node = data
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            mark = _mark(node.lc.key, key)
            found = (mark[0] + 1, mark[1] + 1) if mark else found
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            mark = _mark(node.lc.item, key)
            found = (mark[0] + 1, mark[1] + 1) if mark else found
            node = node[key]
        else:
            break
    if found is None and isinstance(data, CommentedMap | CommentedSeq):
        found = (data.lc.line + 1, data.lc.col + 1)
    return found
