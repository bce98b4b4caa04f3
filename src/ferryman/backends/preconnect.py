"""The TCP connection to an SSH server dialled while asyncssh is still loading (issue 19).

``import asyncssh`` costs 130-200 ms of start-up, and an SSH server's version line comes two
round trips after the client's SYN (the connect, then the server's accept): over a long round
trip the two add up for nothing. So :func:`~ferryman.backends.backend_for` dials the server
(:func:`dial`) *before* it imports the SFTP backend, and the first SSH connection to that
server takes the socket (:func:`take`) instead of connecting itself; by then the server's
version line is usually waiting in it. At 25 ms one way this removes about 0.1 s from every
SFTP command.

Only a plain TCP connection is made ahead, nothing is sent on it: what asyncssh does next is
what it does on a connection of its own. A dial that failed hands its error to the taker
(``take`` raises it: connecting again would only wait a second connect time-out for a host
that drops packets), one nobody takes within :data:`UNUSED_FOR` seconds is closed, and
:func:`discard` closes one at once when the connection will not be made after all (a server
then logs a client that said nothing, and some ban such clients). A forked child forgets the
dials of its parent. This module imports nothing of asyncssh.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field

__all__ = ["UNUSED_FOR", "dial", "discard", "take"]

#: seconds a dialled connection waits to be taken before it is closed (it is taken once
#: asyncssh is imported: a fraction of a second)
UNUSED_FOR = 5.0

_lock = threading.Lock()
_dials: dict[tuple[str, int], _Dial] = {}


@dataclass(eq=False)
class _Dial:
    done: threading.Event = field(default_factory=threading.Event)
    taken: threading.Event = field(default_factory=threading.Event)
    sock: socket.socket | None = None
    error: OSError | None = None


os.register_at_fork(after_in_child=_dials.clear)


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
    except OSError as err:
        sock, pending.error = None, err  # the taker raises it as its own connect would
    pending.sock = sock
    pending.done.set()
    pending.taken.wait(UNUSED_FOR)
    if sock is None:  # its error was for the taker; untaken, it is forgotten
        _forget(key, pending)
        return
    with _lock:  # still here: nobody took it (unused, or discarded before it connected)
        left, pending.sock = pending.sock, None
        pending.taken.set()
    if left is not None:
        _forget(key, pending)
        left.close()


def _forget(key: tuple[str, int], pending: _Dial) -> None:
    with _lock:
        if _dials.get(key) is pending:
            del _dials[key]


def take(host: str, port: int, timeout: float) -> socket.socket | None:
    """The connection dialled to ``host``:``port``, waiting at most ``timeout`` seconds for a
    dial still under way; None when there is none (connect as usual). A dial that failed
    raises its error (``OSError``, ``TimeoutError``), as connecting would."""
    with _lock:
        pending = _dials.pop((host, port), None)
    if pending is None or not pending.done.wait(timeout):
        return None
    with _lock:
        sock, pending.sock = pending.sock, None
        pending.taken.set()
    if pending.error is not None:
        raise pending.error
    if sock is not None:
        sock.settimeout(None)  # asyncio runs it non-blocking
    return sock


def discard(host: str, port: int) -> None:
    """Close the connection dialled to ``host``:``port`` now, if there is one: it will not
    be used (the SSH connection failed before it was taken)."""
    with _lock:
        pending = _dials.pop((host, port), None)
        if pending is None:
            return
        sock, pending.sock = pending.sock, None
        pending.taken.set()  # the dialling thread stops waiting
    if sock is not None:
        sock.close()
