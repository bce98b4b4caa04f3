"""Parsers of FTP replies that carry data: PASV (227), EPSV (229), PWD (257) and FEAT (211).

Each is tolerant of what servers put around the data and strict about the data itself: a
malformed reply is a :class:`~ferryman.errors.ProtocolError` (or None where a caller can do
without), never a guess.
"""

from __future__ import annotations

import re

from ...errors import ProtocolError

__all__ = ["parse_epsv", "parse_feat", "parse_pasv", "parse_pwd"]

_PASV_RE = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV_RE = re.compile(r"\((.)\1\1(\d{1,5})\1\)")


def parse_pasv(reply: str) -> tuple[str, int]:
    """Host and port of a ``227`` reply; tolerant of the text around the numbers."""
    match = _PASV_RE.search(reply)
    if not match or not reply.startswith("227"):
        raise ProtocolError(f"malformed PASV reply {reply!r}", reply_text=reply)
    nums = [int(n) for n in match.groups()]
    if any(n > 255 for n in nums):
        raise ProtocolError(f"malformed PASV reply {reply!r}", reply_text=reply)
    return ".".join(map(str, nums[:4])), (nums[4] << 8) + nums[5]


def parse_epsv(reply: str) -> int:
    """Port of a ``229 ... (|||port|)`` reply (RFC 2428)."""
    match = _EPSV_RE.search(reply)
    if not match or not reply.startswith("229") or not 0 < int(match.group(2)) < 65536:
        raise ProtocolError(f"malformed EPSV reply {reply!r}", reply_text=reply)
    return int(match.group(2))


def parse_pwd(reply: str) -> str | None:
    """The directory named by a ``257`` reply to PWD, or None when there is none.

    RFC 959 (appendix II) quotes the name and doubles a ``"`` inside it:
    ``257 "/a ""b"" c" is current directory`` names ``/a "b" c``. ftplib's ``parse257``
    returns a name even without the closing quote; a reply cut short is refused here instead,
    as is one without quotes (some servers send ``257 /dir``, which cannot say where a name
    with spaces ends). Whether the name is usable is ``usable_login_directory``'s question.
    """
    line = reply.split("\n", 1)[0]
    start = line.find('"')
    if not line.startswith("257") or start < 0:
        return None
    name: list[str] = []
    i = start + 1
    while i < len(line):
        if line[i] == '"':
            if line[i + 1 : i + 2] != '"':
                return "".join(name)
            i += 1  # a doubled quote is one quote of the name
        name.append(line[i])
        i += 1
    return None


def parse_feat(reply: str) -> dict[str, str]:
    """Features of a FEAT reply, upper-case names to their parameters (RFC 2389).

    Tolerant: feature lines should start with a space, but some servers omit it.
    """
    lines = reply.splitlines()[1:-1] if "\n" in reply else []
    features: dict[str, str] = {}
    for line in lines:
        text = line.strip()
        if not text or (text[:3].isdigit() and text[3:4] in (" ", "-")):
            continue
        name, _, params = text.partition(" ")
        features[name.upper()] = params.strip()
    return features
