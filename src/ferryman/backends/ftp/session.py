"""One FTP/FTPS control connection: stdlib ftplib, subclassed where it falls short.

What this adds to ``ftplib.FTP_TLS`` (each with its reason):

- implicit TLS (handshake before the banner, port 990), which ftplib lacks;
- fail-closed explicit TLS: a refused ``AUTH TLS`` or failed handshake ends the session; USER
  and PASS are sent only after the handshake; ``PBSZ 0`` + ``PROT P`` always (curl
  CVE-2021-22946); bytes buffered before the handshake are discarded (CVE-2021-22947);
- every data connection resumes the control connection's TLS session (vsftpd
  ``require_ssl_reuse``, ProFTPD, FileZilla Server; CPython issue 63699 is still open);
- EPSV first, PASV fallback remembered for the server (:class:`~.quirks.ServerQuirks`), and
  the PASV address is never trusted over the control connection's peer
  (CVE-2021-4189, curl CVE-2020-8284);
- active mode bound to the control connection's local address, with a port range, accepting
  the data connection only from the server's address;
- a transcript with ``PASS ****``; reply lines and multi-line replies bounded in size, and
  each whole reply in time (the greeting, every command's reply, the final transfer reply:
  a server that trickles bytes without a line end is timed out, issue 13); names that do
  not decode kept as surrogate escapes rather than crashing.
"""

from __future__ import annotations

import ftplib
import functools
import re
import socket
import ssl
import time
from typing import Any

from ...connection import FtpConnection, TLSMode
from ...errors import (
    CertificateError,
    ConfigError,
    ConnectError,
    ProtocolError,
    ResumeRefusedError,
    TLSError,
)
from ...errors import TimeoutError as FerrymanTimeout
from ...wirelog import WireLog
from .dataconn import DataConnections
from .keyshare import handshake_noting_retry
from .pipelining import Batches, host_facts
from .prepared import PreparedTransfers
from .quirks import ServerQuirks, means_unsupported
from .replies import ReplyReader, parse_epsv, parse_feat, parse_pasv, parse_pwd
from .streams import end_data_stream
from .tls import build_context, check_pin, clear_text_under, describe_tls
from .translate import reply_code, translate_reply

__all__ = ["FtpSession", "parse_epsv", "parse_feat", "parse_pasv", "parse_pwd"]

MAX_REPLY_LINES = 2000  # a hostile server must not make a multi-line reply endless
_ENCRYPTION_WORDS = re.compile(r"encrypt|tls|ssl|secure", re.I)


