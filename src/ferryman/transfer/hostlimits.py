"""How many connections a server accepted, remembered per host between runs (issue 19).

A server at its connection limit answers the extra logins with ``421 too many connections``
(``530`` on some, SSH ``MaxSessions`` or a closed socket on others); the engine then carries on
with the connections it has. Without a memory every later run would knock on the same limit
again, paying a refused login (and, at 100 ms round trips, a second or so) for each extra
connection. Here the limit seen is kept per host for :data:`REMEMBER_FOR` seconds, in the
process and in a small JSON file, and the automatic choice of files in flight never asks for
more. An explicit ``--parallel`` is not capped (the user asked for it; the pool still shrinks).

The file is ``$FERRYMAN_CACHE_DIR/host-limits.json`` (else ``$XDG_CACHE_HOME/ferryman``, else
``~/.cache/ferryman``). It holds host names and numbers only, never credentials. Losing or
failing to write it costs speed, never correctness, so every file error is ignored.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["REMEMBER_FOR", "cache_file", "forget", "limit_for", "remember"]

log = logging.getLogger("ferryman.transfer")

#: a limit is believed for a day: servers are reconfigured, and a stale low limit only slows
REMEMBER_FOR = 24 * 3600.0
_FILE_NAME = "host-limits.json"
_lock = threading.Lock()
_memory: dict[str, tuple[int, float]] = {}  #: host key -> (connections, when seen)


def cache_file() -> Path:
    """Where the limits are kept between runs."""
    explicit = os.environ.get("FERRYMAN_CACHE_DIR")
    if explicit:
        return Path(explicit) / _FILE_NAME
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ferryman" / _FILE_NAME


def _load() -> dict[str, tuple[int, float]]:
    try:
        raw = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    found: dict[str, tuple[int, float]] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            limit, seen = value.get("connections"), value.get("seen")
            if isinstance(limit, int) and limit >= 1 and isinstance(seen, int | float):
                found[str(key)] = (limit, float(seen))
    return found


def _fresh(entry: tuple[int, float] | None, now: float) -> int | None:
    if entry is None or now - entry[1] > REMEMBER_FOR:
        return None
    return entry[0]


def limit_for(host: str) -> int | None:
    """The connections ``host`` accepted when it last refused more, if seen recently."""
    now = time.time()
    with _lock:
        known = _fresh(_memory.get(host), now)
        if known is not None:
            return known
        entry = _load().get(host)
        if _fresh(entry, now) is not None and entry is not None:
            _memory[host] = entry
            return entry[0]
    return None


def remember(host: str, connections: int) -> None:
    """Record that ``host`` refused connections beyond ``connections`` (at least 1)."""
    connections = max(1, connections)
    now = time.time()
    with _lock:
        _memory[host] = (connections, now)
        stored = {k: v for k, v in _load().items() if _fresh(v, now) is not None}
        stored[host] = (connections, now)
        _save(stored)
    log.info("%s accepts %d connection(s) at once; remembered for later runs", host, connections)


def forget(host: str | None = None) -> None:
    """Drop what is known of ``host`` (every host: None), in memory and in the file."""
    with _lock:
        if host is None:
            _memory.clear()
            stored: dict[str, tuple[int, float]] = {}
        else:
            _memory.pop(host, None)
            stored = _load()
            stored.pop(host, None)
        _save(stored)


def _save(entries: dict[str, tuple[int, float]]) -> None:
    path = cache_file()
    data = {k: {"connections": n, "seen": round(t, 3)} for k, (n, t) in sorted(entries.items())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".host-limits-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as err:  # a cache: losing it costs speed, not correctness
        log.debug("could not write %s: %s", path, err)
