"""The TLS 1.3 key-exchange group a server wants, learned once and offered first (issue 19).

A TLS 1.3 client sends a key share for one group (OpenSSL 3.0: X25519). A server that does
not accept that group answers with a HelloRetryRequest naming the group it wants, and the
handshake costs a second round trip. Debian's vsftpd accepts only P-256, so every FTPS
connection to it, the control connection and one data connection per file, paid that round
trip: 50 ms per file at a 50 ms round trip (seen in vsftpd's system calls: a 99-byte
ServerHello, then the client's ChangeCipherSpec and a second ClientHello a round trip later).

The control connection's handshake peeks (``MSG_PEEK``: nothing is consumed) at the server's
first record: a HelloRetryRequest is a ServerHello whose random is a fixed value (RFC 8446
section 4.1.3) and whose ``key_share`` extension names the group. The group is remembered for
the server (:class:`~.pipelining.HostFacts`), and later sessions use a context that offers
only that group (``SSLContext.set_ecdh_curve``): the server asked for it, so it accepts it.
A data connection must use its control connection's context (a TLS session resumes only in
the context that made it), so a session's data connections benefit from the sessions opened
after the learning one.

The peek sees the retry request when it arrives after the client's first attempt to read,
which on any real link it does (a round trip later). On loopback a server may answer so
fast that OpenSSL reads and answers the retry request inside that first attempt; then this
session learns nothing (and costs nothing more), and a later one tries again.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable

__all__ = ["grouped_context", "handshake_noting_retry", "hello_retry_group"]

#: SHA-256 of "HelloRetryRequest": the ServerHello.random of a HelloRetryRequest
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
#: TLS group ids (IANA) and the names ``SSLContext.set_ecdh_curve`` knows them by
_GROUPS = {
    0x0017: "prime256v1",
    0x0018: "secp384r1",
    0x0019: "secp521r1",
    0x001D: "X25519",
    0x001E: "X448",
}
_KEY_SHARE = 0x0033


def hello_retry_group(record: bytes) -> str | None:
    """The group a HelloRetryRequest at the start of ``record`` asks for; None when it is
    anything else (a ServerHello, TLS 1.2, an alert, a record cut short, a group unknown)."""
    # record header (5), handshake header (4), legacy version (2), random (32)
    if len(record) < 44 or record[0] != 0x16 or record[5] != 0x02:
        return None
    if record[11:43] != _HRR_RANDOM:
        return None
    at = 43
    at += 1 + record[at]  # legacy session id
    at += 3  # cipher suite, compression method
    if at + 2 > len(record):
        return None
    end = min(len(record), at + 2 + int.from_bytes(record[at : at + 2], "big"))
    at += 2
    while at + 4 <= end:
        kind = int.from_bytes(record[at : at + 2], "big")
        size = int.from_bytes(record[at + 2 : at + 4], "big")
        if kind == _KEY_SHARE and size >= 2 and at + 6 <= end:
            return _GROUPS.get(int.from_bytes(record[at + 4 : at + 6], "big"))
        at += 4 + size
    return None


def handshake_noting_retry(tls: ssl.SSLSocket, budget: float) -> str | None:
    """Complete ``tls``'s handshake within ``budget`` seconds; return the group the server
    asked for in a HelloRetryRequest, or None when it asked for none."""
    timeout = tls.gettimeout()
    deadline = time.monotonic() + budget
    group: str | None = None
    peeked = False
    tls.settimeout(0.0)
    try:
        while True:
            try:
                tls.do_handshake()
                return group
            except ssl.SSLWantReadError:
                reading = True
            except ssl.SSLWantWriteError:
                reading = False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the TLS handshake did not finish within {budget:g} s")
            if reading:
                ready, _, _ = select.select([tls], [], [], remaining)
            else:
                _, ready, _ = select.select([], [tls], [], remaining)
            if reading and ready and not peeked:
                peeked = True  # the server's first flight: its ServerHello or a retry request
                try:
                    head = socket.socket.recv(tls, 512, socket.MSG_PEEK)
                except OSError:
                    head = b""
                group = hello_retry_group(head)
    finally:
        tls.settimeout(timeout)


_LOCK = threading.Lock()
_GROUPED: weakref.WeakKeyDictionary[ssl.SSLContext, dict[str, ssl.SSLContext]] = (
    weakref.WeakKeyDictionary()
)


def grouped_context(
    base: ssl.SSLContext, group: str, build: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    """A context like ``base`` (made again by ``build()``) that offers only ``group``; one per
    base context and group, shared by the sessions that share ``base``."""
    with _LOCK:
        found = _GROUPED.setdefault(base, {}).get(group)
    if found is not None:
        return found
    context = build()
    context.set_ecdh_curve(group)
    with _LOCK:
        return _GROUPED[base].setdefault(group, context)
