"""What ``ferryman validate`` can check before anything runs: names that must resolve.

- Every connection a step names: ``CONNECTION:PATH`` in a field that is remote (``receive``
  ``from``, ``send`` ``to``, the ``path`` of ``delete_remote``, ``mkdir_remote`` and
  ``rmdir_remote``) must name a file-server connection of the job; in a field that may be
  either (``list``, ``wait_for``, ``sync``, ``rename``, ``foreach`` ``items``) a
  ``NAME:/path`` (or ``NAME:~``) with an unknown NAME is taken for a misspelt connection
  rather than a strange local file name; ``load`` ``into`` and ``export`` ``from`` name a
  database connection.
- Every name an expression uses: ``steps.NAME`` must be a step before this one, in its own
  list or in a list around it (a ``foreach``'s steps see the steps before the ``foreach``);
  ``vars.NAME`` and bare names must be variables (a variable sees only the ones before it),
  the foreach item (``as:``) of a ``foreach`` around the step, or one of the names the
  sandbox gives (``vars``, ``env``, ``steps``, ``job``, ``now``, ``today``, ``timedelta``);
  ``env.NAME`` must be allow-listed under ``env:``; ``job.NAME`` is ``name``, ``run_id`` or
  ``dir``. A template that does not parse is reported too.
- OpenPGP on a transfer: ``encrypt`` on a ``send``, ``decrypt`` on a ``receive`` only.

Found on the YAML as loaded (not the validated model), so the problems come with the schema
errors, all in one ``ferryman validate``, each at its file:line:column.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from ..limits import MAX_LOOP_ITERATIONS
from ..yamlfile import position
from .expressions import Expressions, is_template
from .sandbox import LimitError, bounded_binop
from .unattended import TRIGGER_KEYS

__all__ = ["reference_problems"]

_NAMED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_-]*):(?P<path>.*)$", re.S)
_WHOLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)

#: (action, key) -> "remote": must name a connection; "either": remote or local;
#: "local": a local path (a known connection there is a mistake too)
_PLACES: dict[tuple[str, str], str] = {
    ("receive", "from"): "remote",
    ("receive", "to"): "local",
    ("send", "from"): "local",
    ("send", "to"): "remote",
    ("delete_remote", "path"): "remote",
    ("mkdir_remote", "path"): "remote",
    ("rmdir_remote", "path"): "remote",
    ("delete_local", "path"): "local",
    ("mkdir_local", "path"): "local",
    ("rmdir_local", "path"): "local",
    ("list", "path"): "either",
    ("wait_for", "path"): "either",
    ("sync", "from"): "either",
    ("sync", "to"): "either",
    ("rename", "from"): "either",
    ("foreach", "items"): "either",
    **{(action, "to"): "local" for action in ("encrypt", "decrypt", "sign", "verify", "extract")},
    ("compress", "to"): "local",
    ("compress", "archive"): "local",
}
#: OpenPGP options on the transfer that cannot do them
_WRONG_WAY = {
    ("receive", "encrypt"): "encrypt: is an option of send; a receive decrypts (decrypt:)",
    ("send", "decrypt"): "decrypt: is an option of receive; a send encrypts (encrypt:)",
}
_JOB_KEYS = ("name", "run_id", "dir")
_SCOPES = ("vars", "env", "steps", "job", "trigger")

Loc = tuple[str | int, ...]


@dataclass
class _Scope:
    """What an expression at one place may name."""

    variables: list[str]  #: the variables visible here
    steps: set[str] = field(default_factory=set)  #: steps before this one
    items: list[str] = field(default_factory=list)  #: foreach item names around it
    current: str | None = None  #: the step the expression belongs to


@dataclass
class _Checker:
    path: Path
    data: Any
    files: list[str]  #: file-server connection names
    databases: list[str]
    env: list[str]
    globals: set[str]
    variables: list[str]  #: every variable of the job
    items: set[str]  #: every foreach item name of the job
    #: every step name -> the foreach it is inside (None: top level)
    parents: dict[str, str | None] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    expressions: Expressions = field(default_factory=Expressions)

    # --- reporting --------------------------------------------------------------------------

    def report(self, loc: Loc, message: str) -> None:
        line_col = _value_position(self.data, loc)
        where = f"{self.path}:{line_col[0]}:{line_col[1]}" if line_col else str(self.path)
        self.problems.append(f"{where}: {'.'.join(map(str, loc))}: {message}")

    def known_connections(self) -> str:
        return ", ".join(sorted([*self.files, *self.databases])) or "none"

    # --- connections ------------------------------------------------------------------------

    def place(self, loc: Loc, action: str, key: str, value: Any) -> None:
        kind = _PLACES.get((action, key))
        if kind is None or not isinstance(value, str) or "://" in value:
            return
        if value.lstrip().startswith(("{{", "{%")):
            return  # the whole place comes from an expression
        match = _NAMED.match(value)
        name = match["name"] if match else None
        if name in self.databases:
            self.report(loc, f"{name!r} is a database connection; {action} {key} takes files")
        elif kind == "local" and name in self.files:
            what = {"send": "send uploads from", "receive": "receive downloads to"}.get(
                action, f"{action} takes"
            )
            use = f"; use {action.replace('_local', '_remote')}" if "_local" in action else ""
            self.report(loc, f"{what} a local path here, but {name!r} names a connection{use}")
        elif kind == "remote" and name not in self.files:
            if name is None:
                self.report(
                    loc,
                    f"{value!r} does not name a remote place: write CONNECTION:PATH "
                    f"(known: {self.known_connections()}) or a URL",
                )
            else:
                self.report(loc, self.no_connection(name))
        elif (
            kind == "either"
            and match
            and name not in self.files
            and len(str(name)) > 1  # C:/ is a drive
            and match["path"].startswith(("/", "~"))
        ):
            self.report(loc, self.no_connection(str(name)))

    def no_connection(self, name: str) -> str:
        return f"no connection named {name!r} (known: {self.known_connections()})"

    def database(self, loc: Loc, name: str) -> None:
        if "{{" in name or name in self.databases:
            return
        if name in self.files:
            self.report(loc, f"{name!r} is a file server; a database connection is needed here")
        else:
            known = ", ".join(sorted(self.databases)) or "none"
            self.report(loc, f"no database connection named {name!r} (known: {known})")

    # --- expressions ------------------------------------------------------------------------

    def template(self, loc: Loc, text: str, scope: _Scope, *, condition: bool = False) -> None:
        source = text
        if condition and not _WHOLE.match(text) and not is_template(text):
            source = "{{ " + text + " }}"  # if: takes the bare expression too
        shown = text.strip() if len(text.strip()) <= 200 else text.strip()[:200] + "..."
        try:
            tree = self.expressions.env.parse(source)
            self.expressions.env.from_string(source)  # unknown filters and tests, too
            # (its constant folding may evaluate: 'a'.__class__ ~ x is the sandbox's refusal)
            undeclared = meta.find_undeclared_variables(tree)
        except TemplateSyntaxError as err:
            self.report(loc, f"expression {shown!r} does not parse: {err.message}")
            return
        except Exception as err:  # a literal too big to compile, a refused attribute ...
            why = " ".join(f"{type(err).__name__}: {err}".split())[:160]
            self.report(loc, f"expression {shown!r} does not compile ({why})")
            return
        try:
            limit = _limit_problem(tree)
        except RecursionError:
            limit = "nested too deeply"
        if limit is not None:
            self.report(loc, f"expression {shown!r}: {limit}")
        known_bare = {*_SCOPES, *self.globals, *scope.variables, *scope.items}
        for name in sorted(undeclared - known_bare):
            self.report(loc, self.unknown_name(name, scope, known_bare))
        for kind, name in _references(tree):
            message = self.reference(kind, name, scope)
            if message:
                self.report(loc, message)

    def unknown_name(self, name: str, scope: _Scope, known: Collection[str]) -> str:
        if name in self.variables and scope.current is None:
            return f"variable {name!r} comes later; a variable uses only the ones before it"
        if name == "item" and scope.items:
            return (
                f"'item' is not set here: the foreach around this step names it {scope.items[-1]!r}"
            )
        if name in self.items:
            return f"{name!r} is the item of a foreach this step is not inside"
        shown = [*scope.variables, *scope.items]
        return _unknown(
            f"unknown name {name!r} (variables and foreach items here: "
            f"{', '.join(shown) or 'none'}; also vars, env, steps, job, trigger, now, today, "
            "timedelta)",
            name,
            sorted(known),
        )

    def reference(self, kind: str, name: str, scope: _Scope) -> str | None:
        if name.startswith("_"):
            return None  # internals: the sandbox refuses them when the step runs
        if kind == "vars" and name not in scope.variables:
            if name in self.variables and scope.current is None:
                return f"variable {name!r} comes later; a variable uses only the ones before it"
            return _unknown(f"no variable {name!r} (vars.{name})", name, scope.variables)
        if kind == "env" and name not in self.env:
            return (
                f"env.{name} is not allow-listed: add {name} under env: (known: "
                + (", ".join(self.env) or "none")
                + ")"
            )
        if kind == "job" and name not in _JOB_KEYS:
            return f"job.{name} does not exist (job.name, job.run_id, job.dir)"
        if kind == "trigger" and name not in TRIGGER_KEYS:
            keys = ", ".join(f"trigger.{k}" for k in TRIGGER_KEYS)
            return f"trigger.{name} does not exist ({keys})"
        if kind == "steps":
            return self.step_reference(name, scope)
        return None

    def step_reference(self, name: str, scope: _Scope) -> str | None:
        if name in scope.steps:
            return None
        before = sorted(scope.steps, key=lambda n: self.order[n])
        if name == scope.current:
            return f"steps.{name} is this step's own result; a step reads the steps before it"
        if name not in self.order:
            return _unknown(f"no step named {name!r}", name, list(self.order))
        if _inside(self.parents, scope.current, name):
            return (
                f"steps.{name} is the foreach around this step: its result exists when all "
                f"iterations are done; inside, use its item"
            )
        outer = self.parents.get(name)
        if (
            outer is not None
            and outer != scope.current
            and not _inside(self.parents, scope.current, outer)
        ):
            return (
                f"step {name!r} is inside foreach {outer!r}: read its results as "
                f"steps.{outer}.iterations (each: item and steps)"
            )
        if scope.current is None:
            return f"steps.{name}: variables are computed before any step runs"
        shown = ", ".join(before) or "none"
        return (
            f"step {name!r} comes after this one; steps.NAME reads an earlier step's result "
            f"(before this one: {shown})"
        )

    # --- walking the job ---------------------------------------------------------------------

    def steps(self, steps: Any, loc: Loc, scope: _Scope) -> None:
        seen = set(scope.steps)
        for index, step in enumerate(steps if isinstance(steps, list) else []):
            if not isinstance(step, dict):
                continue
            here = (*loc, index)
            name = step.get("name") if isinstance(step.get("name"), str) else None
            inner = _Scope(scope.variables, set(seen), scope.items, name)
            if isinstance(step.get("if"), str):
                self.template((*here, "if"), step["if"], inner, condition=True)
            for action, value in step.items():
                if action in ("name", "if", "when", "continue_on_error", "retries"):
                    continue
                self.action((*here, action), str(action), value, inner)
            if name is not None:
                seen.add(name)

    def action(self, loc: Loc, action: str, value: Any, scope: _Scope) -> None:
        if action == "foreach" and isinstance(value, dict):
            for key, item in value.items():
                if key != "steps":
                    self.value((*loc, key), action, str(key), item, scope)
            as_ = value.get("as", "item")
            items = [*scope.items, as_] if isinstance(as_, str) else scope.items
            self.steps(
                value.get("steps"),
                (*loc, "steps"),
                _Scope(scope.variables, scope.steps, items, scope.current),
            )
            return
        if isinstance(value, dict):
            for key, item in value.items():
                self.value((*loc, key), action, str(key), item, scope)
        else:
            self.value(loc, action, "", value, scope)

    def value(self, loc: Loc, action: str, key: str, value: Any, scope: _Scope) -> None:
        for sub_loc, text in _strings(loc, value):
            if is_template(text):
                self.template(sub_loc, text, scope)
        self.place(loc, action, key, value)
        if isinstance(value, str) and (action, key) == ("load", "into"):
            name, sep, _table = value.partition(":")
            if sep:
                self.database(loc, name)
        elif isinstance(value, str) and (action, key) == ("export", "from"):
            self.database(loc, value)
        elif (action, key) in _WRONG_WAY and value is not None:
            self.report(loc, _WRONG_WAY[(action, key)])

    def index_steps(self, steps: Any, parent: str | None) -> None:
        for step in steps if isinstance(steps, list) else []:
            if not isinstance(step, dict) or not isinstance(step.get("name"), str):
                continue
            self.order.setdefault(step["name"], len(self.order))
            self.parents.setdefault(step["name"], parent)
            foreach = step.get("foreach")
            if isinstance(foreach, dict):
                as_ = foreach.get("as", "item")
                self.items.add(as_ if isinstance(as_, str) else "item")
                self.index_steps(foreach.get("steps"), step["name"])


class _NotConstant(Exception):
    """The expression's value is known only when the job runs."""


