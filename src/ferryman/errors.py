"""The one exception tree of ferryman.

Every failure that leaves a backend is one of these. Wire errors (ftplib, socket, ssl, later
asyncssh) are translated at the backend boundary, so the layers above only ever see this tree.

Each error carries:

- ``retriable`` -- whether trying again may succeed (4xx replies, 421/425/426, time-outs,
  resets) or not (5xx replies, bad credentials, not found, refused certificates);
- ``exit_code`` -- the stable process exit code of the CLI (see :class:`ExitCode`);
- ``reply_code`` / ``reply_text`` -- the server's reply, when one caused the error;
- ``hint`` -- one sentence that says what to do about it.

Messages never contain a secret: code that builds them only ever names hosts, users, paths and
server replies (and the FTP layer masks ``PASS`` before anything is logged); and ``message``,
``hint`` and ``reply_text`` are masked (:func:`ferryman.redact.mask`) whenever they are read,
for a server that echoes the password in its reply.
"""

from __future__ import annotations

import enum

from .redact import mask

__all__ = [
    "AuthenticationError",
    "CertificateError",
    "ConfigError",
    "ConnectError",
    "ExitCode",
    "FerrymanError",
    "HostKeyError",
    "JobLockedError",
    "LoadError",
    "NotFoundError",
    "PermissionDeniedError",
    "PgpError",
    "PgpKeyError",
    "PgpPassphraseError",
    "ProtocolError",
    "RemoteError",
    "ResumeRefusedError",
    "SignatureError",
    "TLSError",
    "TargetExistsError",
    "TimeoutError",
    "TransferError",
    "VerificationError",
]


class ExitCode(enum.IntEnum):
    """Stable, documented process exit codes of the ``ferryman`` command."""

    OK = 0
    FAILURE = 1  #: anything not classified below
    USAGE = 2  #: bad command line, bad URL, invalid settings or job file
    CONNECTION = 3  #: host unreachable, connection refused or dropped, time-outs
    AUTHENTICATION = 4  #: login refused (530), bad key or password
    TLS = 5  #: TLS handshake failed, certificate or host key not trusted
    NOT_FOUND = 6  #: remote or local file or directory does not exist
    TRANSFER = 7  #: a transfer failed or was refused by the server (permission, 4xx/5xx)
    VERIFICATION = 8  #: a copy arrived but did not verify (size or hash mismatch)
    LOAD = 9  #: a database load or export failed (nothing of the failing file was committed)
    LOCKED = 10  #: another run of the same job is still running (it holds the job's lock)
    PGP = 11  #: an OpenPGP key is missing or wrong, or its passphrase (tampering is 8)


class FerrymanError(Exception):
    """Base class of every error ferryman raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILURE
    default_retriable: bool = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        retriable: bool | None = None,
        reply_code: int | None = None,
        reply_text: str | None = None,
    ) -> None:
        super().__init__(mask(message))
        self.message = message
        self.hint = hint
        self.retriable = self.default_retriable if retriable is None else retriable
        self.reply_code = reply_code
        self.reply_text = reply_text

    # Texts are masked when read, so a secret registered after the error was raised (or a
    # server that echoes the password in its reply) is masked too: see ferryman.redact.
    @property
    def message(self) -> str:
        return mask(self._message)

    @message.setter
    def message(self, value: str) -> None:
        self._message = value

    @property
    def hint(self) -> str | None:
        return None if self._hint is None else mask(self._hint)

    @hint.setter
    def hint(self, value: str | None) -> None:
        self._hint = value

    @property
    def reply_text(self) -> str | None:
        return None if self._reply_text is None else mask(self._reply_text)

    @reply_text.setter
    def reply_text(self, value: str | None) -> None:
        self._reply_text = value

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} -- {self.hint}"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, retriable={self.retriable})"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description, for ``--json`` output and run summaries."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "retriable": self.retriable,
            "reply_code": self.reply_code,
            "reply_text": self.reply_text,
            "exit_code": int(self.exit_code),
        }


class ConfigError(FerrymanError):
    """Invalid settings, URL, connections file or command line; fix the input and retry."""

    exit_code = ExitCode.USAGE


class ConnectError(FerrymanError):
    """The server could not be reached, or the connection dropped."""

    exit_code = ExitCode.CONNECTION
    default_retriable = True


class TimeoutError(ConnectError):
    """A connect, reply or data wait ran past its time-out."""


class AuthenticationError(FerrymanError):
    """The server refused the credentials."""

    exit_code = ExitCode.AUTHENTICATION


class TLSError(FerrymanError):
    """TLS could not be established, or the server refused to secure the session."""

    exit_code = ExitCode.TLS


class CertificateError(TLSError):
    """The server's certificate is not trusted (unknown CA, wrong host name, pin mismatch).

    ``fingerprint`` is the SHA-256 fingerprint of the certificate the server presented, when
    it could be read, so that the message can say exactly what to pin.
    """

    def __init__(self, message: str, *, fingerprint: str | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.fingerprint = fingerprint


class HostKeyError(TLSError):
    """An SSH host key is unknown or has changed."""

    def __init__(self, message: str, *, fingerprint: str | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.fingerprint = fingerprint


class RemoteError(FerrymanError):
    """The server refused a command; ``reply_code`` says how (4xx temporary, 5xx permanent)."""

    exit_code = ExitCode.TRANSFER


class NotFoundError(RemoteError):
    """A file or directory does not exist."""

    exit_code = ExitCode.NOT_FOUND


class TargetExistsError(RemoteError):
    """The destination exists and the overwrite policy forbids replacing it."""


class PermissionDeniedError(RemoteError):
    """The server or the local system denied access."""


class ProtocolError(RemoteError):
    """The server replied in a way the protocol does not allow (hostile or broken server)."""


class TransferError(FerrymanError):
    """A data transfer failed part-way (data connection dropped, short read, 426)."""

    exit_code = ExitCode.TRANSFER
    default_retriable = True


class ResumeRefusedError(TransferError):
    """The server refused to continue a partial file at an offset (REST, or STOR/APPE onto a
    partial upload), or to write over a temporary file an interrupted run left (ProFTPD's
    ``AllowStoreRestart``/``AllowOverwrite off``). Not a failure of the file: the copy
    deletes the temporary file and starts over from byte 0 at once."""


class VerificationError(FerrymanError):
    """A copy completed but did not match its source (size or hash)."""

    exit_code = ExitCode.VERIFICATION
    default_retriable = True


class LoadError(FerrymanError):
    """A file could not be loaded into a table, or a query not exported; the hint names the
    file and line. Nothing of the failing file was committed."""

    exit_code = ExitCode.LOAD


class JobLockedError(FerrymanError):
    """Another run of the same job holds its lock; this run did nothing."""

    exit_code = ExitCode.LOCKED


class PgpError(FerrymanError):
    """An OpenPGP operation (``gpg``) failed: the base of the key and passphrase errors."""

    exit_code = ExitCode.PGP


class PgpKeyError(PgpError):
    """A key is missing from the key ring (no secret key to decrypt or sign with, no public
    key of a recipient or signer) or unusable (expired, revoked, wrong kind)."""


class PgpPassphraseError(PgpError):
    """The secret key's passphrase is wrong, or none was given for a protected key."""


class SignatureError(VerificationError):
    """OpenPGP data did not verify: tampered or corrupt (a bad signature, a failed integrity
    check), unsigned where a signature is required, or signed by an unexpected key. Not
    retriable: the same bytes fail the same way."""

    default_retriable = False
