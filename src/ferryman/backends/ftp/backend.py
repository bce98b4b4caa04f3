"""The FTP/FTPS backend: the Backend interface over one :class:`FtpSession`.

One backend is one control connection, used by one thread at a time. A session that failed
at the network level is dropped and the next operation opens a fresh one; retrying is the
caller's policy (see ``ferryman.retry``), not the backend's.
"""

from __future__ import annotations

import dataclasses
import ftplib
import posixpath
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from ...connection import FtpConnection, TLSMode
from ...errors import (
    CertificateError,
    ConnectError,
    FerrymanError,
    NotFoundError,
    ProtocolError,
    RemoteError,
    TransferError,
)
from ...paths import check_remote_path
from ...secrets import login_credentials
from ...wirelog import WireLog, register_secret
from ..base import Backend, Capabilities, Entry, EntryType, NotSupportedError
from .ascii import AsciiReadStream, AsciiWriteStream
from .hashes import hash_support, normalize_algorithm, server_hash
from .listing import parse_list, parse_mlsd, parse_mlsd_line
from .session import FtpSession
from .streams import FtpReadStream, FtpWriteStream
from .tls import build_context, probe_fingerprint
from .translate import translate

__all__ = ["FtpBackend"]

MAX_LISTING_BYTES = 512 * 1024 * 1024  # bound on one directory listing
_MLSD_REFUSED: set[tuple[str, int]] = set()  # servers without MLSD (vsftpd), per process