_FOLDED = ("*", "**", "+", "%", "-", "/", "//")


def _constant(node: nodes.Node) -> Any:
    """The value of a constant expression, computed within the limits (LimitError past)."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        return [_constant(item) for item in node.items]
    if isinstance(node, nodes.Neg | nodes.Pos):
        value = _constant(node.node)
        if not isinstance(value, int | float):
            raise _NotConstant
        return -value if isinstance(node, nodes.Neg) else value
    if isinstance(node, nodes.BinExpr) and node.operator in _FOLDED:
        left, right = _constant(node.left), _constant(node.right)
        try:
            return bounded_binop(node.operator, left, right)
        except LimitError:
            raise
        except Exception:  # 1/0, 'a' - 1: the run says so
            raise _NotConstant from None
    raise _NotConstant


def _iterations(node: nodes.Node) -> int:
    """How many times a loop over ``node`` runs, when that is known (else 1)."""
    try:
        if (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "range"
            and not node.kwargs
        ):
            args = [_constant(arg) for arg in node.args]
            if 1 <= len(args) <= 3 and all(isinstance(a, int) for a in args):
                return len(range(*args))
        value = _constant(node)
        return len(value) if isinstance(value, list | str) else 1
    except (_NotConstant, LimitError, ValueError, TypeError, OverflowError):
        return 1


def _limit_problem(tree: nodes.Template) -> str | None:
    """What the limits on expressions (``ferryman.limits``) refuse in a template, as far as its
    constants tell: ``'a' * 3000000000``, ``2 ** (2 ** 24)``, loops of 1e5 x 1e5."""
    for node in tree.find_all(nodes.BinExpr):
        try:
            _constant(node)
        except LimitError as err:
            return err.message
        except _NotConstant:
            pass

    total = 0  # as the run counts: every iteration of every loop

    def loops(node: nodes.Node, times: int) -> str | None:
        nonlocal total
        for child in node.iter_child_nodes():
            inner = times
            if isinstance(child, nodes.For):
                inner = times * _iterations(child.iter)
                total += inner
                if total > MAX_LOOP_ITERATIONS:
                    return (
                        f"its loops would run {total:,} iterations or more; "
                        f"the limit is {MAX_LOOP_ITERATIONS:,} in all"
                    )
            found = loops(child, inner)
            if found is not None:
                return found
        return None

    return loops(tree, 1)


def _inside(parents: dict[str, str | None], step: str | None, outer: str) -> bool:
    """Whether ``step`` is (at any depth) among the steps of foreach ``outer``."""
    while step is not None:
        step = parents.get(step)
        if step == outer:
            return True
    return False


def _unknown(message: str, name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return message + (f"; did you mean {close[0]!r}?" if close else "")


def _strings(loc: Loc, value: Any) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings((*loc, index), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings((*loc, key), item)


def _references(tree: nodes.Node) -> Iterator[tuple[str, str]]:
    """``(scope, name)`` of every ``steps.NAME``, ``vars.NAME``, ``env.NAME``, ``job.NAME``
    (or ``steps['NAME']``) in a parsed template."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if not isinstance(base, nodes.Name) or base.name not in _SCOPES or base.ctx != "load":
            continue
        if isinstance(node, nodes.Getattr):
            yield base.name, str(node.attr)
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            yield base.name, node.arg.value


