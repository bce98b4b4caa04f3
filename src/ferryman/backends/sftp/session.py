"""One authenticated SSH connection, shared by the SFTP channels of a backend and its siblings.

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

import asyncssh

from ...connection import SftpConnection
from ...errors import TimeoutError as FerrymanTimeout
from ...wirelog import WireLog
from . import loop
from .auth import PREFERRED_AUTH, AuthPlan, auth_plan, login_refused
from .channel import SftpChannel, open_channel
from .hostkeys import HostKeyVerifier
from .translate import translate
from .transport import coalesce_writes, drop_ignore_packets

__all__ = [
    "BACKENDS_PER_CHANNEL",
    "CHANNELS_PER_CONNECTION",
    "MAX_CHANNELS_WITH_EXEC",
    "ConnectionGroup",
    "HandshakeInfo",
    "SharedChannel",
    "SshConnection",
    "offered_auth_methods",
    "open_ssh",
]

#: SFTP channels per SSH connection before siblings share them: OpenSSH serves each channel
#: with its own sftp-server process, so a few channels spread the server's work over its cores
#: (OpenSSH allows 10 sessions per connection, MaxSessions, by default)
CHANNELS_PER_CONNECTION = 4
#: backends (files in flight) sharing one channel; sshfs puts every request on one channel
BACKENDS_PER_CHANNEL = 32
#: with ``exec_hash`` every backend may need an exec session beside its channel: no sharing,
#: and at most this many channels on a connection
MAX_CHANNELS_WITH_EXEC = 5
#: ciphers in order of preference: AES-GCM first, because with AES-NI it is more than twice
#: as fast in asyncssh as chacha20-poly1305 (measured on loopback); the rest are the defaults
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
#: flow-control window per channel: large enough for a full read-ahead on fast links
WINDOW = 8 * 1024 * 1024
_CLOSE_WAIT = 5.0


@dataclass
class HandshakeInfo:
    """What the SSH handshake showed; filled in as far as the handshake got."""

    peer: str = ""
    server_version: str = ""
    kex: str = ""
    cipher: str = ""
    mac: str = ""
    compression: str = ""
    host_key: str = ""
    host_key_verdict: str = ""
    auth_method: str = ""
    auth_offered: str = ""  #: what the server offers (learned when a login is refused)
    client_offered: str = ""  #: what ferryman offered, e.g. "~/.ssh/id_* keys, password (...)"

    def summary(self) -> str:
        return (
            f"{self.server_version}; kex {self.kex}, cipher {self.cipher}, MAC {self.mac}, "
            f"compression {self.compression}; host key {self.host_key}"
        )


class _Client(asyncssh.SSHClient):
    """asyncssh's callbacks: the host key check, and what the handshake negotiated."""

    def __init__(self, verifier: HostKeyVerifier, info: HandshakeInfo) -> None:
        self.verifier = verifier
        self.info = info
        self.conn: asyncssh.SSHClientConnection | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn
        peer = conn.get_extra_info("peername")
        if peer:
            self.info.peer = f"{peer[0]}:{peer[1]}"

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        if self.conn is not None:
            self.info.server_version = self.conn.get_extra_info("server_version", "")
            # asyncssh shows the key exchange only on its kex object, alive during this call
            kex = getattr(getattr(self.conn, "_kex", None), "algorithm", b"")
            self.info.kex = kex.decode("ascii", "replace") if isinstance(kex, bytes) else ""
        trusted = self.verifier.check(key)
        if self.verifier.offered is not None:
            offered = self.verifier.offered
            self.info.host_key = f"{offered.algorithm} {offered.fingerprint}"
        return trusted

    def auth_completed(self) -> None:
        if self.conn is not None:
            methods = self.conn.get_server_auth_methods()  # the one that succeeded comes first
            self.info.auth_method = methods[0] if methods else "none"


@dataclass(eq=False)
class SharedChannel:
    """An SFTP channel and how many backends use it now."""

    channel: SftpChannel
    users: int = 0
    usable: bool = True


class SshConnection:
    """An authenticated SSH connection, with the handshake summary, its users (backends) and
    the SFTP channels they share."""

    def __init__(
        self, ssh: asyncssh.SSHClientConnection, user: str, info: HandshakeInfo, wire: WireLog
    ) -> None:
        self.ssh = ssh
        self.user = user
        self.info = info
        self.wire = wire
        self.users = 0
        self.reusable = True
        self.channels: list[SharedChannel] = []
        self.opening = 0  #: channels being opened now

    @property
    def alive(self) -> bool:
        return not self.ssh.is_closed()

    def close(self) -> None:
        """Disconnect, waiting a short while for the goodbye; raises nothing but an interrupt."""

        async def goodbye() -> None:
            self.ssh.close()
            await self.ssh.wait_closed()

        try:
            loop.run(goodbye(), _CLOSE_WAIT)
        except Exception:  # no goodbye in time: drop the socket
            loop.call_soon(self.ssh.abort)
        except BaseException:  # interrupted: drop it too, and let the interruption through
            loop.call_soon(self.ssh.abort)
            raise
        self.wire.note("ssh connection closed")


