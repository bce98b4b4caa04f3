"""Reading a directory with several READDIR requests in flight (issue 19).

A server answers one READDIR with a batch of names (OpenSSH: about 100), so a directory of
2000 files is 20 batches; asking for them one after the other costs 20 round trips, over a
second at 50 ms. Requests on one handle are handled in the order sent (draft-ietf-secsh-
filexfer-02, 6.1), so :data:`READDIR_IN_FLIGHT` requests go out at once and each answer asks
for one more, until a batch ends the directory (EOF). The names are gathered whatever order
the batches come in (the caller sorts them), so a server that answered them out of order
would still give the complete list.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import asyncssh

__all__ = ["READDIR_IN_FLIGHT", "read_directory"]

#: READDIR requests in flight on one handle
READDIR_IN_FLIGHT = 8


async def read_directory(client: asyncssh.SFTPClient, directory: str) -> list[asyncssh.SFTPName]:
    """The names in ``directory`` (``.`` and ``..`` included, as the server sends them)."""
    # asyncssh offers only one READDIR at a time (SFTPClient.scandir); its request layer
    # (the client's handler) takes any number, which is what pipelining needs
    handler: Any = client._handler
    handle: bytes = await handler.opendir(client.compose_path(directory))
    names: list[asyncssh.SFTPName] = []
    pending: deque[asyncio.Future[Any]] = deque()
    try:
        pending.extend(
            asyncio.ensure_future(handler.readdir(handle)) for _ in range(READDIR_IN_FLIGHT)
        )
        while pending:
            try:
                batch, at_end = await pending.popleft()
            except asyncssh.SFTPEOFError:
                break
            names.extend(batch)
            if at_end:
                break
            pending.append(asyncio.ensure_future(handler.readdir(handle)))
    finally:
        # the requests sent past the end are answered with EOF right behind the last batch;
        # they are awaited, not cancelled, so that no reply finds its request gone
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(asyncssh.Error, ConnectionError):
            await handler.close(handle)
    for entry in names:
        if isinstance(entry.filename, bytes):
            entry.filename = client.decode(entry.filename)
        if isinstance(entry.longname, bytes):
            entry.longname = client.decode(entry.longname)
    return names