def _value_position(data: Any, loc: Loc) -> tuple[int, int] | None:
    """Line and column of the value at ``loc`` (where an expression or a place is)."""
    node = data
    for key in loc[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return position(data, list(loc))
    lc: Callable[..., Any] | None = getattr(getattr(node, "lc", None), "value", None)
    if isinstance(loc[-1], str) and lc is not None:
        try:
            line, col = lc(loc[-1])
            return line + 1, col + 1
        except (KeyError, TypeError):
            pass
    return position(data, list(loc))


def reference_problems(
    path: Path, data: dict[str, Any], files: Collection[str], databases: Collection[str]
) -> list[str]:
    """Every unresolved connection and expression name in the job ``data`` (as loaded)."""
    env = data.get("env")
    variables = data.get("variables")
    checker = _Checker(
        path,
        data,
        sorted(str(f) for f in files),
        sorted(str(d) for d in databases),
        [e for e in env if isinstance(e, str)] if isinstance(env, list) else [],
        set(Expressions().env.globals),
        [str(n) for n in variables] if isinstance(variables, dict) else [],
        set(),
    )
    checker.index_steps(data.get("steps"), None)
    values = variables if isinstance(variables, dict) else {}
    names = checker.variables
    for index, (name, value) in enumerate(values.items()):
        for loc, text in _strings(("variables", name), value):
            if is_template(text):
                checker.template(loc, text, _Scope(names[:index]))
    checker.steps(data.get("steps"), ("steps",), _Scope(names))
    return checker.problems
