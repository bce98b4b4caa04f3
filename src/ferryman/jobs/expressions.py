"""``{{ expressions }}`` in job files: sandboxed Jinja2 over an explicit context.

What an expression can see: ``vars`` (and each variable by its own name), ``env`` (only the
names the job allow-lists), ``steps`` (earlier steps' results: ``steps.fetch.files``,
``steps.fetch.count``), ``job`` (name, run id), the current foreach item, and the functions
``now()``, ``today()``, ``timedelta(...)``. The sandbox refuses attribute access to
internals (``__class__``, ``mro`` ...), so a job file cannot reach Python objects, files or
the process; an undefined name is an error, never an empty string.

A value that is exactly one ``{{ expression }}`` keeps its type (a list stays a list); any
other string with ``{{ }}`` in it is rendered to a string.

What can be known before the run (a template that does not parse, an unknown name, a
``steps.NAME`` that is not an earlier step) is found when the job is loaded
(``jobs.checks``); what only the values can tell is found here, when the step runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined

from ..errors import ConfigError
from ..limits import MAX_VALUE_CHARS
from .sandbox import BoundedEnvironment, LimitError, weight

__all__ = ["Expressions", "is_template"]

_WHOLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.S)


def is_template(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _now(tz: str | None = None) -> datetime:
    """The current time, UTC unless a zone such as 'Europe/Berlin' is given."""
    if tz is None:
        return datetime.now(UTC)
    from zoneinfo import ZoneInfo  # noqa: PLC0415 - only when a zone is asked for

    return datetime.now(ZoneInfo(tz))


def _today() -> date:
    return datetime.now(UTC).date()


class Expressions:
    """Renders values against a context; errors name what failed and where (``where``)."""

    def __init__(self) -> None:
        self.env = BoundedEnvironment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self.env.globals.update(now=_now, today=_today, timedelta=timedelta)

    def render(self, value: Any, context: Mapping[str, Any], where: str) -> Any:
        """``value`` with every template string in it rendered (lists and dicts walked)."""
        if isinstance(value, str):
            return self._render_string(value, context, where) if is_template(value) else value
        if isinstance(value, list):
            return [self.render(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.render(v, context, f"{where}.{k}") for k, v in value.items()}
        return value

    def truth(self, expression: str, context: Mapping[str, Any], where: str) -> bool:
        """An ``if:`` condition: ``{{ x > 1 }}`` or the bare ``x > 1``."""
        match = _WHOLE.match(expression)
        source = match["expr"] if match else expression
        return bool(self._evaluate(source, context, where))

    def _render_string(self, text: str, context: Mapping[str, Any], where: str) -> Any:
        match = _WHOLE.match(text)
        if match and "{{" not in match["expr"]:
            return self._evaluate(match["expr"], context, where)
        self.env.start()
        try:
            template = self.env.from_string(text)
            return self.env.generate_bounded(template.generate(**context))
        except Exception as err:
            raise self._error(err, text, where) from None

    def _evaluate(self, source: str, context: Mapping[str, Any], where: str) -> Any:
        self.env.start()
        try:
            value = self.env.compile_expression(source.strip(), undefined_to_none=False)(**context)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()  # the missing name, or the sandbox refusal
            size = weight(value)
            if size > MAX_VALUE_CHARS:
                raise LimitError(
                    f"the value would be {size:,} characters or items or more; "
                    f"the limit is {MAX_VALUE_CHARS:,}"
                )
        except Exception as err:
            raise self._error(err, source, where) from None
        return value

    @staticmethod
    def _error(err: Exception, source: str, where: str) -> ConfigError:
        shown = source.strip()
        if len(shown) > 200:
            shown = shown[:200] + "..."
        if isinstance(err, LimitError):
            return ConfigError(f"{where}: expression {shown!r}: {err.message}", hint=err.hint)
        if isinstance(err, TemplateError):
            message = err.message or str(err)
        elif isinstance(err, RecursionError):
            message = "it calls itself too deeply (a macro or a structure without end)"
        elif isinstance(err, MemoryError):
            message = "out of memory"
        else:
            message = f"{type(err).__name__}: {err}"
        return ConfigError(
            f"{where}: expression {shown!r} failed: {' '.join(message.split())[:300]}",
            hint="expressions may use vars, env (allow-listed in env:), steps.NAME.*, "
            "the foreach item, now(), today() and timedelta()",
        )
