"""serve's own log: human lines or JSON lines on stderr, secrets masked.

Records of ``ferryman.serve`` and ``ferryman.notify`` carry an ``event`` (``loaded``,
``invalid``, ``run_started``, ``run_finished``, ``skipped``, ``reload``, ``stopping`` ...) and
fields (``job``, ``run_id``, ``status`` ...) given as ``extra=``; the JSON form has them as
keys, the human form as the message. A run's own log is its run log file (``log_file``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from ..redact import mask, mask_data
from ..terminal import safe_text
from ..wirelog import SecretMaskFilter

__all__ = ["FIELDS", "configure_serve_logging"]

#: the fields a record may carry (``extra=``), in the order JSON lines show them
FIELDS = (
    "event",
    "job",
    "run_id",
    "status",
    "exit_code",
    "seconds",
    "trigger",
    "pid",
    "files",
    "next",
    "path",
)


def _stamp(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


class _Human(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_stamp(record)} {record.levelname:<7} {safe_text(record.getMessage())}"
        return mask(line)


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _stamp(record),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
        }
        for name in FIELDS[1:]:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(mask_data(data), default=str, ensure_ascii=False)


def configure_serve_logging(
    fmt: str = "human", verbose: int = 0, stream: TextIO | None = None
) -> logging.Handler:
    """Send the ``ferryman`` log (serve, notify, triggers' connections) to ``stream``."""
    root = logging.getLogger("ferryman")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Json() if fmt == "json" else _Human())
    handler.addFilter(SecretMaskFilter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    # the triggers' protocol transcripts only at -vv
    logging.getLogger("ferryman.wire").setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    return handler
