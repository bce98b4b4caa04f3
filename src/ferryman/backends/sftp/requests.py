"""SFTP requests on an open file without a task each: a future and a callback (issue 19).

asyncssh's file methods (``SFTPClientFile.read``, ``write``, ``stat``, ``close``) are
coroutines: every request is wrapped in a task, stepped twice by the loop and logged with its
arguments formatted. For thousands of small files that is most of the client's CPU, so the
streams send their requests through the client handler's request layer (the same one
``listing`` uses for pipelined READDIR): :func:`send` puts the request on the wire at once and
returns the future its reply lands in (failed at once when the request cannot be sent); the
caller adds a done callback and decodes the reply with :func:`outcome` (which raises what
asyncssh's own methods raise).

These run in the event-loop thread only.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import asyncssh
from asyncssh.packet import String, UInt32, UInt64

# packet types (draft-ietf-secsh-filexfer-02, 3); asyncssh does not export its own names
FXP_CLOSE = 4
FXP_READ = 5
FXP_WRITE = 6
FXP_FSTAT = 8
FXP_STATUS = 101
FXP_DATA = 103
FXP_ATTRS = 105

__all__ = [
    "FXP_STATUS",
    "Reply",
    "close",
    "data_of",
    "fstat",
    "outcome",
    "read",
    "size_of",
    "write",
]

#: a request's reply: (response type, packet), as the client handler delivers it
Reply = asyncio.Future[tuple[int, Any]]


def _send(file: asyncssh.SFTPClientFile, pkttype: int, *args: bytes) -> Reply:
    """Send a request; a request that cannot be sent (the connection is gone) fails its
    future like one the server refused, so that callers meet every failure in one place."""
    handler: Any = file._handler
    waiter: Reply = handler._loop.create_future()
    try:
        handler._send_request(pkttype, args, waiter)
    except Exception as err:
        if not waiter.done():
            waiter.set_exception(err)
    return waiter


def _failed(file: asyncssh.SFTPClientFile, error: Exception) -> Reply:
    handler: Any = file._handler
    reply: Reply = handler._loop.create_future()
    reply.set_exception(error)
    return reply


def read(file: asyncssh.SFTPClientFile, offset: int, length: int) -> Reply:
    handle: bytes | None = file._handle
    if handle is None:
        return _failed(file, ValueError("I/O operation on closed file"))
    return _send(file, FXP_READ, String(handle), UInt64(offset), UInt32(length))


def write(file: asyncssh.SFTPClientFile, offset: int, data: bytes) -> Reply:
    handle: bytes | None = file._handle
    if handle is None:
        return _failed(file, ValueError("I/O operation on closed file"))
    return _send(file, FXP_WRITE, String(handle), UInt64(offset), String(data))


def fstat(file: asyncssh.SFTPClientFile) -> Reply:
    handle: bytes | None = file._handle
    if handle is None:
        return _failed(file, ValueError("I/O operation on closed file"))
    handler: Any = file._handler
    flags = UInt32(0) if handler.version >= 4 else b""
    return _send(file, FXP_FSTAT, String(handle), flags)


def close(file: asyncssh.SFTPClientFile) -> Reply | None:
    """CLOSE the handle (None: it was closed already); the file object forgets it, so that
    asyncssh's ``close`` sends nothing more."""
    handle: bytes | None = file._handle
    if handle is None:
        return None
    file._handle = None
    return _send(file, FXP_CLOSE, String(handle))


def outcome(file: asyncssh.SFTPClientFile, expected: int, reply: Reply) -> Any:
    """The decoded reply (None for a status OK); raises the SFTPError (or the connection's
    error) the request failed with, asyncio.CancelledError if it was cancelled."""
    resptype, packet = reply.result()
    if resptype not in (FXP_STATUS, expected):
        raise asyncssh.SFTPBadMessage(f"Unexpected response type: {resptype}")
    handler: Any = file._handler
    result = handler._packet_handlers[resptype](handler, packet)
    if result is None and expected != FXP_STATUS:
        raise asyncssh.SFTPBadMessage("Unexpected FX_OK response")
    return result


def data_of(file: asyncssh.SFTPClientFile, reply: Reply) -> bytes:
    """A READ's data; b"" at the end of the file."""
    try:
        data, _at_end = outcome(file, FXP_DATA, reply)
    except asyncssh.SFTPEOFError:
        return b""
    return cast(bytes, data)


def size_of(file: asyncssh.SFTPClientFile, reply: Reply) -> asyncssh.SFTPAttrs:
    """An FSTAT's attributes."""
    return cast(asyncssh.SFTPAttrs, outcome(file, FXP_ATTRS, reply))
