"""The TCP connection to an SSH server dialled while asyncssh is still loading (issue 19).

``import asyncssh`` costs 130-200 ms of start-up, and an SSH server's version line comes two
round trips after the client's SYN (the connect, then the server's accept): over a long round
trip the two add up for nothing. So :func:`~ferryman.backends.backend_for` dials the server
(:func:`dial`) *before* it imports the SFTP backend, and the first SSH connection to that
server takes the socket (:func:`take`) instead of connecting itself; by then the server's
version line is usually waiting in it. At 25 ms one way this removes about 0.1 s from every
SFTP command.

Only a plain TCP connection is made ahead, nothing is sent on it: what asyncssh does next is
what it does on a connection of its own. A dial that fails is forgotten (the SSH connection
then connects itself and reports the failure the usual way), and one nobody takes within
:data:`UNUSED_FOR` seconds is closed. This module imports nothing of asyncssh.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

__all__ = ["UNUSED_FOR", "dial", "take"]

#: seconds a dialled connection waits to be taken before it is closed
UNUSED_FOR = 10.0

_lock = threading.Lock()
_dials: dict[tuple[str, int], _Dial] = {}


@dataclass(eq=False)
class _Dial:
    done: threading.Event = field(default_factory=threading.Event)
    taken: threading.Event = field(default_factory=threading.Event)
    sock: socket.socket | None = None


def dial(host: str, port: int, timeout: float) -> None:
    """Start connecting to ``host``:``port`` in the background (once per address at a time)."""
    key = (host, port)
    with _lock:
        if key in _dials:
            return
        pending = _Dial()
        _dials[key] = pending
    thread = threading.Thread(
        target=_connect, args=(key, pending, timeout), name="ferryman-dial", daemon=True
    )
    thread.start()


def _connect(key: tuple[str, int], pending: _Dial, timeout: float) -> None:
    try:
        sock: socket.socket | None = socket.create_connection(key, timeout=timeout)
    except OSError:
        sock = None  # the SSH connection connects itself and says why it cannot
    pending.sock = sock
    pending.done.set()
    if sock is None:
        _forget(key, pending)
        return
    if not pending.taken.wait(UNUSED_FOR):
        with _lock:
            unused = not pending.taken.is_set()
            if unused:
                pending.sock = None
        if unused:
            _forget(key, pending)
            sock.close()


def _forget(key: tuple[str, int], pending: _Dial) -> None:
    with _lock:
        if _dials.get(key) is pending:
            del _dials[key]


def take(host: str, port: int, timeout: float) -> socket.socket | None:
    """The connection dialled to ``host``:``port``, waiting at most ``timeout`` seconds for a
    dial still under way; None when there is none (or it failed): connect as usual."""
    with _lock:
        pending = _dials.pop((host, port), None)
    if pending is None or not pending.done.wait(timeout):
        return None
    with _lock:
        sock, pending.sock = pending.sock, None
        pending.taken.set()
    if sock is not None:
        sock.settimeout(None)  # asyncio runs it non-blocking
    return sock
