"""The Jinja2 sandbox of job expressions, bounded: no expression can eat the memory or the CPU.

Jinja2's sandbox keeps expressions away from Python internals but lets them build values of
any size: ``'a' * 3000000000``, ``2 ** (2 ** 24)``, nested loops of 1e5 x 1e5. Here every
way to build something big is checked *before* it is built, against ``ferryman.limits``:

- the operators ``*``, ``**``, ``+``, ``%`` and ``~`` (concatenation): the size of the
  string or list they would make, the digits of the integer;
- the filters and ``str`` methods that pad or repeat (``center``, ``indent``, ``wordwrap``,
  ``format``, ``batch``, ``slice``, ``replace``, ``join``, ``ljust``, ``zfill`` ...), and
  the size of what any filter is given and gives back;
- every value a ``{{ }}`` prints (``finalize``) and the template's whole output;
- ``{% for %}`` loops: all iterations of one rendering together.

Past a limit, :class:`LimitError` (a ConfigError: exit 2) says which one.
"""

from __future__ import annotations

import functools
import re
import string
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from ..errors import ConfigError
from ..limits import MAX_INT_BITS, MAX_INT_DIGITS, MAX_LOOP_ITERATIONS, MAX_VALUE_CHARS

__all__ = ["BoundedEnvironment", "LimitError", "bounded_binop", "weight"]

