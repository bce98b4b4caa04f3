"""Two adjustments to how asyncssh puts packets on the wire, made once a connection is up.

``coalesce_writes``: asyncssh writes every SSH packet to its transport at once: an upload
made two ``send()`` system calls per 32 KiB packet (OpenSSH's largest for a session channel).
Collecting the writes of one loop iteration and sending them together halves the CPU time of
an upload on loopback; the bytes and their order are unchanged, and nothing waits longer than
the current loop iteration.

``drop_ignore_packets``: asyncssh precedes every packet after the key exchange with an
SSH_MSG_IGNORE, the countermeasure RFC 4251 (9.3.1) describes against the chosen-plaintext
attack on CBC ciphers. ferryman negotiates no CBC cipher (``session.CIPHERS``), so each such
packet only costs an encryption, its padding and a send: half the packets of an upload, and
one more for every SFTP request. RFC 4253 (11.2) makes sending IGNORE optional.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh
from asyncssh.constants import MSG_IGNORE

__all__ = ["coalesce_writes", "drop_ignore_packets"]


class _CoalescingTransport:
    """A stand-in for the connection's transport that defers writes to the end of the pass."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self.flush()  # the disconnect message asyncssh wrote just before goes out first
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalesce_writes(ssh: asyncssh.SSHClientConnection) -> None:
    """Wrap the connection's transport (call in the loop thread, right after connecting)."""
    # asyncssh offers no hook for its transport; it keeps it in this private attribute
    transport = getattr(ssh, "_transport", None)
    if isinstance(transport, asyncio.Transport):
        ssh._transport = _CoalescingTransport(transport, asyncio.get_running_loop())  # type: ignore[assignment]


def drop_ignore_packets(ssh: asyncssh.SSHClientConnection, ciphers: tuple[str, ...]) -> None:
    """Stop the IGNORE packet asyncssh sends before each packet (see the module docstring);
    only when no cipher of ``ciphers`` (what may be negotiated) is a CBC mode."""
    if any(name.endswith("-cbc") for name in ciphers):
        return
    # asyncssh has no option for it; its send_packet sends the IGNORE through
    # ``self.send_packet``, so an instance attribute in front of the method stops just that
    send = ssh.send_packet

    def send_packet(pkttype: int, *args: bytes, **kwargs: Any) -> None:
        if pkttype != MSG_IGNORE:
            send(pkttype, *args, **kwargs)

    ssh.send_packet = send_packet  # type: ignore[method-assign]
