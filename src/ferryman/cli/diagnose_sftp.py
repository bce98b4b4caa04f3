"""``ferryman test`` for SFTP: TCP, the SSH handshake and host key, the login, the SFTP
subsystem, and a listing of the start directory.

Each step is a :class:`~ferryman.cli.diagnose.Check`; the steps stop at the first failure that
makes the next ones meaningless. A refused host key names the key the server offered and how
to pin it; a refused login names the methods the server offers and what ferryman offered.
"""

from __future__ import annotations

from ..backends.sftp import loop
from ..backends.sftp.channel import SftpChannel, open_channel
from ..backends.sftp.session import HandshakeInfo, SshConnection, offered_auth_methods, open_ssh
from ..backends.sftp.translate import SSH_REFUSED_HINT, translate
from ..connection import SftpConnection
from ..errors import AuthenticationError, FerrymanError, HostKeyError
from ..wirelog import WireLog
from .diagnose import Check, tcp_check

__all__ = ["diagnose_sftp"]


def _failed(
    name: str, err: FerrymanError, detail: str | None = None, data: dict[str, object] | None = None
) -> Check:
    return Check(name, False, detail or err.message, err.hint, int(err.exit_code), data or {})


def _handshake_data(info: HandshakeInfo) -> dict[str, object]:
    key_type, _, fingerprint = info.host_key.partition(" ")
    return {
        "server_version": info.server_version,
        "kex": info.kex,
        "cipher": info.cipher,
        "mac": info.mac,
        "host_key_type": key_type,
        "host_key_fingerprint": fingerprint,
        "host_key_verdict": info.host_key_verdict,
    }


def _ssh_check(info: HandshakeInfo) -> Check:
    detail = f"{info.summary()} ({info.host_key_verdict})"
    return Check("ssh", True, detail, data=_handshake_data(info))


def _login(conn: SftpConnection, info: HandshakeInfo) -> tuple[list[Check], SshConnection | None]:
    wire = WireLog(conn.describe())
    try:
        ssh = open_ssh(conn, wire, info)
    except HostKeyError as err:
        detail = f"{info.server_version or 'SSH server'}: {err.message}"
        return [_failed("ssh", err, detail, _handshake_data(info))], None
    except AuthenticationError as err:
        data: dict[str, object] = {"offered": info.auth_offered, "tried": info.client_offered}
        auth = _failed("auth", err, data=data)
        return [_ssh_check(info), auth], None
    except FerrymanError as err:
        return [_failed("ssh", err, data=_handshake_data(info))], None
    methods = offered_auth_methods(conn, ssh.user)
    shown = ",".join(methods) if methods is not None else "(could not be learned)"
    auth = Check(
        "auth",
        True,
        f"logged in as {ssh.user} by {info.auth_method}; the server offers {shown}; "
        f"ferryman offered {info.client_offered}",
        data={"user": ssh.user, "method": info.auth_method, "offered": methods or []},
    )
    return [_ssh_check(info), auth], ssh


def _listing(conn: SftpConnection, channel: SftpChannel) -> Check:
    async def start_directory() -> tuple[str, int]:
        home = str(await channel.client.realpath("."))
        names = [n for n in await channel.client.listdir(home) if n not in (".", "..")]
        return home, len(names)

    try:
        home, count = loop.run(start_directory(), conn.timeout)
    except Exception as err:
        return _failed("list", translate(err, "listing the start directory", conn.describe()))
    return Check(
        "list",
        True,
        f"login directory {home} (write /~/PATH for paths below it): {count} entries",
        data={"path": home, "login_directory": home, "entries": count},
    )


def diagnose_sftp(conn: SftpConnection) -> list[Check]:
    """The checks of ``ferryman test`` for an SFTP connection (see the module docstring)."""
    checks = [tcp_check(conn, SSH_REFUSED_HINT)]
    if not checks[0].ok:
        return checks
    info = HandshakeInfo()
    steps, ssh = _login(conn, info)
    checks += steps
    if ssh is None:
        return checks
    channel = None
    try:
        try:
            channel = open_channel(ssh.ssh, conn)
        except Exception as err:
            checks.append(_failed("sftp", translate(err, "starting the sftp subsystem", "")))
            return checks
        checks.append(
            Check(
                "sftp",
                True,
                channel.summary(),
                data={"version": channel.version, "extensions": list(channel.extensions)},
            )
        )
        checks.append(_listing(conn, channel))
    finally:
        if channel is not None:
            channel.close(min(5.0, conn.timeout))
        ssh.close()
    return checks
