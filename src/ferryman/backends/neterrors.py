"""Socket-level failures, translated the same way for every network backend (FTP, SFTP).

Protocol-specific errors (FTP replies, TLS, SSH) are translated by each backend first; what is
left is the network itself: time-outs, refused connections, names that do not resolve, dropped
connections, other socket errors.
"""

from __future__ import annotations

import builtins
import socket

from ..errors import ConnectError, FerrymanError, TimeoutError, TransferError

__all__ = ["translate_network_error"]

_DROPPED = EOFError | ConnectionResetError | BrokenPipeError | ConnectionAbortedError


def translate_network_error(
    err: BaseException, what: str, where: str, *, refused_hint: str, in_transfer: bool = False
) -> FerrymanError | None:
    """The error for a network failure, or None when ``err`` is not one. A connection dropped
    ``in_transfer`` is a TransferError (the copy resumes), otherwise a ConnectError."""
    if where and where in what:  # "connecting to ftp://h:21" names it already: say it once
        where = "the server"
    if isinstance(err, builtins.TimeoutError):  # socket.timeout and asyncio's too (3.11)
        return TimeoutError(
            f"{what}: {where} did not answer in time",
            hint="the server or network is slow or stuck; raise --timeout if this is expected",
        )
    if isinstance(err, ConnectionRefusedError):
        return ConnectError(f"{what}: {where} refused the connection", hint=refused_hint)
    if isinstance(err, socket.gaierror):
        return ConnectError(
            f"{what}: cannot resolve the host name"
            + ("" if where == "the server" else f" of {where}")
            + f" ({err.strerror})",
            hint="check the host name",
            retriable=err.errno == socket.EAI_AGAIN,
        )
    if isinstance(err, _DROPPED):
        cls = TransferError if in_transfer else ConnectError
        return cls(
            f"{what}: {where} closed the connection",
            hint="the server dropped the session; run again, or allow more retries",
        )
    if isinstance(err, OSError):
        return ConnectError(f"{what}: network error with {where}: {err.strerror or err}")
    return None
