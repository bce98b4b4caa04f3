"""Translate ftplib, socket and ssl errors into ferryman's error tree, at the backend boundary.

FTP reply classes (RFC 959): 4xx is transient (retry), 5xx is permanent (don't), with the
special cases the field learned: 421 closes the session (retry, maybe with fewer
connections), 425/426 are data-connection failures (retry), 530 is a login refusal, 550 is
"not found" or "denied" depending on the text, 552 is a full disk or quota (don't retry).
"""

from __future__ import annotations

import ftplib
import re
import ssl

from ...errors import (
    AuthenticationError,
    CertificateError,
    ConnectError,
    FerrymanError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RemoteError,
    TLSError,
    TransferError,
)
from ..neterrors import translate_network_error

__all__ = [
    "FTP_REFUSED_HINT",
    "reply_code",
    "session_broke",
    "translate",
    "translate_reply",
]

_DENIED = re.compile(r"permission|denied|access|not allowed|forbidden|read-only", re.I)
_CONFLICT = re.compile(r"not empty|already exists|file exists|directory exists", re.I)
_REUSE = re.compile(r"session reuse|not resumed|resum", re.I)
_MISSING = re.compile(r"no such|not found|does not exist|doesn't exist", re.I)


def reply_code(reply: str) -> int | None:
    head = reply[:3]
    return int(head) if head.isdigit() else None


def translate_reply(reply: str, what: str) -> FerrymanError:
    """The error for a refusing reply to ``what`` (e.g. "RETR /a.csv")."""
    reply = reply.strip()
    code = reply_code(reply)
    if code is None:
        return ProtocolError(f"{what}: unexpected reply {reply!r}", reply_text=reply)
    msg = f"{what}: server replied {reply!r}"

    def make(
        cls: type[FerrymanError], hint: str | None = None, retriable: bool | None = None
    ) -> FerrymanError:
        return cls(msg, hint=hint, retriable=retriable, reply_code=code, reply_text=reply)

    if code in (522, 425, 534) and _REUSE.search(reply):
        return make(
            TLSError,
            "the server demands TLS session reuse on data connections and refused ours; "
            "check tls_max_version and report the transcript (-v)",
        )
    if code in (522, 534):
        return make(TLSError, "the server refused the TLS settings on the data channel")
    if code == 421:
        return make(ConnectError, "the server closed the session (busy or too many connections)")
    if code in (425, 426):
        return make(TransferError, "the data connection failed; run again, or allow more retries")
    if code == 530:
        return make(
            AuthenticationError,
            "check the user name and password (and whether this user may log in)",
        )
    if code == 552:
        return make(TransferError, "the server's disk or quota is full", retriable=False)
    if code in (550, 553, 450) and _DENIED.search(reply):
        return make(PermissionDeniedError, "the server denies this user access to that path")
    if code in (550, 553) and _CONFLICT.search(reply):
        return make(
            RemoteError,
            "the directory is not empty, or the name is already taken; check what is there first",
        )
    if code == 550:
        return make(NotFoundError, "check the path (names are case-sensitive)")
    if code == 501 and _MISSING.search(reply):  # pyftpdlib: "501 No such directory." to MLSD
        return make(NotFoundError, "check the path (names are case-sensitive)")
    if code in (500, 501, 502, 504):
        return make(ProtocolError, "the server does not support this command")
    return make(RemoteError, retriable=400 <= code < 500)


FTP_REFUSED_HINT = (
    "check the host and port; is the server running? (explicit FTPS uses 21, implicit 990)"
)


#: what CPython's ssl module says (with errno 0) when the socket under the TLS layer is closed
_NO_SOCKET = "Underlying socket connection gone"


def session_broke(
    err: BaseException, what: str, where: str, clear_text: str, *, in_use: bool
) -> FerrymanError | None:
    """A TLS error on a session past its TLS handshake, as what the evidence says it is;
    None when there is none (the error is then about the TLS set-up, see :func:`translate`).

    The evidence: words in clear text on the TLS connection (vsftpd ends a session whose
    process failed with ``500 OOPS: ...`` written in clear, and OpenSSL reads its first bytes
    as a record header: WRONG_VERSION_NUMBER), or, on a session in use, a connection ending
    without close_notify. In use (``in_use``) that is a broken connection: retriable, the next
    attempt reconnects. While logging in, words in clear text are the server refusing the
    session (a home it cannot enter, a client certificate it rejected): not retried, and its
    words are shown instead of a guess about the TLS mode. A TLS alert is always about TLS."""
    if not isinstance(err, ssl.SSLError) or isinstance(err, ssl.SSLCertVerificationError):
        return None
    reason = err.reason or type(err).__name__
    # OpenSSL took the line's first 5 bytes for a record header: the rest is shown; nothing
    # authenticates it (anyone on the path could have written it)
    said = f"; it wrote in clear text (unauthenticated): '...{clear_text}'" if clear_text else ""
    if not in_use:
        if not clear_text:
            return None
        return TLSError(
            f"{what}: {where} ended the TLS session ({reason}){said}",
            hint="the server refused the session after the TLS handshake; its words say why "
            "(vsftpd: '500 OOPS: ...'; see the server's log)",
            retriable=False,
        )
    ended = isinstance(err, ssl.SSLEOFError | ssl.SSLZeroReturnError)
    if "ALERT" in reason or not (clear_text or ended):
        return None
    return ConnectError(
        f"{what}: the TLS session with {where} broke ({reason}){said}",
        hint="the server ended the session (one that fails mid-session may say why in clear "
        "text, as vsftpd's '500 OOPS'); the next attempt reconnects",
        retriable=True,
    )


def translate(err: BaseException, what: str, where: str) -> FerrymanError:
    """The project error for any exception raised while doing ``what`` against ``where``."""
    if isinstance(err, FerrymanError):
        return err
    if isinstance(err, ftplib.error_temp | ftplib.error_perm | ftplib.error_reply):
        return translate_reply(str(err), what)
    if isinstance(err, ftplib.error_proto):
        return ProtocolError(f"{what}: malformed reply from {where}: {str(err)[:200]!r}")
    if isinstance(err, ssl.SSLCertVerificationError):
        return CertificateError(
            f"{what}: the certificate of {where} is not trusted: {err.verify_message}",
            hint="give the CA with --ca-file, or pin the certificate with --fingerprint",
        )
    if isinstance(err, ssl.SSLError) and _NO_SOCKET in str(err):
        # the socket under the TLS layer is gone (finalized while the connection was still in
        # use, as when a file object holding it was garbage collected): the connection is
        # gone, not the TLS set-up wrong; a retry reconnects
        return ConnectError(
            f"{what}: the connection to {where} was closed under ferryman",
            hint="run again; the next attempt reconnects",
            retriable=True,
        )
    if isinstance(err, ssl.SSLError):
        reason = err.reason or str(err)
        hint = "check the TLS mode and port"
        if reason in ("WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL", "RECORD_LAYER_FAILURE"):
            hint = (
                "the server does not speak TLS here: use ftpes:// (explicit, port 21) or "
                "ftp://, or check the port (implicit ftps:// is usually 990)"
            )
        elif reason == "TLSV1_ALERT_PROTOCOL_VERSION":
            hint = "the server and ferryman share no TLS version; see tls_min_version"
        return TLSError(f"{what}: TLS with {where} failed ({reason})", hint=hint, retriable=False)
    network = translate_network_error(
        err,
        what,
        where,
        refused_hint=FTP_REFUSED_HINT,
    )
    if network is not None:
        return network
    return ProtocolError(f"{what}: unexpected {type(err).__name__} talking to {where}: {err}")
