"""One authenticated SSH connection: connecting, verifying the host key, logging in.

The connections a backend and its siblings share, and the SFTP channels on them, are kept by
``group.ConnectionGroup``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncssh

from ...connection import SftpConnection
from ...errors import TimeoutError as FerrymanTimeout
from ...wirelog import WireLog
from .. import preconnect
from . import loop
from .auth import PREFERRED_AUTH, AuthPlan, auth_plan, login_refused
from .hostkeys import HostKeyVerifier
from .translate import translate
from .transport import coalesce_writes, drop_ignore_packets

if TYPE_CHECKING:
    from .group import SharedChannel

__all__ = [
    "HandshakeInfo",
    "SshConnection",
    "offered_auth_methods",
    "open_ssh",
]

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
        self.channels: list[SharedChannel] = []  #: ``group.SharedChannel``
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
    conn: SftpConnection,
    plan: AuthPlan,
    client: _Client,
    algorithms: list[str],
    handed: list[socket.socket],
) -> asyncssh.SSHClientConnection:
    sock = handed.pop() if handed else None  # asyncssh's from here on
    ssh = await asyncssh.connect(
        conn.host,
        conn.port,
        sock=sock,
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
    try:
        plan = auth_plan(conn)
    except BaseException:
        preconnect.discard(conn.host, conn.port)  # no handshake will use it: no idle socket
        raise
    info.client_offered = plan.describe()
    where = conn.describe(plan.credentials.user)
    verifier = HostKeyVerifier(conn, wire)
    client = _Client(verifier, info)
    wire.note("connecting to %s:%s (ssh) as %s", conn.host, conn.port, plan.credentials.user)
    # dialled while asyncssh was loading (``backends.preconnect``): taken here, not on the
    # loop; ``handed`` holds it until asyncssh owns it (and closes it)
    handed: list[socket.socket] = []
    try:
        sock = preconnect.take(conn.host, conn.port, conn.effective_connect_timeout)
        if sock is not None:
            handed.append(sock)
        ssh = loop.run(
            _connect(conn, plan, client, verifier.host_key_algorithms(), handed),
            conn.effective_connect_timeout,
        )
    except Exception as err:
        for unused in handed:
            unused.close()  # asyncssh never got it
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