def _awaited(client: _Client) -> str:
    """What the SSH handshake was waiting for when it timed out (a time-out message says it)."""
    ssh = client.conn
    if ssh is None:
        return "the TCP connection"
    if not ssh.get_extra_info("server_version"):
        return "the server's SSH banner (its version line)"
    if client.verifier.offered is None:
        return "the SSH key exchange"
    return "the SSH login to complete"


def _negotiated(client: _Client, info: HandshakeInfo) -> None:
    """Copy what the key exchange agreed on into ``info`` (also after a refused login)."""
    ssh = client.conn
    if ssh is None:
        return
    verdict = client.verifier.verdict
    info.host_key_verdict = verdict.value if verdict else ""
    info.cipher = ssh.get_extra_info("send_cipher", "")
    info.mac = ssh.get_extra_info("send_mac", "")
    info.compression = ssh.get_extra_info("send_compression", "")
    if info.mac == "" or "gcm" in info.cipher or "chacha" in info.cipher:
        info.mac = "(implicit)"  # AEAD ciphers authenticate themselves


async def _connect(
    conn: SftpConnection, plan: AuthPlan, client: _Client, algorithms: list[str]
) -> asyncssh.SSHClientConnection:
    ssh = await asyncssh.connect(
        conn.host,
        conn.port,
        username=plan.credentials.user,
        password=plan.password,
        client_keys=() if plan.client_keys is None else list(plan.client_keys),
        agent_path=plan.agent_path,
        known_hosts=([], [], []),  # empty: every key goes to _Client.validate_host_public_key
        server_host_key_algs=algorithms,
        preferred_auth=PREFERRED_AUTH,
        gss_host=None,
        config=None,  # ~/.ssh/config is not read: the connection settings say it all
        client_factory=lambda: client,
        encryption_algs=list(CIPHERS),
        compression_algs=["none"],
        connect_timeout=conn.effective_connect_timeout,
        login_timeout=conn.effective_connect_timeout,
        keepalive_interval=conn.keepalive_interval,
        keepalive_count_max=conn.keepalive_count_max,
        window=WINDOW,
    )
    coalesce_writes(ssh)
    drop_ignore_packets(ssh, CIPHERS)
    return ssh


async def _auth_methods(conn: SftpConnection, user: str, algorithms: list[str]) -> list[str]:
    methods = await asyncssh.get_server_auth_methods(
        conn.host, conn.port, user, server_host_key_algs=algorithms, config=None
    )
    return list(methods)


def offered_auth_methods(conn: SftpConnection, user: str) -> list[str] | None:
    """The methods the server offers ``user`` (a second, credential-free connection that
    stops before authenticating); None when that fails."""
    try:
        return loop.run(
            _auth_methods(
                conn, user, HostKeyVerifier(conn, WireLog("probe")).host_key_algorithms()
            ),
            conn.effective_connect_timeout,
        )
    except Exception:  # only a detail of a message; the real error is raised anyway
        return None


def open_ssh(
    conn: SftpConnection, wire: WireLog, info: HandshakeInfo | None = None
) -> SshConnection:
    """Connect, verify the host key, authenticate; every failure is a FerrymanError.

    ``info`` (optional) is filled in as far as the handshake gets, also when it fails.
    """
    info = info if info is not None else HandshakeInfo()
    plan = auth_plan(conn)
    info.client_offered = plan.describe()
    where = conn.describe(plan.credentials.user)
    verifier = HostKeyVerifier(conn, wire)
    client = _Client(verifier, info)
    wire.note("connecting to %s:%s (ssh) as %s", conn.host, conn.port, plan.credentials.user)
    try:
        ssh = loop.run(
            _connect(conn, plan, client, verifier.host_key_algorithms()),
            conn.effective_connect_timeout,
        )
    except Exception as err:
        if verifier.verdict is not None and not verifier.verdict.trusted:
            info.host_key_verdict = verifier.verdict.value
            raise verifier.error(where) from None
        if isinstance(err, asyncssh.PermissionDenied):
            _negotiated(client, info)
            verifier.after_handshake()  # the key exchange was complete: record a new key
            offered = offered_auth_methods(conn, plan.credentials.user)
            info.auth_offered = ",".join(offered or ())
            raise login_refused(where, plan, offered) from None
        error = translate(err, f"connecting to {where}", where)
        if isinstance(error, FerrymanTimeout):
            error = FerrymanTimeout(
                f"connecting to {where}: waited {conn.effective_connect_timeout:g} s for "
                f"{_awaited(client)}, which did not come",
                hint="check the host and port (is it an SSH server?), or raise --timeout",
            )
        raise error from None
    _negotiated(client, info)
    wire.received(info.server_version)
    wire.note("ssh %s: %s", info.peer, info.summary())
    verifier.after_handshake()
    wire.note("authenticated as %s by %s", plan.credentials.user, info.auth_method)
    return SshConnection(ssh, plan.credentials.user, info, wire)


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
            shared.channel.close(0.5 if not shared.usable else min(_CLOSE_WAIT, self.conn.timeout))
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