class FtpBackend(Backend):
    """FTP, explicit FTPS (ftpes://) and implicit FTPS (ftps://) via stdlib ftplib."""

    def __init__(self, conn: FtpConnection, tls_context: ssl.SSLContext | None = None) -> None:
        self.conn = conn
        #: one TLS context for this backend, its reconnections and its siblings
        self.tls_context = tls_context
        self.wire = WireLog(conn.describe())
        self.session: FtpSession | None = None
        self.user = conn.user
        self.banner = ""
        self.busy = False  # a data stream is open on the session
        self.capabilities = Capabilities(mtime_precision=60)

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
        return FtpBackend(self.conn, self._context())

    def _context(self) -> ssl.SSLContext | None:
        if self.tls_context is None and self.conn.tls is not TLSMode.NONE:
            self.tls_context = build_context(self.conn)
        return self.tls_context

    def session_or_raise(self) -> FtpSession:
        if self.session is not None:
            return self.session
        creds = login_credentials(self.conn)
        self.user = creds.user
        if not creds.anonymous:
            register_secret(creds.password)
        session = FtpSession(self.conn, self.wire, self._context())
        try:
            self.banner = session.open()
            session.login_with(creds.user, creds.password)
        except BaseException as err:
            session.close()
            raise self._connect_error(err) from None
        self.session = session
        features = session.features
        self.capabilities = Capabilities(
            hashes=hash_support(features).algorithms,
            set_mtime="MFMT" in features,
            mtime_precision=1 if ("MLST" in features or "MDTM" in features) else 60,
        )
        return session

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
    def _op(self, what: str) -> Iterator[FtpSession]:
        if self.busy:
            raise ProtocolError(f"{what}: a transfer is still open on this connection")
        session = self.session_or_raise()
        try:
            yield session
        except FerrymanError as err:
            if isinstance(err, ConnectError) or session.broken:
                self.invalidate()
            raise
        except Exception as err:
            error = self.translate(err, what)
            if isinstance(error, ConnectError) or session.broken:
                self.invalidate()
            raise error from err

    # -- listings --------------------------------------------------------------------------

    def _retr_lines(self, session: FtpSession, cmd: str) -> list[str]:
        sock, _ = session.transfer(cmd)
        chunks: list[bytes] = []
        total = 0
        try:
            while chunk := sock.recv(1 << 16):
                chunks.append(chunk)
                total += len(chunk)
                if total > MAX_LISTING_BYTES:
                    raise ProtocolError(f"{cmd}: listing larger than {MAX_LISTING_BYTES} bytes")
        except BaseException:
            sock.close()
            raise
        session.finish_data(sock, upload=False)
        text = b"".join(chunks).decode(self.conn.encoding, "surrogateescape")
        return [line.rstrip("\r") for line in text.split("\n") if line.strip()]

    def list(self, path: str) -> list[Entry]:
        check_remote_path(path)
        key = (self.conn.host, self.conn.port)
        with self._op(f"list {path or '.'}") as session:
            if self.conn.use_mlsd and key not in _MLSD_REFUSED:
                try:
                    return parse_mlsd(self._retr_lines(session, f"MLSD {path}".rstrip()))
                except ProtocolError as err:
                    if err.reply_code not in (500, 501, 502, 504):
                        raise
                    _MLSD_REFUSED.add(key)  # RFC 3659 is optional; fall back for good
                    self.wire.note("MLSD not supported; using LIST with this server")
            entries = parse_list(self._retr_lines(session, f"LIST {path}".rstrip()))
            if not entries and path and not self._is_dir(session, path):
                raise NotFoundError(f"list {path}: no such directory on {self.describe()}")
            return entries

    def _is_dir(self, session: FtpSession, path: str) -> bool:
        home = ftplib.parse257(session.command("PWD"))
        try:
            session.command(f"CWD {path}")
        except (NotFoundError, RemoteError):
            return False
        session.command(f"CWD {home}")
        return True

    def stat(self, path: str) -> Entry:
        check_remote_path(path)
        name = posixpath.basename(path.rstrip("/")) or path
        with self._op(f"stat {path}") as session:
            if path in ("", "/", "."):
                return Entry(name=path or ".", type=EntryType.DIR)
            if self.conn.use_mlsd and "MLST" in session.features:
                reply = session.command(f"MLST {path}")
                for line in reply.splitlines()[1:]:
                    if line.startswith(" "):
                        entry = parse_mlsd_line(line[1:])
                        if entry is not None:
                            return dataclasses.replace(entry, name=name)
                raise ProtocolError(f"stat {path}: MLST reply without facts", reply_text=reply)
            try:
                session.set_type("I")  # SIZE counts bytes in TYPE I; some refuse it in A
                size = int(session.command(f"SIZE {path}").split()[1])
            except (NotFoundError, RemoteError, ValueError, IndexError):
                if self._is_dir(session, path):
                    return Entry(name=name, type=EntryType.DIR)
                raise NotFoundError(f"stat {path}: no such file or directory") from None
            mtime = self._mdtm(session, path)
            return Entry(
                name=name,
                type=EntryType.FILE,
                size=size,
                mtime=mtime,
                mtime_precision=1 if mtime else None,
            )

    def size(self, path: str) -> int | None:
        """``SIZE`` alone (RFC 3659 section 4): one round trip where ``stat`` may need three."""
        check_remote_path(path)
        with self._op(f"SIZE {path}") as session:
            if "SIZE" not in session.features:
                return None
            session.set_type("I")  # SIZE counts bytes in TYPE I; some servers refuse it in A
            reply = session.command(f"SIZE {path}")
        try:
            return int(reply.split()[1])
        except (IndexError, ValueError):
            raise ProtocolError(
                f"SIZE {path}: malformed reply {reply!r}", reply_text=reply
            ) from None

    def _mdtm(self, session: FtpSession, path: str) -> datetime | None:
        if "MDTM" not in session.features:
            return None
        try:
            stamp = session.command(f"MDTM {path}").split()[1][:14]
            return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except (FerrymanError, ValueError, IndexError):
            return None

    # -- data ------------------------------------------------------------------------------

    def open_read(self, path: str, offset: int = 0) -> FtpReadStream:
        check_remote_path(path)
        what = f"RETR {path}"
        with self._op(what) as session:
            session.set_type("I")
            sock, size = session.transfer(what, rest=offset or None)
        self.busy = True
        return FtpReadStream(self, sock, what, size, offset)

    def open_read_ascii(self, path: str) -> AsciiReadStream:
        check_remote_path(path)
        what = f"RETR {path} (ASCII)"
        with self._op(what) as session:
            session.set_type("A")
            sock, _ = session.transfer(f"RETR {path}")
        self.busy = True
        # the 150 reply announces the file's size, not what TYPE A puts on the wire
        return AsciiReadStream(FtpReadStream(self, sock, what, None, 0))

    def open_write_ascii(self, path: str) -> AsciiWriteStream:
        check_remote_path(path)
        what = f"STOR {path} (ASCII)"
        with self._op(what) as session:
            session.set_type("A")
            sock, _ = session.transfer(f"STOR {path}")
        self.busy = True
        return AsciiWriteStream(FtpWriteStream(self, sock, what))

    def open_write(self, path: str, offset: int = 0) -> FtpWriteStream:
        """STOR; at an offset REST + STOR where FEAT says ``REST STREAM`` (RFC 3659 section 5),
        otherwise APPE (RFC 959) onto a partial file checked to be ``offset`` bytes long."""
        check_remote_path(path)
        what = f"STOR {path}"
        with self._op(what) as session:
            session.set_type("I")
            if offset and "STREAM" not in session.features.get("REST", "").upper():
                what = f"APPE {path}"
                self._check_append_point(session, path, offset)
                sock, _ = session.transfer(what)
            else:
                sock, _ = session.transfer(what, rest=offset or None)
        self.busy = True
        return FtpWriteStream(self, sock, what)

    def _check_append_point(self, session: FtpSession, path: str, offset: int) -> None:
        """APPE writes at the server's end of the file, wherever that is: make sure it is at
        ``offset`` (when the server has SIZE), or the tail would land in the wrong place."""
        if "SIZE" not in session.features:
            return  # nothing to check with; the caller verifies the final size
        reply = session.command(f"SIZE {path}")
        try:
            size = int(reply.split()[1])
        except (IndexError, ValueError):
            raise ProtocolError(
                f"SIZE {path}: malformed reply {reply!r}", reply_text=reply
            ) from None
        if size != offset:
            raise TransferError(
                f"APPE {path}: the partial file on {self.describe()} has {size} bytes, not "
                f"{offset}; appending would corrupt it",
                hint="start this upload over from byte 0",
                retriable=False,
            )

    # -- namespace -------------------------------------------------------------------------

    def _simple(self, *commands: str) -> None:
        for cmd in commands:
            check_remote_path(cmd)
        with self._op(commands[-1]) as session:
            for cmd in commands:
                session.command(cmd)

    def mkdir(self, path: str) -> None:
        self._simple(f"MKD {path}")

    def rmdir(self, path: str) -> None:
        self._simple(f"RMD {path}")

    def remove(self, path: str) -> None:
        self._simple(f"DELE {path}")

    def rename(self, source: str, target: str) -> None:
        self._simple(f"RNFR {source}", f"RNTO {target}")

    def hash(self, path: str, algorithm: str) -> str:
        """Lower-case hex digest of ``path`` computed by the server (HASH, XSHA256, ...)."""
        check_remote_path(path)
        wanted = normalize_algorithm(algorithm)
        with self._op(f"hash {path}") as session:
            support = hash_support(session.features)
            if wanted not in support.algorithms:
                offered = ", ".join(support.algorithms) or "none"
                raise NotSupportedError(
                    f"{self.describe()} cannot compute {algorithm} hashes (offers: {offered})"
                )
            return server_hash(session, support, path, wanted)

    def set_mtime(self, path: str, mtime: datetime) -> None:
        if not self.capabilities.set_mtime:
            raise NotSupportedError(f"{self.describe()} offers no MFMT to set times")
        stamp = mtime.astimezone(UTC).strftime("%Y%m%d%H%M%S")
        self._simple(f"MFMT {stamp} {path}")
