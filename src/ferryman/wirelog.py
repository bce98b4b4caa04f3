"""The detailed protocol transcript and the run log.

Two loggers: ``ferryman.wire`` carries the transcript (every command and reply, TLS details,
data-connection endpoints, per-file byte counts and rates), ``ferryman`` the run log. The CLI's
``-v`` sends both to stderr, ``--log FILE`` to a file. Secrets never get here: the FTP session
masks ``PASS`` itself, and :class:`SecretMaskFilter` is a second line of defence that masks any
secret value registered with :func:`register_secret` (:mod:`ferryman.redact`, re-exported).
"""

from __future__ import annotations

import itertools
import logging
import time
from pathlib import Path

from .redact import mask, register_secret
from .terminal import safe_text

__all__ = [
    "WIRE",
    "SecretMaskFilter",
    "WireLog",
    "configure_logging",
    "register_secret",
]

WIRE = logging.getLogger("ferryman.wire")
_ids = itertools.count(1)


class SecretMaskFilter(logging.Filter):
    """Replaces registered secrets (:mod:`ferryman.redact`) in every record through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class WireLog:
    """Transcript lines of one connection, prefixed with its id: ``[c3] > USER demo``."""

    def __init__(self, label: str) -> None:
        self.id = f"c{next(_ids)}"
        self.label = label
        self.enabled = WIRE.isEnabledFor(logging.DEBUG)

    def sent(self, line: str) -> None:
        if self.enabled:
            if line[:5].upper() == "PASS ":
                line = "PASS ****"
            WIRE.debug("[%s] > %s", self.id, line)

    def received(self, line: str) -> None:
        if self.enabled:
            WIRE.debug("[%s] < %s", self.id, line)

    def note(self, message: str, *args: object) -> None:
        if self.enabled:
            WIRE.debug("[%s] * " + message, self.id, *args)

    def warning(self, message: str, *args: object) -> None:
        WIRE.warning("[%s] ! " + message, self.id, *args)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))  # a traceback's text too

    def formatMessage(self, record: logging.LogRecord) -> str:
        # names, replies and banners are the server's text: one record stays one line, and
        # no escape sequence reaches the terminal that shows stderr or the log file
        record.message = safe_text(record.message)
        return super().formatMessage(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        t = time.localtime(record.created)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}"


def configure_logging(verbose: int = 0, log_file: Path | None = None) -> None:
    """Route the transcript and run log: stderr at ``-v``, ``log_file`` always in full."""
    root = logging.getLogger("ferryman")
    for handler in list(root.handlers):
        if getattr(handler, "_ferryman", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.DEBUG if (verbose or log_file) else logging.WARNING)
    root.propagate = False
    fmt = _Formatter("%(asctime)s %(levelname)-5s %(message)s")
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handlers.append(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(fmt)
        handler.addFilter(SecretMaskFilter())
        handler._ferryman = True  # type: ignore[attr-defined]
        root.addHandler(handler)
