"""Secret values, and masking them wherever ferryman writes text.

One process-wide registry of secret *values* (not names): every password ferryman resolves
(``secrets.resolve_credentials``, a URL's or a connection's ``password``), every ``env.*``
value a job's expressions can read, and every rendered value that contains one of those.
:func:`mask` replaces each registered value -- and its common encodings: percent-encoded,
``repr``-escaped, JSON-escaped -- with ``****``. It is applied at every sink: error messages,
hints and reply texts (``errors.FerrymanError``), the run log and transcript handlers
(``wirelog``), the state file (``state.history``) and the JSON run report (``jobs.run``).

Values shorter than :data:`MIN_LENGTH` characters are not registered: they would mask
ordinary words (the FTP transcript masks ``PASS`` whatever its length).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "MIN_LENGTH",
    "contains_secret",
    "forget_secrets",
    "mask",
    "mask_data",
    "register_secret",
]

MASK = "****"
MIN_LENGTH = 4


class _Registry:
    """The registered values and every form of them, longest first (a secret inside a longer
    one is masked with it). ``forms`` is replaced, never changed: readers need no lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: set[str] = set()
        self.forms: tuple[str, ...] = ()


_registry = _Registry()


def _encodings(value: str) -> set[str]:
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    return {f for f in forms if len(f) >= MIN_LENGTH}


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its encodings) in everything ferryman writes from now on."""
    if not value or len(value) < MIN_LENGTH or value in _registry.values:
        return
    with _registry.lock:
        if value in _registry.values:
            return
        _registry.values.add(value)
        forms = set(_registry.forms) | _encodings(value)
        _registry.forms = tuple(sorted(forms, key=lambda f: (-len(f), f)))


def forget_secrets() -> None:
    """Forget every registered secret: between unrelated work in one long-lived process (the
    tests do it after each test, so that one test's password masks nothing in the next)."""
    with _registry.lock:
        _registry.values.clear()
        _registry.forms = ()


def contains_secret(text: str) -> bool:
    """Whether ``text`` holds a registered secret (in any registered form)."""
    return any(form in text for form in _registry.forms)


def mask(text: str) -> str:
    """``text`` with every registered secret replaced by ``****``."""
    forms = _registry.forms  # a consistent snapshot
    if not forms or not text:
        return text
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def mask_data(value: Any) -> Any:
    """``value`` with :func:`mask` applied to every string in it (dicts, lists, tuples; any
    other object whose ``str`` holds a secret becomes that ``str``, masked)."""
    if not _registry.forms:
        return value
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {mask_data(k) if isinstance(k, str) else k: mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    if value is None or isinstance(value, int | float):
        return value
    text = str(value)  # a path or another object that JSON output writes as its str()
    return mask(text) if contains_secret(text) else value
