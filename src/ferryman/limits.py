"""Limits that keep a job file from exhausting the machine, in one place.

A job file is input: a mistake or a hostile file must end in one clear error (exit 2) at
its file:line:column, never in a traceback, a swapping machine or a run that never ends.
Each limit is far above what a real job meets (a job file is a few KiB, a value a path or a
list of file names) and far below what hurts:

- ``MAX_JOB_FILE_BYTES``: a job file larger than this is refused before it is parsed.
- ``MAX_YAML_DEPTH``: nesting of mappings and lists, aliases expanded.
- ``MAX_YAML_ALIASES``: ``*alias`` uses in one file.
- ``MAX_YAML_NODES``: values in the document with every alias expanded (a "billion laughs"
  of nested aliases is refused while it is read, not after it has eaten the memory).
- ``MAX_FOREACH_DEPTH``: ``foreach`` steps inside ``foreach`` steps.
- ``MAX_VALUE_CHARS``: the length of a rendered expression (a string, or the items of a list),
  and of a string or list an operator (``*``, ``+``, ``~``, ``%``) or a filter builds.
- ``MAX_INT_DIGITS``: decimal digits of an integer an expression computes (Python's own limit
  for turning an integer into text).
- ``MAX_LOOP_ITERATIONS``: iterations of all ``{% for %}`` loops of one expression together;
  ``range()`` is capped at the same number by the sandbox.
"""

from __future__ import annotations

import math

__all__ = [
    "MAX_FOREACH_DEPTH",
    "MAX_INT_BITS",
    "MAX_INT_DIGITS",
    "MAX_JOB_FILE_BYTES",
    "MAX_LOOP_ITERATIONS",
    "MAX_VALUE_CHARS",
    "MAX_YAML_ALIASES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
]

MAX_JOB_FILE_BYTES = 10 * 1024 * 1024  #: 10 MiB
MAX_YAML_DEPTH = 100
MAX_YAML_ALIASES = 1000
MAX_YAML_NODES = 100_000
MAX_FOREACH_DEPTH = 16
MAX_VALUE_CHARS = 1024 * 1024  #: 1 MiB of text, or a list of that many items
MAX_INT_DIGITS = 4300
#: the bits of the largest integer of MAX_INT_DIGITS decimal digits
MAX_INT_BITS = math.ceil(MAX_INT_DIGITS * math.log2(10))
MAX_LOOP_ITERATIONS = 100_000