@functools.cache
def _plain_placeholder() -> ssl.SSLContext:
    """The context ftplib.FTP_TLS insists on, for plain FTP, which never uses it: one for the
    process, with no CA loaded (nothing could verify against it, should it ever be used)."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class FtpSession(Batches, PreparedTransfers, DataConnections, ftplib.FTP_TLS):
    """A logged-in FTP or FTPS control connection; see the module docstring."""

    def __init__(
        self,
        conn: FtpConnection,
        wire: WireLog,
        context: ssl.SSLContext | None = None,
        quirks: ServerQuirks | None = None,
    ) -> None:
        """``context``: the TLS context to use (shared by a backend's sessions: building one
        loads the CA certificates, ~17 ms of CPU); built here when not given. ``quirks``: what
        is known about the server (shared by a backend's sessions and siblings)."""
        if conn.tls is TLSMode.NONE:
            context = _plain_placeholder()
        elif context is None:
            context = build_context(conn)
        super().__init__(context=context, timeout=conn.timeout, encoding=conn.encoding)
        self.conn = conn
        self.wire = wire
        self.features: dict[str, str] = {}
        #: "advertised but refused" facts about this server, shared with sibling sessions
        self.quirks = quirks if quirks is not None else ServerQuirks()
        #: what this process learned about pipelining on this server (see pipelining.py)
        self.facts = host_facts(conn.host, conn.port)
        #: the directory the session is in (it never changes it for long); None: not asked
        self.home: str | None = None
        self.certificate_fingerprint: str | None = None
        self.data_sessions_resumed: list[bool] = []
        #: the key-exchange group the server asked for in this session's handshake (keyshare.py)
        self.hello_retry: str | None = None
        self._reuse_session: ssl.SSLSession | None = None
        self._offered_session: ssl.SSLSession | None = None
        #: the algorithm chosen with ``OPTS HASH`` on this session (see hashes.py)
        self.hash_selected: str | None = None
        #: the control connection is out of step with the server (a reply was left unread);
        #: the backend drops such a session instead of reusing it
        self.broken = False
        #: reading the control connection failed at TLS (the server wrote in clear text?)
        self.control_tls_failed = False
        self._tls = conn.tls is not TLSMode.NONE
        self._type: str | None = None
        self._reader: ReplyReader | None = None
        #: what the next reply answers, for a time-out's message
        self._awaiting = "the greeting"
        #: when the reply being read must be complete (None: no reply is being read)
        self._deadline: float | None = None
        self._transfer_command = ""
        #: the quickest command/reply exchange seen (seconds): the round trip (issue 19)
        self.round_trip: float | None = None

    # -- wire primitives -------------------------------------------------------------------

    @property
    def control(self) -> socket.socket:
        """The control socket (ftplib types it optional; here it exists once opened)."""
        if self.sock is None:
            raise ConnectError("the FTP session is not connected")
        return self.sock

    def putline(self, line: str) -> None:
        if any(c in line for c in "\r\n\0"):
            raise ConfigError(
                "refusing to send a command containing CR, LF or NUL",
                hint="a path or name contains a line break; fix its source",
            )
        self.forget_prepared()
        self.wire.sent(line)
        self._awaiting = "the reply to " + ("PASS ****" if line[:5].upper() == "PASS " else line)
        self.control.sendall((line + "\r\n").encode(self.encoding, "surrogateescape"))

    def getline(self) -> str:
        if self._reader is None:
            raise ConnectError("the FTP session is not connected")
        budget = self.control.gettimeout() or self.conn.timeout
        deadline = self._deadline if self._deadline is not None else time.monotonic() + budget
        what = f"waiting for {self._awaiting}: {self.conn.describe()} did not answer in time"
        try:
            line = self._reader.readline(deadline, budget, what)
        except (ProtocolError, FerrymanTimeout):
            self.broken = True  # the rest of the reply may still come: out of step
            raise
        except ssl.SSLError:
            self.broken = self.control_tls_failed = True  # see clear_text
            raise
        if line is None:
            raise EOFError("connection closed by the server")
        self.wire.received(line)
        return line

    @property
    def tls_established(self) -> bool:
        """Whether the control connection completed its TLS handshake."""
        return isinstance(self.sock, ssl.SSLSocket)

    def clear_text(self) -> str:
        """Words a server wrote in clear text on the TLS control connection (see
        :func:`~.tls.clear_text_under`); "" unless reading that connection failed at TLS (a
        live TLS session is never read beneath its TLS layer)."""
        sock = self.sock
        if not (self.control_tls_failed and isinstance(sock, ssl.SSLSocket)):
            return ""
        return clear_text_under(sock)

    def getmultiline(self) -> str:
        """One reply, single- or multi-line, complete within the socket's time-out as a whole
        (the greeting: the connect time-out; commands: the time-out; QUIT: at most 5 s)."""
        budget = self.control.gettimeout() or self.conn.timeout
        self._deadline = time.monotonic() + budget
        try:
            return self._multiline()
        finally:
            self._deadline = None

    def _multiline(self) -> str:
        line = self.getline()
        if line[3:4] == "-":
            code, lines = line[:3], [line]
            while True:
                if len(lines) >= MAX_REPLY_LINES:
                    self.broken = True
                    raise ProtocolError(f"multi-line reply longer than {MAX_REPLY_LINES} lines")
                nextline = self.getline()
                lines.append(nextline)
                if nextline[:3] == code and nextline[3:4] != "-":
                    break
            line = "\n".join(lines)
        return line

    def _makefile(self) -> None:
        self._reader = ReplyReader(self.control, self.encoding, self.maxline)

    def sendcmd(self, cmd: str) -> str:
        """ftplib's exchange of one command and its reply, timed: the quickest one is the
        round trip (``Backend.round_trip``, from which the engine sizes the files in flight)."""
        started = time.monotonic()
        reply = super().sendcmd(cmd)
        elapsed = time.monotonic() - started
        if self.round_trip is None or elapsed < self.round_trip:
            self.round_trip = elapsed
        return reply

    def command(self, line: str) -> str:
        """Send a command and return its reply, raising the project's error for 4xx/5xx."""
        try:
            return self.sendcmd(line)
        except (ftplib.error_temp, ftplib.error_perm) as err:
            shown = "PASS ****" if line[:5].upper() == "PASS " else line
            raise translate_reply(str(err), shown) from None

    # -- connecting ------------------------------------------------------------------------

    def open(self) -> str:
        """Connect, secure, log in and learn the server's features; return the banner."""
        conn = self.conn
        self.host, self.port = conn.host, conn.port  # ftplib's own attributes
        timeout = conn.effective_connect_timeout
        sock = socket.create_connection((conn.host, conn.port), timeout=timeout)
        self.sock, self.af = sock, sock.family
        local, peer = sock.getsockname(), sock.getpeername()
        self.wire.note("connected %s:%s -> %s:%s", local[0], local[1], peer[0], peer[1])
        if conn.tls is TLSMode.IMPLICIT:
            self.sock = self._handshake(sock)
        self._makefile()
        self.welcome = self.getresp()
        if conn.tls is TLSMode.EXPLICIT:
            self._auth_tls()
        self.control.settimeout(conn.timeout)
        return self.welcome

    def _handshake(self, sock: socket.socket) -> ssl.SSLSocket:
        if not self.conn.verify and self.conn.fingerprint is None:
            self.wire.warning(
                "certificate verification is OFF (insecure): anyone can intercept this session"
            )
        tls = self.context.wrap_socket(
            sock, server_hostname=self.conn.host, do_handshake_on_connect=False
        )
        try:
            group = handshake_noting_retry(tls, sock.gettimeout() or self.conn.timeout)
        except BaseException:
            tls.close()
            raise
        self.hello_retry = group
        if group is not None and group != self.facts.tls_group:
            self.wire.note(
                "the server asked for TLS key exchange over %s; offered first from now on", group
            )
            self.facts.tls_group = group
        try:
            self.certificate_fingerprint = check_pin(tls, self.conn.fingerprint)
        except CertificateError:
            tls.close()
            raise
        if self.wire.enabled:
            self.wire.note("TLS %s", describe_tls(tls).summary())
        return tls

    def _auth_tls(self) -> None:
        try:
            reply = self.sendcmd("AUTH TLS")
        except (ftplib.error_perm, ftplib.error_temp) as err:
            raise TLSError(
                f"the server refused AUTH TLS ({str(err).strip()!r}): it offers no explicit FTPS",
                hint="ferryman never falls back to plain text; use ftps:// if it offers "
                "implicit TLS (port 990), or ftp:// if you accept an unencrypted session",
                reply_code=reply_code(str(err)),
                reply_text=str(err),
            ) from None
        if not reply.startswith("234"):
            raise TLSError(f"unexpected reply to AUTH TLS: {reply!r}", reply_text=reply)
        # Anything the server sent before the handshake is dropped with the old reader
        # (curl CVE-2021-22947); stray bytes still in flight make the handshake fail (closed).
        self.sock = self._handshake(self.control)
        self._makefile()

    def login_with(self, user: str, password: str) -> None:
        """USER/PASS, then the protection level, FEAT and binary type (pipelined where the
        server allows it, see pipelining.py), then UTF-8."""
        try:
            self._login(user, password)
        except (ftplib.error_perm, ftplib.error_temp) as err:
            text = str(err)
            # 530 from most servers, 550 from pyftpdlib: "SSL/TLS required on the control channel"
            if text[:1] == "5" and not self._tls and _ENCRYPTION_WORDS.search(text):
                raise TLSError(
                    f"login as {user} refused: {text!r}",
                    hint="the server requires TLS: use ftpes:// (explicit) or ftps:// (implicit)",
                    reply_code=530,
                    reply_text=text,
                ) from None
            raise translate_reply(text, f"login as {user} on {self.conn.describe(user)}") from None
        lines = ["PBSZ 0", "PROT P"] if self._tls else []
        replies = self.probe([*lines, "FEAT", "TYPE I"])
        if self._tls:
            self._protect(*replies[:2])
        feat, kind = replies[-2:]
        self.features = parse_feat(feat) if feat.startswith("211") else {}
        if kind[:1] != "2":
            raise translate_reply(kind, "TYPE I")
        self._type = "I"
        if "UTF8" in self.features and self.encoding.lower().replace("-", "") == "utf8":
            try:
                self.sendcmd("OPTS UTF8 ON")
            except ftplib.Error as err:
                # RFC 2640: UTF8 in FEAT means names are UTF-8 already; OPTS only confirms it
                self.quirks.refuse("OPTS UTF8", str(err), self.wire, then="names sent as UTF-8")

    def _login(self, user: str, password: str) -> None:
        """USER and PASS, one at a time: PASS may take long (PAM, LDAP), which a probe's
        short wait would take for a dropped command."""
        reply = self.sendcmd(f"USER {user}")
        if reply.startswith("3"):
            reply = self.sendcmd(f"PASS {password}")
        if reply.startswith("3"):
            raise translate_reply("530 server asks for an account (ACCT): unsupported", "login")

    def _protect(self, pbsz: str, prot: str) -> None:
        """Check the replies to ``PBSZ 0`` and ``PROT P``. A server that does not know PBSZ
        (500/502) may still accept PROT P, which is what protects the data (RFC 4217 section
        9 makes PBSZ a formality for TLS); a refused PROT P ends the session."""
        if pbsz[:1] != "2":
            if not (pbsz[:1] == "5" and means_unsupported(reply_code(pbsz), pbsz)):
                raise self._unprotected(pbsz)
            self.quirks.refuse("PBSZ", pbsz, self.wire, then="PROT P sent without it")
        if prot[:1] != "2":
            raise self._unprotected(prot)
        self._prot_p = True

    @staticmethod
    def _unprotected(reply: str) -> TLSError:
        return TLSError(
            f"the server refused to protect data connections ({reply.strip()!r})",
            hint="ferryman never transfers data in clear over FTPS",
        )

    def set_type(self, kind: str) -> None:
        if self._type != kind:
            self.command(f"TYPE {kind}")
            self._type = kind

    def quit_quietly(self) -> None:
        """QUIT within a short time-out, then close; never raises."""
        try:
            if self.sock is not None:
                self.sock.settimeout(min(5.0, self.conn.timeout))
                self.putline("QUIT")
                self.getresp()
        except (OSError, EOFError, ftplib.Error, ConfigError, ProtocolError):
            pass
        finally:
            self.close()

    # -- data connections ------------------------------------------------------------------

    def transfer(self, cmd: str, rest: int | None = None) -> tuple[socket.socket, int | None]:
        """Open a data connection for ``cmd``; returns the socket and the size the 150 gave."""
        piped: tuple[socket.socket, str | None] | None = None
        data: socket.socket
        port = self.take_prepared() if self.conn.passive and not rest else None
        if port is not None:  # asked for behind the last transfer (prepared.py)
            piped = self._passive_prepared(cmd, port, await_reply=not self._tls)
        elif self._may_pipeline_transfer(rest):
            piped = self._passive_pipelined(cmd, await_reply=not self._tls)
        secured = False
        if piped is not None:
            raw, answer = piped
            if answer is None:  # TLS: the handshake goes while the 150 is on its way
                data, reply = self.secure_awaiting(raw, cmd)
                secured = True
            else:
                data, reply = raw, answer
        elif self.conn.passive:
            data = self._connect_passive()
            try:
                reply = self.start_transfer(cmd, rest)
            except BaseException:
                data.close()
                raise
        else:
            with self._listen_active() as listener:
                reply = self.start_transfer(cmd, rest)
                try:
                    data = self._accept_active(listener)
                except BaseException:
                    self.broken = True  # the server's reply to cmd is still unread
                    raise
        size = ftplib.parse150(reply) if reply.startswith("150") else None
        data.settimeout(self.conn.effective_data_timeout)
        if self._tls and not secured:
            try:
                data = self.wrap_data(data)
            except BaseException:
                self.broken = True  # the transfer started: its final reply is still owed
                raise
        return data, size

    def finish_data(self, sock: socket.socket, *, upload: bool) -> str:
        """End a data connection whose transfer is complete; return the server's final 2xx reply.

        The order is what makes many small files fast (see :func:`end_data_stream`): our TLS
        close_notify, then our TCP FIN, both *before* waiting for the reply, after a download
        as after an upload. The socket is closed only after the reply: an early close with
        unread bytes sends an RST that can discard the end of an upload still queued in the
        kernel. The reply is awaited within the control connection's time-out, so a server
        that never sends it fails boundedly.
        """
        del upload  # kept for callers: downloads now end exactly as uploads do
        try:
            end_data_stream(sock)
            owed = self.owed_behind()  # the next EPSV, or the probe's NOOP (prepared.py)
            if owed is not None:
                return self.final_and_owed(owed)
            self._awaiting = f"the final reply to {self._transfer_command}"
            return self.voidresp()
        finally:
            sock.close()

    def start_transfer(self, cmd: str, rest: int | None) -> str:
        if rest:
            self._rest(rest)
        self._transfer_command = cmd
        reply = self.command(cmd)
        if reply.startswith("2"):  # some servers send 2xx before 150 (ftplib's note)
            reply = self.getresp()
        if not reply.startswith("1"):
            raise translate_reply(reply, cmd)
        return reply

    def _rest(self, offset: int) -> None:
        """``REST offset``; a server that does not support it (RFC 3659 section 5 is optional)
        gets a :class:`ResumeRefusedError`, and the transfer starts over from byte 0."""
        try:
            self.command(f"REST {offset}")
        except ProtocolError as err:
            if not means_unsupported(err.reply_code, err.reply_text):
                raise
            self.quirks.refuse("REST", err.reply_text or "", self.wire, then="no resuming")
            raise ResumeRefusedError(
                err.message,
                hint="this server cannot resume transfers; the copy starts over from byte 0",
                reply_code=err.reply_code,
                reply_text=err.reply_text,
            ) from None

    def wrap_data(self, sock: socket.socket, *, handshake: bool = True) -> ssl.SSLSocket:
        """TLS on a data connection, resuming the control connection's session; with
        ``handshake=False`` the caller does the handshake, then calls :meth:`secured`."""
        control: Any = self.sock
        # Reading SSLSocket.session copies the session each time (~0.17 ms): keep the one that
        # last resumed, and read it afresh only when a data connection did not resume.
        session = self._reuse_session or control.session
        try:
            data = self.context.wrap_socket(
                sock,
                server_hostname=self.conn.host,
                session=session,
                do_handshake_on_connect=handshake,
            )
        except BaseException:
            self._reuse_session = None
            sock.close()
            raise
        self._offered_session = session
        if handshake:
            self.secured(data)
        return data

    def secured(self, data: ssl.SSLSocket) -> None:
        """Bookkeeping after a data connection's handshake: was the session resumed (the
        transcript, the next connection), and the pinned certificate where it was not."""
        resumed = bool(data.session_reused)
        self._reuse_session = self._offered_session if resumed else None
        self.data_sessions_resumed.append(resumed)
        self.wire.note("data TLS %s, session %s", data.version(), "resumed" if resumed else "NEW")
        if self.conn.fingerprint is not None and not resumed:
            try:
                check_pin(data, self.conn.fingerprint)
            except CertificateError:
                data.close()
                raise
