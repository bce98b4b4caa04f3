"""What ferryman learned about one FTP server while talking to it: the :class:`ServerQuirks`.

A server may advertise an optional command in FEAT (or a command may be so common that it is
sent unadvertised) and still refuse it: FTP proxies and gateways forward FEAT from the server
behind them, administrators disable commands for some users (ProFTPD ``<Limit MLST>``), and
ProFTPD's defaults (``AllowOverwrite off``, ``AllowStoreRestart off``) refuse to continue a
partial upload. Such a refusal is a fact about the server, not a failure: the backend falls
back to the next way of learning the same thing, records the fact here, and never asks again
-- on this connection, its reconnections and its sibling connections, which share one
:class:`ServerQuirks` (as they share one TLS context).

Only replies that mean "not supported" count (RFC 959 section 4.2): ``500`` (not
understood), ``502`` (not implemented), ``504`` (not implemented for that parameter), and
``501`` when its text says it was not understood (``501`` is otherwise "bad arguments"),
and not a ``504`` about the path ("504 Not a regular file.").
A ``550`` is about the path ("not found", "denied"), never about the command.
"""

from __future__ import annotations

import re
import threading

from ...errors import FerrymanError
from ...wirelog import WireLog

__all__ = [
    "ServerQuirks",
    "means_unsupported",
    "refused_command",
    "refuses_overwrite",
    "refuses_resume",
]

_NOT_UNDERSTOOD = re.compile(
    r"not understood|unknown command|unrecogni[sz]ed command|not implemented|"
    r"command not supported|invalid command",
    re.I,
)
# a 504 about the path given, not the command ("504 Not a regular file." to HASH a directory)
_ABOUT_THE_PATH = re.compile(r"no such|not found|not a (regular )?file|is a directory", re.I)


def means_unsupported(code: int | None, text: str | None = None) -> bool:
    """Whether a reply ``code`` (with its ``text``) refuses the command itself."""
    if code in (500, 502):
        return True
    if code == 504:
        return not _ABOUT_THE_PATH.search(text or "")
    return code == 501 and bool(_NOT_UNDERSTOOD.search(text or ""))


def refused_command(err: FerrymanError) -> bool:
    """Whether ``err`` (a translated reply) says the server does not support the command."""
    return means_unsupported(err.reply_code, err.reply_text)


_RESUME_WORDS = re.compile(r"overwrite|append|restart|resum|\brest\b", re.I)
_OVERWRITE = re.compile(r"overwrite", re.I)


def refuses_resume(err: FerrymanError) -> bool:
    """Whether a refusal of STOR after REST, or of APPE, refuses resuming itself (and not the
    file, the disk or the network): "not supported", a 550/553 (ProFTPD: "Overwrite
    permission denied"), or a 45x that says so ("451 Append/Restart not permitted")."""
    code = err.reply_code
    if code is None or code in (552, 421, 425, 426):
        return False
    if means_unsupported(code, err.reply_text) or code in (550, 553):
        return True
    return code in (450, 451) and bool(_RESUME_WORDS.search(err.reply_text or ""))


def refuses_overwrite(err: FerrymanError) -> bool:
    """Whether a refusal of STOR says the file exists and may not be written over (ProFTPD's
    ``AllowOverwrite off``: "550 name: Overwrite permission denied")."""
    return err.reply_code in (550, 553) and bool(_OVERWRITE.search(err.reply_text or ""))


class ServerQuirks:
    """The "advertised but refused" facts of one server, shared by a backend, its
    reconnections and its siblings (``FtpBackend.sibling``); safe to use from many threads.

    Each fact is noted once in the transcript of the connection that learned it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: command (upper case, e.g. ``"MLST"``, ``"EPSV"``, ``"XSHA256"``) -> the reply that
        #: refused it; a refused command is treated as not advertised from then on
        self._refused: dict[str, str] = {}
        #: the server refuses to continue a partial upload (REST + STOR, or APPE): ProFTPD's
        #: ``AllowStoreRestart off`` / ``AllowOverwrite off``; writes then start over from 0
        self._resume_write_refused: str | None = None

    def refuse(self, command: str, reply: str, wire: WireLog | None = None, *, then: str) -> bool:
        """Record that the server refused ``command`` with ``reply``; ``then`` says what
        ferryman does instead (for the transcript). True the first time only."""
        command = command.upper()
        with self._lock:
            if command in self._refused:
                return False
            self._refused[command] = reply.strip()
        if wire is not None:
            wire.note("%s advertised but refused (%s); %s", command, reply.strip()[:120], then)
        return True

    def refused(self, command: str) -> bool:
        """Whether the server refused ``command`` before."""
        with self._lock:
            return command.upper() in self._refused

    def refuse_resume_write(self, reply: str, wire: WireLog | None = None) -> bool:
        """Record that the server refused to continue a partial upload; True the first time."""
        with self._lock:
            if self._resume_write_refused is not None:
                return False
            self._resume_write_refused = reply.strip()
        if wire is not None:
            wire.note(
                "the server refuses to resume uploads (%s); uploads start over from byte 0",
                reply.strip()[:120],
            )
        return True

    @property
    def resume_write_refused(self) -> bool:
        with self._lock:
            return self._resume_write_refused is not None

    def effective(self, features: dict[str, str]) -> dict[str, str]:
        """``features`` (FEAT) without the commands the server refused."""
        with self._lock:
            refused = set(self._refused)
        return {name: params for name, params in features.items() if name not in refused}

    def findings(self) -> dict[str, str]:
        """Every fact learned: command (or ``"resume write"``) -> the refusing reply."""
        with self._lock:
            found = dict(self._refused)
            if self._resume_write_refused is not None:
                found["resume write"] = self._resume_write_refused
        return found