_NUMBERS = re.compile(r"\d+")
#: a printf-style conversion: flags, width, precision
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*|\*)(?:\.(\d*|\*))?[hlL]?[a-zA-Z%]")
#: filters whose integer arguments are widths or counts of what they make
_WIDTH_FILTERS = frozenset({"center", "indent", "wordwrap", "batch", "slice"})
#: filters that take constant time and make nothing bigger than what they are given: left
#: unwrapped, so ``{{ big|length }}`` in a loop stays as cheap as it always was
_CHEAP_FILTERS = frozenset(
    {
        "abs", "attr", "count", "d", "default", "filesizeformat", "first", "float",
        "int", "last", "length", "random", "round",
    }
)  # fmt: skip
#: str methods whose integer arguments are widths
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class LimitError(ConfigError):
    """An expression would go past one of the limits of ``ferryman.limits``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint="docs/jobs.md#limits lists the limits on expressions")


def weight(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """Roughly the characters ``value`` prints as: string lengths plus one per item, nested
    lists and mappings walked (a shared item counts each time). Stops counting past ``limit``.
    """
    total = 0
    pending: list[Any] = [value]
    while pending and total <= limit:
        item = pending.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += 1 + len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1 + len(item)
            pending.extend(item)
        else:
            total += 1
    return total


def _too_big(size: int, what: str = "value") -> LimitError:
    return LimitError(
        f"the {what} would be {size:,} characters or items or more; "
        f"the limit is {MAX_VALUE_CHARS:,}"
    )


def _check_weight(value: Any, what: str = "value") -> Any:
    size = weight(value)
    if size > MAX_VALUE_CHARS:
        raise _too_big(size, what)
    return value


def _int_too_big() -> LimitError:
    return LimitError(f"the integer would have more than {MAX_INT_DIGITS} digits")


def _check_widths(args: Iterable[Any], what: str) -> None:
    """Integers given as widths or counts."""
    for arg in args:
        if isinstance(arg, int) and abs(arg) > MAX_VALUE_CHARS:
            raise LimitError(f"{what}: {arg:,} is over the limit of {MAX_VALUE_CHARS:,}")


def _check_spec_numbers(specs: Iterable[str], what: str) -> None:
    """Widths and precisions written in format specifications (``%9999d``, ``{:>9999}``)."""
    for spec in specs:
        for number in _NUMBERS.findall(spec):
            if len(number) > 7 or int(number) > MAX_VALUE_CHARS:
                raise LimitError(f"{what}: a width over the limit of {MAX_VALUE_CHARS:,}")


def _percent_specs(text: str) -> list[str]:
    return [f"{m[1]} {m[2] or ''}" for m in _PERCENT.finditer(text)]


def _brace_specs(text: str) -> list[str]:
    try:
        return [spec or "" for _, _, spec, _ in string.Formatter().parse(text)]
    except ValueError:
        return []  # not a format string: str.format says so itself


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


def bounded_binop(operator: str, left: Any, right: Any) -> Any:
    """``left OPERATOR right`` for ``*``, ``**``, ``+`` and ``%``, refused before it is
    computed when its result would be past the limits."""
    if operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise _int_too_big()
        elif (_sized(left) and isinstance(right, int)) or (_sized(right) and isinstance(left, int)):
            sequence, times = (left, right) if _sized(left) else (right, left)
            size = weight(sequence) * max(times, 0)
            if size > MAX_VALUE_CHARS:
                raise _too_big(size)
        return left * right
    if operator == "**":
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and abs(left) > 1 and (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise _int_too_big()
        return left**right
    if operator == "+":
        if _sized(left) and _sized(right):
            size = weight(left) + weight(right)
            if size > MAX_VALUE_CHARS:
                raise _too_big(size)
        return left + right
    if operator == "%":
        if isinstance(left, str):
            specs = _percent_specs(left)
            _check_spec_numbers(specs, "the format")
            args = right if isinstance(right, tuple) else (right,)
            if any("*" in spec for spec in specs):  # widths given as arguments
                _check_widths(args, "the format")
            _check_weight(args, "formatted value")
            return _check_weight(left % right, "formatted value")
        return left % right
    raise ValueError(f"operator {operator} is not bounded")


class _Bounding(NodeTransformer):
    """Routes ``~`` and the iterables of ``{% for %}`` through the environment's checks."""

    def __init__(self, environment: BoundedEnvironment) -> None:
        self.environment = environment

    def _call(self, name: str, arg: nodes.Expr, lineno: int) -> nodes.Call:
        call = nodes.Call(
            nodes.EnvironmentAttribute(name, lineno=lineno), [arg], [], None, None, lineno=lineno
        )
        call.set_environment(self.environment)
        return call

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)  # type: ignore[assignment]
        return self._call("bounded_concat", nodes.List(node.nodes, lineno=node.lineno), node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)  # type: ignore[assignment]
        node.iter = self._call("bounded_loop", node.iter, node.lineno)  # type: ignore[arg-type]
        return node


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with the limits of ``ferryman.limits`` (module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)
        self._counter = threading.local()
        for name, function in list(self.filters.items()):
            self.filters[name] = _bounded_filter(name, function)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        _Bounding(self).visit(source)
        code: str = super()._generate(source, name, filename, defer_init)
        return code

    # --- per rendering ----------------------------------------------------------------------

    def start(self) -> None:
        """A new rendering: the loop budget starts again."""
        self._counter.iterations = 0

    def bounded_loop(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            done = getattr(self._counter, "iterations", 0) + 1
            self._counter.iterations = done
            if done > MAX_LOOP_ITERATIONS:
                raise LimitError(
                    f"loops would run more than {MAX_LOOP_ITERATIONS:,} iterations in all"
                )
            yield item

    def bounded_concat(self, parts: list[Any]) -> str:
        size = sum(weight(part) for part in parts)
        if size > MAX_VALUE_CHARS:
            raise _too_big(size, "joined string")
        joined = "".join(map(str, parts))
        _check_weight(joined, "joined string")
        return joined

    def generate_bounded(self, chunks: Iterable[str]) -> str:
        """The chunks of a template's output, stopped once past MAX_VALUE_CHARS."""
        out: list[str] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_VALUE_CHARS:
                raise _too_big(size, "rendered text")
            out.append(chunk)
        return "".join(out)

    @staticmethod
    def _finalize(value: Any) -> Any:
        return _check_weight(value, "printed value")

    # --- the sandbox's hooks ----------------------------------------------------------------

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        specs = _brace_specs(value.__self__)
        _check_spec_numbers(specs, "str.format")
        nested = any("{" in spec for spec in specs)  # widths given as arguments

        def bounded(*args: Any, **kwargs: Any) -> str:
            if nested:
                _check_widths([*args, *kwargs.values()], "str.format")
            text = wrapped(*args, **kwargs)
            _check_weight(text)
            return text

        return bounded

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return bounded_binop(operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):
            if name in _WIDTH_METHODS:
                _check_widths([owner, *args, *kwargs.values()], f"str.{name}")
            elif name == "join" and args:
                items = list(args[0]) if not isinstance(args[0], list | tuple) else args[0]
                _check_weight(len(owner) * len(items) + weight(items), "joined string")
                args = (items, *args[1:])
            elif name == "replace" and len(args) >= 2:
                _check_replace(owner, args[0], args[1])
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_weight(result)


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        _check_weight(len(text) + count * len(new), "replaced string")


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` checking what it is given and what it gives back."""
    if name in _CHEAP_FILTERS:
        return function
    skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
        _check_weight(value, f"value given to {name}")
        if name == "format" and isinstance(value, str):
            specs = _percent_specs(value)
            _check_spec_numbers(specs, name)
            if any("*" in spec for spec in specs):
                _check_widths([*rest, *kwargs.values()], name)
        elif name in _WIDTH_FILTERS:
            _check_widths([*rest, *kwargs.values()], name)
        elif name == "join" and value is not None and not isinstance(value, str):
            items = value if isinstance(value, list | tuple) else list(value)
            args = (*args[:skip], items, *rest)
            separator = rest[0] if rest else kwargs.get("d", "")
            _check_weight(len(str(separator)) * len(items) + weight(items), "joined string")
        elif name == "replace" and len(rest) >= 2:
            _check_replace(value, rest[0], rest[1])
        return _check_weight(function(*args, **kwargs), f"result of {name}")

    return bounded
