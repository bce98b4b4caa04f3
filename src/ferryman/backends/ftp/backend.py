"""The FTP/FTPS backend: the Backend interface over one :class:`FtpSession`.

One backend is one control connection, used by one thread at a time. A session that failed
at the network level is dropped and the next operation opens a fresh one; retrying is the
caller's policy (see ``ferryman.retry``), not the backend's.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from ...connection import FtpConnection, TLSMode
from ...errors import (
    CertificateError,
    ConnectError,
    FerrymanError,
    PermissionDeniedError,
    ProtocolError,
    RemoteError,
    ResumeRefusedError,
    TransferError,
)
from ...paths import check_remote_path
from ...secrets import login_credentials
from ...wirelog import WireLog, register_secret
from ..base import (
    Backend,
    Capabilities,
    NotSupportedError,
    usable_login_directory,
)
from .ascii import AsciiReadStream, AsciiWriteStream
from .hashes import hash_support, normalize_algorithm, server_hash
from .keyshare import grouped_context
from .lookups import SIZE_INSTEAD, FtpLookups
from .pipelining import PipeliningRefusedError, host_facts
from .quirks import ServerQuirks, refused_command, refuses_overwrite, refuses_resume
from .replies import parse_size
from .session import FtpSession, parse_pwd
from .streams import FtpReadStream, FtpWriteStream
from .tls import build_context, probe_fingerprint
from .translate import session_broke, translate

__all__ = ["FtpBackend"]


#: a small file over FTPS costs vsftpd 4 round trips to send (the data connection's connect and
#: TLS flight, the client's Finished, its close before the 226) and 5 to receive (the RNFR +
#: RNTO that publish it)
READ_ROUND_TRIPS, WRITE_ROUND_TRIPS = 4, 5


class FtpBackend(FtpLookups, Backend):
    """FTP, explicit FTPS (ftpes://) and implicit FTPS (ftps://) via stdlib ftplib."""

    def __init__(
        self,
        conn: FtpConnection,
        tls_context: ssl.SSLContext | None = None,
        quirks: ServerQuirks | None = None,
    ) -> None:
        self.conn = conn
        #: one TLS context for this backend, its reconnections and its siblings
        self.tls_context = tls_context
        #: what this server advertised but refused; shared likewise (see quirks.py)
        self.quirks = quirks if quirks is not None else ServerQuirks()
        self.wire = WireLog(conn.describe())
        self.session: FtpSession | None = None
        self.user = conn.user
        self.banner = ""
        self.busy = False  # a data stream is open on the session
        self._pwd_asked = False  # PWD was sent (its answer may have been unusable)
        #: the engine's hint that another transfer follows (``transfers_follow``)
        self._follows = False
        self.capabilities = Capabilities(
            mtime_precision=60,
            prepares_transfers=True,
            read_round_trips=READ_ROUND_TRIPS,
            write_round_trips=WRITE_ROUND_TRIPS,
        )

    # -- session life cycle ----------------------------------------------------------------

    def describe(self) -> str:
        return self.conn.describe(self.user)

    def translate(self, err: BaseException, what: str) -> FerrymanError:
        return translate(err, what, self.describe())

    def connect(self) -> FtpBackend:
        """Open and log in now (otherwise the first operation does it)."""
        self.session_or_raise()
        return self

    def sibling(self) -> FtpBackend:
        backend = FtpBackend(self.conn, self._context(), self.quirks)
        backend.login_directory = self.login_directory  # same user, same server: no PWD
        return backend

    def _context(self) -> ssl.SSLContext | None:
        if self.tls_context is None and self.conn.tls is not TLSMode.NONE:
            self.tls_context = build_context(self.conn)
        return self.tls_context

    def _session_context(self) -> ssl.SSLContext | None:
        """The context a new session uses: one that offers first the key-exchange group the
        server asked for before, when it did (a round trip per handshake, see keyshare.py)."""
        base = self._context()
        group = host_facts(self.conn.host, self.conn.port).tls_group
        if base is None or group is None:
            return base
        return grouped_context(base, group, lambda: build_context(self.conn))

    def session_or_raise(self) -> FtpSession:
        if self.session is not None:
            if not self.session.prepared_stale():
                return self.session
            # a passive port left unused too long may draw an unsolicited 421 (prepared.py)
            self.invalidate()
        creds = login_credentials(self.conn)
        self.user = creds.user
        if not creds.anonymous:
            register_secret(creds.password)
        group_refused = False
        while True:
            context = self._session_context()
            session = FtpSession(self.conn, self.wire, context, self.quirks)
            try:
                self.banner = session.open()
                session.login_with(creds.user, creds.password)
            except PipeliningRefusedError:
                session.close()  # out of step; the next one sends a command at a time
                continue
            except ssl.SSLError as err:
                broke = None
                if session.tls_established:  # after the handshake: perhaps the session broke
                    said = session.clear_text()
                    broke = session_broke(err, "logging in", self.describe(), said, in_use=False)
                session.close()
                if broke is not None:
                    raise broke from None
                if context is self._context() or group_refused or _certificate(err):
                    raise self._connect_error(err) from None
                # The remembered key-exchange group was refused (another node behind the
                # same name, or the server changed): forget it and offer the defaults again.
                group_refused = True
                self.wire.note("the TLS handshake over the remembered key-exchange group failed")
                host_facts(self.conn.host, self.conn.port).tls_group = None
                continue
            except BaseException as err:
                session.close()
                raise self._connect_error(err) from None
            break
        self.session = session
        session.follows = self._follows
        if session.round_trip is not None:
            self.note_round_trip(session.round_trip)
        self._learned()
        return session

    def find_login_directory(self) -> str | None:
        """PWD on the open session, once (see ``Backend.find_login_directory``). Without a
        session, or with a transfer open on it, nothing is asked: ``~/x`` is then sent as
        the relative ``x``, which the server reads from the login directory all the same."""
        session = self.session
        if self.login_directory is not None or self._pwd_asked or session is None or self.busy:
            return self.login_directory
        self._pwd_asked = True
        try:
            self.login_directory = _login_directory(session)
        except Exception:  # the session failed: the next operation reconnects and reports
            self.invalidate()
        return self.login_directory

    def _features(self, session: FtpSession) -> dict[str, str]:
        """What FEAT advertised, less what the server has since refused."""
        return self.quirks.effective(session.features)

    def _learned(self) -> None:
        """Derive the capabilities from FEAT and the quirks (after login, after a refusal)."""
        features = self.quirks.effective(self.session.features if self.session else {})
        self.capabilities = Capabilities(
            hashes=hash_support(features).algorithms,
            resume_read=not self.quirks.refused("REST"),
            resume_write=not self.quirks.resume_write_refused,
            set_mtime="MFMT" in features,
            mtime_precision=1 if ("MLST" in features or "MDTM" in features) else 60,
            prepares_transfers=True,
            read_round_trips=READ_ROUND_TRIPS,
            write_round_trips=WRITE_ROUND_TRIPS,
        )

    def transfers_follow(self, more: bool) -> None:
        """The next passive port is asked for behind the current transfer when another one
        follows (see prepared.py)."""
        self._follows = more
        if self.session is not None:
            self.session.follows = more

    def _refused(self, command: str, err: FerrymanError, then: str) -> None:
        """Remember that the server refused ``command`` (see quirks.py)."""
        self.quirks.refuse(command, err.reply_text or err.message, self.wire, then=then)
        self._learned()

    def _optional(self, session: FtpSession, command: str, line: str, then: str) -> str | None:
        """The reply to an optional ``command`` (sending ``line``), or None when the server
        refuses it although it advertised it: remembered, and ``then`` noted once (issue 12).
        Any other error is raised."""
        try:
            return session.command(line)
        except ProtocolError as err:
            if not refused_command(err):
                raise
            self._refused(command, err, then)
            return None

    def _connect_error(self, err: BaseException) -> FerrymanError:
        error = self.translate(err, f"connecting to {self.describe()}")
        if isinstance(err, ssl.SSLCertVerificationError) or (
            isinstance(error, CertificateError) and error.fingerprint is None
        ):
            fingerprint = probe_fingerprint(self.conn)
            if fingerprint is not None:
                error = CertificateError(
                    error.message,
                    hint=f"if you trust the certificate the server presented, pin it with "
                    f"--fingerprint {fingerprint} (fingerprint: in a connections file), or "
                    "trust its CA with --ca-file",
                    fingerprint=fingerprint,
                )
        return error

    def invalidate(self) -> None:
        """Forget a session that failed at the network level (closed without QUIT)."""
        session, self.session = self.session, None
        self.busy = False
        if session is not None:
            session.close()

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.quit_quietly()

    @contextmanager
    def _op(self, what: str, path: str = "") -> Iterator[FtpSession]:
        """Run ``what`` on the session; a "not found" for absolute ``path`` gets the login
        directory in its hint."""
        if self.busy:
            raise ProtocolError(f"{what}: a transfer is still open on this connection")
        session = self.session_or_raise()
        try:
            yield session
        except FerrymanError as err:
            if isinstance(err, ConnectError) or session.broken:
                self.invalidate()
            self.hint_not_found(err, path)
            raise
        except Exception as err:
            # a session that logged in over TLS and now fails at TLS may have broken
            # (translate.session_broke weighs the evidence); clear_text reads beneath the
            # TLS layer only once reading the control connection failed at TLS
            said = session.clear_text() if isinstance(err, ssl.SSLError) else ""
            error = session_broke(err, what, self.describe(), said, in_use=True) or (
                self.translate(err, what)
            )
            if isinstance(error, ConnectError) or session.broken:
                self.invalidate()
            raise self.hint_not_found(error, path) from err

    # -- data ------------------------------------------------------------------------------

    def open_read(self, path: str, offset: int = 0) -> FtpReadStream:
        path = check_remote_path(self.login_path(path))
        what = f"RETR {path}"
        with self._op(what, path) as session:
            session.set_type("I")
            try:
                sock, size = session.transfer(what, rest=offset or None)
            except ResumeRefusedError:
                self._learned()  # REST refused: capabilities.resume_read is now False
                raise
        self.busy = True
        return FtpReadStream(self, sock, what, size, offset)

    def open_read_ascii(self, path: str) -> AsciiReadStream:
        path = check_remote_path(self.login_path(path))
        what = f"RETR {path} (ASCII)"
        with self._op(what, path) as session:
            session.set_type("A")
            sock, _ = session.transfer(f"RETR {path}")
        self.busy = True
        # the 150 reply announces the file's size, not what TYPE A puts on the wire
        return AsciiReadStream(FtpReadStream(self, sock, what, None, 0))

    def open_write_ascii(self, path: str) -> AsciiWriteStream:
        path = check_remote_path(self.login_path(path))
        what = f"STOR {path} (ASCII)"
        with self._op(what, path) as session:
            session.set_type("A")
            sock, _ = session.transfer(f"STOR {path}")
        self.busy = True
        return AsciiWriteStream(FtpWriteStream(self, sock, what))

    def open_write(self, path: str, offset: int = 0) -> FtpWriteStream:
        """STOR; at an offset REST + STOR where FEAT says ``REST STREAM`` (RFC 3659 section 5),
        otherwise APPE (RFC 959) onto a partial file checked to be ``offset`` bytes long."""
        path = check_remote_path(self.login_path(path))
        what = f"STOR {path}"
        with self._op(what, path) as session:
            session.set_type("I")
            if offset and self.quirks.resume_write_refused:
                raise ResumeRefusedError(f"{what}: this server refuses to resume uploads")
            rest: int | None = offset or None
            if offset and "STREAM" not in self._features(session).get("REST", "").upper():
                what, rest = f"APPE {path}", None
                self._check_append_point(session, path, offset)
            try:
                sock, _ = session.transfer(what, rest=rest)
            except ResumeRefusedError:
                self._learned()
                raise
            except RemoteError as err:
                if not offset and refuses_overwrite(err):
                    # ProFTPD's AllowOverwrite off (issue 12): the temporary file an interrupted
                    # run left cannot be written over; the caller deletes it and writes it again
                    raise ResumeRefusedError(
                        err.message,
                        hint="this server refuses to overwrite files; delete it first",
                        reply_code=err.reply_code,
                        reply_text=err.reply_text,
                    ) from None
                if not offset or not refuses_resume(err):
                    raise
                # ProFTPD's AllowStoreRestart/AllowOverwrite off (default; issue 12): REST ok,
                # then "550 Overwrite permission denied" / "451 Append/Restart not permitted"
                self.quirks.refuse_resume_write(err.reply_text or err.message, self.wire)
                self._learned()
                raise ResumeRefusedError(
                    err.message,
                    hint="this server cannot resume uploads; the copy starts over from byte 0",
                    reply_code=err.reply_code,
                    reply_text=err.reply_text,
                ) from None
        self.busy = True
        return FtpWriteStream(self, sock, what, size_path=path, offset=offset)

    def _check_append_point(self, session: FtpSession, path: str, offset: int) -> None:
        """APPE writes at the server's end of the file, wherever that is: make sure it is at
        ``offset`` (when the server has SIZE), or the tail would land in the wrong place."""
        if "SIZE" not in self._features(session):
            return  # nothing to check with; the caller verifies the final size
        # advertised but refused (issue 12): no check; the landed size is checked after
        reply = self._optional(session, "SIZE", f"SIZE {path}", SIZE_INSTEAD)
        if reply is None:
            return
        size = parse_size(path, reply)
        if size != offset:
            raise TransferError(
                f"APPE {path}: the partial file on {self.describe()} has {size} bytes, not "
                f"{offset}; appending would corrupt it",
                hint="start this upload over from byte 0",
                retriable=False,
            )

    # -- namespace -------------------------------------------------------------------------

    def _simple(self, *commands: str, path: str = "") -> None:
        for cmd in commands:
            check_remote_path(cmd)
        with self._op(commands[-1], path) as session:
            session.commands(commands)  # one send on a server that pipelines (RNFR + RNTO)

    def mkdir(self, path: str) -> None:
        path = self.login_path(path)
        self._simple(f"MKD {path}", path=path)

    def rmdir(self, path: str) -> None:
        path = self.login_path(path)
        try:
            self._simple(f"RMD {path}", path=path)
        except RemoteError as err:
            # servers word it differently (vsftpd: "550 Remove directory operation failed.",
            # read as "not found"); one error for a directory with files in it (issue 12)
            if isinstance(err, PermissionDeniedError) or not self._has_entries(path):
                raise
            raise RemoteError(
                f"RMD {path}: the directory is not empty",
                hint="remove its contents first",
                reply_code=err.reply_code,
                reply_text=err.reply_text,
            ) from None

    def _has_entries(self, path: str) -> bool:
        """Whether ``path`` is a directory with something in it (a LIST of a file shows the
        file: it is asked only of a directory)."""
        try:
            return self.stat(path).is_dir and bool(self.list(path))
        except FerrymanError:
            return False

    def remove(self, path: str) -> None:
        path = self.login_path(path)
        self._simple(f"DELE {path}", path=path)

    def rename(self, source: str, target: str) -> None:
        source, target = self.login_path(source), self.login_path(target)
        lines = [check_remote_path(f"RNFR {source}"), check_remote_path(f"RNTO {target}")]
        with self._op(lines[-1], source) as session:
            # publishing an upload: the next transfer's EPSV rides along when one follows
            if session.commands_preparing(lines) is None:
                session.commands(lines)

    def hash(self, path: str, algorithm: str) -> str:
        """Lower-case hex digest of ``path`` computed by the server (HASH, XSHA256, ...)."""
        path = check_remote_path(self.login_path(path))
        wanted = normalize_algorithm(algorithm)
        with self._op(f"hash {path}", path) as session:
            while True:  # HASH refused: the X-command for the same algorithm, if offered
                support = hash_support(self._features(session))
                if wanted not in support.algorithms:
                    offered = ", ".join(support.algorithms) or "none"
                    raise NotSupportedError(
                        f"{self.describe()} cannot compute {algorithm} hashes (offers: {offered})"
                    )
                try:
                    return server_hash(session, support, path, wanted)
                except ProtocolError as err:
                    if not refused_command(err):
                        raise
                    command = "HASH" if wanted in support.hash_names else support.x_commands[wanted]
                    # advertised but refused (HASH, OPTS HASH, XSHA256...; issue 12): size only
                    self._refused(command, err, "copies are verified by size")

    def set_mtime(self, path: str, mtime: datetime) -> None:
        if not self.capabilities.set_mtime:
            raise NotSupportedError(f"{self.describe()} offers no MFMT to set times")
        stamp = mtime.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        path = self.login_path(path)
        try:
            self._simple(f"MFMT {stamp} {path}", path=path)
        except ProtocolError as err:
            if not refused_command(err):
                raise
            # advertised but refused (issue 12): the copy is complete; its time is not kept
            self._refused("MFMT", err, "modification times are not preserved")
            raise NotSupportedError(f"{self.describe()} refuses MFMT to set times") from None


def _certificate(err: ssl.SSLError) -> bool:
    """Whether a TLS failure is about the server's certificate (not the key exchange)."""
    return isinstance(err, ssl.SSLCertVerificationError)


def _login_directory(session: FtpSession) -> str | None:
    """PWD: the directory the server put the user in at login, which ``~`` names.

    A server that refuses PWD, or answers with something unusable (see
    ``usable_login_directory``), leaves it unknown: ``~/x`` is then sent as the relative
    ``x``, which the server reads from that same directory.
    """
    if session.home is not None:  # asked already (lookups: a CWD and back)
        return usable_login_directory(session.home)
    try:
        reply = session.command("PWD")
    except FerrymanError as err:
        if isinstance(err, ConnectError):
            raise
        return None
    session.home = parse_pwd(reply)
    return usable_login_directory(session.home)
