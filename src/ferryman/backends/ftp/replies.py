"""Reading FTP replies within a deadline, and parsers of the replies that carry data: PASV
(227), EPSV (229), PWD (257) and FEAT (211).

:class:`ReplyReader` reads reply lines from the control socket with one deadline for a whole
reply (issue 13): a socket time-out alone bounds each ``recv``, so a server that trickles one
byte a second would never time out. The parsers are tolerant of what servers put around the
data and strict about the data itself: a malformed reply is a
:class:`~ferryman.errors.ProtocolError` (or None where a caller can do without), never a guess.
"""

from __future__ import annotations

import re
import socket
import time

from ...errors import ProtocolError
from ...errors import TimeoutError as FerrymanTimeout

__all__ = ["ReplyReader", "parse_epsv", "parse_feat", "parse_pasv", "parse_pwd", "parse_size"]

_PASV_RE = re.compile(r"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")
_EPSV_RE = re.compile(r"\((.)\1\1(\d{1,5})\1\)")
#: seconds a first ``recv`` may run past a reply's deadline; spares a ``settimeout`` system
#: call per reply in the usual case, where the whole reply arrives in one ``recv``
_SLACK = 0.1


class ReplyReader:
    """Reply lines from a control socket, each reply within a deadline set by the caller.

    Unbuffered by a file object on purpose: a ``socket.makefile`` reader is unusable after one
    time-out, and its ``readline`` cannot shorten the time-out between two ``recv`` calls.
    The socket's time-out is changed only while a reply trickles in, and then restored.
    """

    def __init__(self, sock: socket.socket, encoding: str, maxline: int) -> None:
        self.sock = sock
        self.encoding = encoding
        self.maxline = maxline
        self._buffer = bytearray()

    def readline(self, deadline: float, budget: float, what: str) -> str | None:
        """The next line without its line end (None at EOF); a line longer than ``maxline`` is
        a :class:`ProtocolError`, and no line end by ``deadline`` (``budget`` seconds after
        the reply was first awaited) a :class:`~ferryman.errors.TimeoutError` whose message
        starts with ``what`` ("waiting for the greeting: ftp://host:21 did not answer in time")
        and says for how long."""
        buffer, sock = self._buffer, self.sock
        start, original, changed = 0, sock.gettimeout(), False
        try:
            while True:
                end = buffer.find(b"\n", start)
                if end >= self.maxline or (end < 0 and len(buffer) > self.maxline):
                    raise ProtocolError(f"reply line longer than {self.maxline} characters")
                if end >= 0:
                    line = bytes(buffer[: end + 1])
                    del buffer[: end + 1]
                    return line.decode(self.encoding, "surrogateescape").rstrip("\r\n")
                start = len(buffer)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timeout(budget, what)
                if original is None or original > remaining + _SLACK:
                    sock.settimeout(remaining)  # the rest of the reply's time, not a fresh one
                    changed = True
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    raise self._timeout(budget, what) from None
                if not chunk:
                    return None
                buffer += chunk
        finally:
            if changed:
                try:
                    sock.settimeout(original)
                except OSError:
                    pass  # closed meanwhile: nothing to restore

    def pending(self) -> bool:
        """Whether bytes of a reply were received and not read yet (here or, on a TLS
        socket, decrypted and waiting): then ``select`` on the socket would not say so."""
        pending = getattr(self.sock, "pending", None)
        return bool(self._buffer) or (pending is not None and pending() > 0)

    def discard(self) -> None:
        """Forget what was received but not read (before a TLS handshake, CVE-2021-22947)."""
        self._buffer.clear()

    def _timeout(self, budget: float, what: str) -> FerrymanTimeout:
        got = len(self._buffer)
        return FerrymanTimeout(
            f"{what} (no complete reply within {budget:g} s"
            + (f"; {got} bytes of it arrived)" if got else ")"),
            hint="the server or network is slow or stuck; raise --timeout if this is expected",
        )


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


def parse_size(path: str, reply: str) -> int:
    """The byte count of a ``213 SIZE`` reply (RFC 3659 section 4)."""
    try:
        return int(reply.split()[1])
    except (IndexError, ValueError):
        raise ProtocolError(f"SIZE {path}: malformed reply {reply!r}", reply_text=reply) from None


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
