"""Translate asyncssh, SFTP status and socket errors into ferryman's error tree.

This is the boundary: nothing from asyncssh leaves the SFTP backend. Classification: a lost,
reset or timed-out connection is retriable; a missing path, a refusal, bad credentials and an
untrusted host key are not. SFTP v3 (what OpenSSH speaks) reports most refusals as a bare
``Failure``; the backend adds the reason it can find out (see ``SftpBackend._explain``).
"""

from __future__ import annotations

import asyncssh

from ...errors import (
    AuthenticationError,
    ConnectError,
    FerrymanError,
    HostKeyError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RemoteError,
    TLSError,
    TransferError,
)
from ..neterrors import translate_network_error

__all__ = ["SSH_REFUSED_HINT", "status_name", "translate"]

_STATUS_NAMES = {
    getattr(asyncssh, name): name.removeprefix("FX_")
    for name in dir(asyncssh)
    if name.startswith("FX_") and not name.endswith("_END") and name != "FX_OK"
}

_NOT_FOUND = {asyncssh.FX_NO_SUCH_FILE, asyncssh.FX_NO_SUCH_PATH}
_DENIED = {asyncssh.FX_PERMISSION_DENIED, asyncssh.FX_WRITE_PROTECT, asyncssh.FX_CANNOT_DELETE}
_FULL = {asyncssh.FX_NO_SPACE_ON_FILESYSTEM, asyncssh.FX_QUOTA_EXCEEDED}
_LOST = {asyncssh.FX_CONNECTION_LOST, asyncssh.FX_NO_CONNECTION}
_CONFLICT_HINTS = {
    asyncssh.FX_FILE_ALREADY_EXISTS: "the name is already taken; check what is there first",
    asyncssh.FX_DIR_NOT_EMPTY: "the directory is not empty; remove its contents first",
    asyncssh.FX_NOT_A_DIRECTORY: "a file stands where a directory is expected; check the path",
    asyncssh.FX_FILE_IS_A_DIRECTORY: "it is a directory; give the path of a file",
}
#: SSH disconnect reasons after which trying again cannot help
_FINAL_DISCONNECTS = {
    asyncssh.DISC_PROTOCOL_VERSION_NOT_SUPPORTED,
    asyncssh.DISC_ILLEGAL_USER_NAME,
    asyncssh.DISC_HOST_NOT_ALLOWED_TO_CONNECT,
    asyncssh.DISC_SERVICE_NOT_AVAILABLE,
}


def status_name(code: int) -> str:
    """``NO_SUCH_FILE`` for an SFTP status code, as the drafts spell it."""
    return _STATUS_NAMES.get(code, f"status {code}")


def _sftp_status(err: asyncssh.SFTPError, what: str, transfer: bool) -> FerrymanError:
    code = err.code
    reason = (err.reason or status_name(code)).strip()

    def make(cls: type[FerrymanError], hint: str, retriable: bool | None = None) -> FerrymanError:
        return cls(
            f"{what}: server replied {reason!r} ({status_name(code)})",
            hint=hint,
            retriable=retriable,
            reply_code=code,
            reply_text=reason,
        )

    if code in _NOT_FOUND:
        return make(NotFoundError, "check the path (names are case-sensitive)")
    if code in _DENIED:
        return make(PermissionDeniedError, "the server denies this user access to that path")
    if code in _FULL:
        return make(TransferError, "the server's disk or quota is full", retriable=False)
    if code in _LOST:
        lost = TransferError if transfer else ConnectError
        return make(lost, "the SFTP session was lost; run again, or allow more retries")
    if code == asyncssh.FX_OP_UNSUPPORTED:
        return make(ProtocolError, "the server does not support this operation")
    if code == asyncssh.FX_BAD_MESSAGE:
        return make(ProtocolError, "the server rejected a request as malformed")
    if code in _CONFLICT_HINTS:
        return make(RemoteError, _CONFLICT_HINTS[code])
    return make(
        RemoteError,
        "the server refused without a reason (SFTP v3 says only 'Failure'): the name may "
        "be taken, a directory not empty, or a disk full",
    )


SSH_REFUSED_HINT = "check the host and port; is the SSH server running? (SFTP uses port 22)"


def translate(
    err: BaseException, what: str, where: str, *, transfer: bool = False
) -> FerrymanError:
    """The project error for any exception raised while doing ``what`` against ``where``.

    ``transfer`` marks failures in the middle of a file's data (TransferError rather than
    ConnectError when the connection drops).
    """
    if isinstance(err, FerrymanError):
        return err
    if isinstance(err, asyncssh.SFTPError):
        return _sftp_status(err, what, transfer)
    if isinstance(err, asyncssh.PermissionDenied):
        return AuthenticationError(
            f"{what}: {where} refused the login",
            hint="check the user name and the password or key",
        )
    if isinstance(err, asyncssh.HostKeyNotVerifiable):
        return HostKeyError(f"{what}: the host key of {where} is not trusted ({err.reason})")
    if isinstance(err, asyncssh.KeyExchangeFailed):
        return TLSError(
            f"{what}: no common SSH algorithm with {where} ({err.reason})",
            hint="the server allows only algorithms ferryman does not offer; check its "
            "KexAlgorithms, Ciphers and HostKeyAlgorithms",
        )
    if isinstance(err, asyncssh.ChannelOpenError):
        return ConnectError(
            f"{what}: {where} refused to open a channel ({err.reason})",
            hint="the server limits sessions per connection (MaxSessions) or is busy",
        )
    if isinstance(err, asyncssh.DisconnectError):
        cls = TransferError if transfer else ConnectError
        return cls(
            f"{what}: {where} closed the connection ({err.reason or 'no reason given'})",
            hint="the server dropped the session; run again, or allow more retries",
            retriable=err.code not in _FINAL_DISCONNECTS,
        )
    network = translate_network_error(
        err,
        what,
        where,
        refused_hint=SSH_REFUSED_HINT,
        in_transfer=transfer,
    )
    if network is not None:
        return network
    if isinstance(err, asyncssh.Error):
        return ProtocolError(f"{what}: SSH error with {where}: {err.reason}")
    return ProtocolError(f"{what}: unexpected {type(err).__name__} talking to {where}: {err}")
