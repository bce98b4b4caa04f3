"""The SSH connections and SFTP channels a backend and its siblings share.

A :class:`ConnectionGroup` belongs to a backend and every sibling made from it: the first to
connect opens the SSH connection, the next ones open SFTP channels on it, and the last to close
closes it (reference-counted). Beyond :data:`CHANNELS_PER_CONNECTION` channels, siblings share
a channel: each request carries its own id, so the OPEN/READ/CLOSE of many files interleave on
one channel (up to :data:`BACKENDS_PER_CHANNEL` files in flight on each), which is how many
small files move fast over a long round trip without an SSH handshake per file in flight
(issue 19; OpenSSH allows only 10 sessions per connection by default). A connection or
channel that failed is no longer handed out; the next ``connect`` opens a fresh one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ...connection import SftpConnection
from ...errors import TimeoutError as FerrymanTimeout
from ...wirelog import WireLog
from .channel import SftpChannel, open_channel
from .session import SshConnection, open_ssh

_CLOSE_WAIT = 5.0  #: seconds a channel's close may take

__all__ = [
    "BACKENDS_PER_CHANNEL",
    "CHANNELS_PER_CONNECTION",
    "MAX_CHANNELS_WITH_EXEC",
    "ConnectionGroup",
    "SharedChannel",
]

#: SFTP channels per SSH connection before siblings share them: OpenSSH serves each channel
#: with its own sftp-server process, so a few channels spread the server's work over its cores
#: (OpenSSH allows 10 sessions per connection, MaxSessions, by default)
CHANNELS_PER_CONNECTION = 4
#: backends (files in flight) sharing one channel; sshfs puts every request on one channel. With
#: 4 channels, 64 each hold the most files in flight (256) on one SSH connection: a second one
#: costs a handshake (2000-file upload at 50 ms: 3.5-3.6 s against 3.7-3.9 s with 32)
BACKENDS_PER_CHANNEL = 64
#: with ``exec_hash`` every backend may need an exec session beside its channel: no sharing,
#: and at most this many channels on a connection
MAX_CHANNELS_WITH_EXEC = 5


@dataclass(eq=False)
class SharedChannel:
    """An SFTP channel and how many backends use it now."""

    channel: SftpChannel
    users: int = 0
    usable: bool = True


class ConnectionGroup:
    """The SSH connections one backend and its siblings share (see the module docstring)."""

    def __init__(self, conn: SftpConnection) -> None:
        self.conn = conn
        #: held while a connection is being opened (one at a time), but not by release(), so
        #: closing a backend never waits for another thread's slow connect (issue 13)
        self._connecting = threading.Lock()
        self._lock = threading.Lock()  #: guards the list and the users counts
        #: notified when a channel finished opening (or failed to)
        self._changed = threading.Condition(self._lock)
        self._connections: list[SshConnection] = []
        #: where the server starts this user's SFTP sessions (realpath of "."), learned by
        #: the first channel and shared: the same user on the same server starts there again
        self.login_directory: str | None = None
        #: the round trip a member measured, shared with the siblings (Backend.round_trip)
        self.round_trip: float | None = None

    def _limits(self) -> tuple[int, int]:
        """(channels per connection, backends per channel)."""
        if self.conn.exec_hash:
            return MAX_CHANNELS_WITH_EXEC, 1
        return CHANNELS_PER_CONNECTION, BACKENDS_PER_CHANNEL

    def _usable(self) -> list[SshConnection]:
        return [c for c in self._connections if c.reusable and c.alive]

    def _shareable(self) -> tuple[SshConnection, SharedChannel] | None:
        """The least used open channel with room for one more user; under ``_lock``."""
        _, most_users = self._limits()
        best: tuple[SshConnection, SharedChannel] | None = None
        for connection in self._usable():
            for shared in connection.channels:
                roomy = shared.usable and shared.users < most_users
                if roomy and (best is None or shared.users < best[1].users):
                    best = (connection, shared)
        return best

    def _with_room(self) -> SshConnection | None:
        """A connection with room for one more channel (counting those being opened)."""
        most_channels, _ = self._limits()
        for connection in self._usable():
            if len(connection.channels) + connection.opening < most_channels:
                return connection
        return None

    def _place(self) -> tuple[SshConnection, SharedChannel | None] | None:
        """Where one more backend goes, decided under ``_lock``: a new channel on a connection
        with room (channels are spread first; ``SharedChannel`` None), else a share of an open
        channel. None: nothing has room, a new connection is needed. While channels are
        being opened, a backend that finds none with room waits for them (``_changed``)
        rather than opening a connection of its own."""
        wait = self.conn.effective_connect_timeout * 2
        deadline = time.monotonic() + wait
        while True:
            connection = self._with_room()
            if connection is not None:
                connection.users += 1
                connection.opening += 1
                return connection, None
            shared = self._shareable()
            if shared is not None:
                shared[0].users += 1
                shared[1].users += 1
                return shared
            if not any(c.opening for c in self._usable()):
                return None
            left = deadline - time.monotonic()
            if left <= 0 or not self._changed.wait(left):
                raise FerrymanTimeout(
                    f"connecting to {self.conn.describe()}: waited {wait:.0f} s for another "
                    "thread's SFTP channel to open"
                )

    def acquire(self, wire: WireLog) -> tuple[SshConnection, SharedChannel]:
        """A channel for one more backend: a new channel on a connection with room, or a
        share of an open one, on a connection opened when there is none. Channels open
        concurrently (each is three round trips); only opening a connection is one at a
        time. Raises what opening the channel raised (untranslated); the connection is then
        released and no longer handed out."""
        with self._changed:
            placed = self._place()
        if placed is None:
            placed = self._connect(wire)
        connection, shared = placed
        if shared is not None:
            return connection, shared
        started = time.monotonic()
        try:
            channel = open_channel(connection.ssh, self.conn)
        except BaseException:
            with self._changed:
                connection.opening -= 1
                connection.reusable = False
                self._changed.notify_all()
            self.release(connection, None)
            raise
        # a channel open is three exchanges (CHANNEL_OPEN, the subsystem request, SFTP
        # INIT): a first estimate of the round trip before any request is timed
        estimate = (time.monotonic() - started) / 3
        shared = SharedChannel(channel, users=1)
        with self._changed:
            connection.opening -= 1
            connection.channels.append(shared)
            if self.round_trip is None or estimate < self.round_trip:
                self.round_trip = estimate
            self._changed.notify_all()
        return connection, shared

    def _connect(self, wire: WireLog) -> tuple[SshConnection, SharedChannel | None]:
        """Open a connection (one thread at a time), unless another thread's made room."""
        wait = self.conn.effective_connect_timeout * 2
        if not self._connecting.acquire(timeout=wait):  # another thread is connecting, slowly
            raise FerrymanTimeout(
                f"connecting to {self.conn.describe()}: waited {wait:.0f} s for another "
                "thread's connection attempt"
            )
        try:
            with self._changed:
                placed = self._place()
            if placed is not None:
                return placed
            connection = open_ssh(self.conn, wire)
            with self._changed:
                connection.users = 1
                connection.opening = 1
                self._connections.append(connection)
            return connection, None
        finally:
            self._connecting.release()

    @property
    def open_connections(self) -> int:
        """How many SSH connections the group holds now (for tests and diagnostics)."""
        with self._lock:
            return len(self._connections)

    def release(self, connection: SshConnection, shared: SharedChannel | None) -> None:
        """One user fewer: the last user of a channel closes it, the last user of the
        connection closes the connection."""
        with self._lock:
            last_of_channel = False
            if shared is not None:
                shared.users -= 1
                last_of_channel = shared.users <= 0
                if last_of_channel and shared in connection.channels:
                    connection.channels.remove(shared)
            connection.users -= 1
            last = connection.users <= 0
            if last and connection in self._connections:
                self._connections.remove(connection)
        if last_of_channel and shared is not None and not last:
            wait = 0.5 if not shared.usable else min(_CLOSE_WAIT, self.conn.timeout)
            shared.channel.close_soon(wait)  # the connection stays: no need to wait for it
        if last:
            connection.close()  # closes its channels with it

    def discard(self, connection: SshConnection, shared: SharedChannel | None = None) -> None:
        """Hand this connection (or only this channel) out no more: it failed. Its users still
        release it."""
        with self._lock:
            if shared is not None:
                shared.usable = False
            else:
                connection.reusable = False
