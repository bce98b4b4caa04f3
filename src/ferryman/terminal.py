"""Text from servers made safe for a terminal: names and replies are data, never control.

A server chooses its file names, reply texts and SSH banners. Written raw, an ESC starts a
terminal sequence (``\\033[2J`` clears the screen, ``\\033]0;...\\a`` sets the window title,
some terminals answer queries into the input), a CR overwrites the line already shown, and a
bidi override (U+202E) shows ``exe.txt`` as ``txt.exe``. :func:`safe_text` spells all of them
out as ``ls -b`` does; every human output of the CLI and the transcript go through it, while
``--json`` keeps the raw values (``json.dumps`` escapes control characters itself).
"""

from __future__ import annotations

__all__ = ["safe_text"]

_NAMED = {0x1B: "\\e", 0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
#: bidi embeddings, overrides and isolates (the "Trojan Source" characters)
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]


def _table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]:  # C0, DEL, C1
        table[code] = _NAMED.get(code, f"\\x{code:02x}")
    for code in _BIDI:
        table[code] = f"\\u{code:04x}"
    for code in range(0xD800, 0xE000):  # lone surrogates cannot be written to a UTF-8 stream
        # surrogateescape keeps an undecodable byte 0xNN as U+DCNN: show the byte
        table[code] = f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"
    return table


_TABLE = _table()


def safe_text(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1), bidi control and lone surrogate
    spelled out (``\\e``, ``\\t``, ``\\n``, ``\\r``, ``\\xNN``, ``\\uNNNN``); printable
    Unicode is kept as it is. One line in, one line out."""
    return text.translate(_TABLE)
