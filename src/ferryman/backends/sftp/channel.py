"""One SFTP channel (subsystem) on an SSH connection, and what the server said about itself."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncssh

from ...connection import SftpConnection
from . import loop

__all__ = ["SftpChannel", "open_channel"]

log = logging.getLogger("ferryman.sftp")

#: what every server must accept per request when it does not announce limits (the SFTP
#: drafts require packets of at least 34000 bytes)
_PORTABLE_REQUEST = 32 * 1024

#: the server extensions asyncssh understands, and the (private) flag it keeps for each;
#: asyncssh does not expose the server's extension list otherwise
_EXTENSION_FLAGS = {
    "posix-rename@openssh.com": "_supports_posix_rename",
    "statvfs@openssh.com": "_supports_statvfs",
    "fstatvfs@openssh.com": "_supports_fstatvfs",
    "hardlink@openssh.com": "_supports_hardlink",
    "fsync@openssh.com": "_supports_fsync",
    "lsetstat@openssh.com": "_supports_lsetstat",
    "limits@openssh.com": "_supports_limits",
    "copy-data": "_supports_copy_data",
}


@dataclass(frozen=True)
class SftpChannel:
    """An open SFTP session: the client, protocol version, extensions, request sizes."""

    client: asyncssh.SFTPClient
    version: int
    extensions: tuple[str, ...]
    read_size: int
    write_size: int

    @property
    def posix_rename(self) -> bool:
        return "posix-rename@openssh.com" in self.extensions

    def summary(self) -> str:
        return (
            f"SFTP v{self.version}; extensions {', '.join(self.extensions) or '(none)'}; "
            f"request size read {self.read_size}, write {self.write_size}"
        )

    def close(self, wait: float) -> None:
        """Close the channel, waiting ``wait`` seconds at most; never raises."""

        async def close() -> None:
            self.client.exit()
            await self.client.wait_closed()

        try:
            loop.run(close(), wait)
        except Exception as err:  # the connection is gone or going: the channel goes with it
            log.debug("closing an SFTP channel: %r", err)

    def close_soon(self, wait: float) -> None:
        """Close the channel without waiting for the server's answer (a round trip each:
        the siblings of a run close their channels one after the other); the loop gives up
        on the answer after ``wait`` seconds. Never raises."""

        async def close() -> None:
            self.client.exit()
            try:
                async with asyncio.timeout(wait):
                    await self.client.wait_closed()
            except Exception as err:  # gone with the connection, or a stuck server
                log.debug("closing an SFTP channel: %r", err)

        try:
            loop.spawn(close())
        except Exception as err:  # the loop is gone (interpreter shutdown)
            log.debug("closing an SFTP channel: %r", err)


def _extensions(client: asyncssh.SFTPClient) -> tuple[str, ...]:
    handler = getattr(client, "_handler", None)
    return tuple(name for name, flag in _EXTENSION_FLAGS.items() if getattr(handler, flag, False))


def open_channel(ssh: asyncssh.SSHClientConnection, conn: SftpConnection) -> SftpChannel:
    """Start the ``sftp`` subsystem; raises what asyncssh raises (the backend translates)."""

    async def start() -> asyncssh.SFTPClient:
        return await ssh.start_sftp_client(
            path_encoding=conn.encoding, path_errors="surrogateescape"
        )

    client = loop.run(start(), conn.timeout)
    extensions = _extensions(client)
    limits = client.limits
    announced = "limits@openssh.com" in extensions
    read_limit = limits.max_read_len if announced and limits.max_read_len else _PORTABLE_REQUEST
    write_limit = limits.max_write_len if announced and limits.max_write_len else _PORTABLE_REQUEST
    return SftpChannel(
        client,
        client.version,
        extensions,
        min(conn.chunk_size, read_limit),
        min(conn.chunk_size, write_limit),
    )
