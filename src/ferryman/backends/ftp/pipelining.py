"""Command pipelining on an FTP control connection: several commands in one send, where the
protocol allows it and the server is known to tolerate it (issue 19).

At 50 ms round-trip time every command answered before the next one is sent costs 50 ms per
file. RFC 959 (section 4.2 and the state diagrams of section 6) has the server read commands
from the control connection as a stream and answer each in turn, so a client may write the
next command before the previous reply arrived, as long as it never needs that reply to choose
the command. ferryman does so only in these places (each reply is still read and checked,
in order, within the time-out):

- after login: ``PBSZ 0`` + ``PROT P`` + ``FEAT`` + ``TYPE I`` in one send (``FEAT`` + ``TYPE I``
  on plain FTP);
- a transfer: ``EPSV`` + ``RETR``/``STOR``/``LIST`` in one send: read the 229, connect the data
  connection, then read the 150 (only once an EPSV data port of this server was reached
  without pipelining, and never with ``REST``, whose refusal must be known before the
  transfer starts);
- after an upload: ``SIZE partial`` sent behind the end of the data connection, so its reply
  comes with the 226 instead of one round trip later (used only when the server answered
  it after the 226; a server that answers it during the transfer has it asked again);
- ``RNFR`` + ``RNTO`` in one send, which ``copy_file`` calls only after the copy verified;
- ``CWD dir`` + ``CWD home`` (is it a directory?), ``SIZE`` + ``MDTM`` (stat).

Some servers do not tolerate it: they flush their input buffer after each command, or answer
out of order (the issue's "detected and remembered"). The login batch of every session is
the probe: if a reply of it does not follow the first one promptly (the batch was one TCP
segment: a sequential server answers its commands back to back), the server dropped input;
that session is closed, a new one is opened one command at a time, and the server is
remembered as not pipelining for the rest of the process (no later session tries). Only a
session whose own probe passed pipelines anything else. The facts are kept per
``host:port`` in this process (:func:`host_facts`), so every backend to that server
(siblings, source and destination, later runs in one process) uses what was learned. The
environment variable ``FERRYMAN_FTP_PIPELINING=off`` turns pipelining off altogether.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from ...errors import ConfigError, ProtocolError
from ...errors import TimeoutError as FerrymanTimeout
from .quirks import ServerQuirks
from .replies import parse_size
from .streams import end_data_stream
from .translate import translate_reply

if TYPE_CHECKING:
    from ...connection import FtpConnection
    from ...wirelog import WireLog
    from .replies import ReplyReader

__all__ = [
    "Batches",
    "HostFacts",
    "PipeliningRefusedError",
    "forget_hosts",
    "host_facts",
    "pipelining_allowed",
]


@dataclass(slots=True)
class HostFacts:
    """What one FTP server (``host:port``) showed about pipelining."""

    #: None: not probed yet; True: answers pipelined commands in order; False: does not
    pipelining: bool | None = None
    #: an EPSV data port of this server was reached (so a refusal or an unreachable port is
    #: not discovered with a transfer command already sent behind the EPSV)
    epsv_reached: bool = False
    #: None: not seen; True: a SIZE sent behind the end of an upload was answered after the
    #: 226; False: it was answered during the transfer (pyftpdlib, ProFTPD's 450), so it is
    #: asked after the 226 instead
    size_after_226: bool | None = None
    #: the TLS 1.3 key-exchange group the server asked for in a HelloRetryRequest (see
    #: keyshare.py); sessions opened later offer only that one
    tls_group: str | None = None
    #: None: not seen; True: commands sent during a transfer are read only after it ended
    #: (vsftpd), so the next EPSV may go behind a transfer; False: they are answered during
    #: it (pyftpdlib, ProFTPD). See prepared.py
    commands_after_transfer: bool | None = None


_LOCK = threading.Lock()
_HOSTS: dict[str, HostFacts] = {}


def host_facts(host: str, port: int) -> HostFacts:
    """The facts of ``host:port``, shared by every session of this process."""
    key = f"{host.lower()}:{port}"
    with _LOCK:
        facts = _HOSTS.get(key)
        if facts is None:
            facts = _HOSTS[key] = HostFacts()
        return facts


def forget_hosts() -> None:
    """Forget every server's facts (tests; a server replaced on the same port)."""
    with _LOCK:
        _HOSTS.clear()


def pipelining_allowed() -> bool:
    """False when the user switched pipelining off (``FERRYMAN_FTP_PIPELINING=off``)."""
    value = os.environ.get("FERRYMAN_FTP_PIPELINING", "").strip().lower()
    return value not in ("off", "0", "no", "false")


class PipeliningRefusedError(Exception):
    """The server dropped or mangled pipelined commands during the login probe: the session
    is out of step and must be replaced by one that sends a command at a time."""


#: the least time the further replies of a probing batch get after the first one arrived
PROBE_MIN_WAIT = 1.0


def shown(line: str) -> str:
    """``line`` as a message may show it (never a password)."""
    return "PASS ****" if line[:5].upper() == "PASS " else line


class Batches:
    """Sending several commands at once and reading their replies in order; a mixin of
    :class:`~.session.FtpSession`, which provides the control socket and the reply reader."""

    conn: FtpConnection
    wire: WireLog
    facts: HostFacts
    encoding: str
    broken: bool
    _awaiting: str
    _deadline: float | None

    quirks: ServerQuirks
    features: dict[str, str]
    _type: str | None
    _transfer_command: str

    if TYPE_CHECKING:  # provided by FtpSession

        @property
        def control(self) -> socket.socket: ...
        def _multiline(self) -> str: ...
        def command(self, line: str) -> str: ...
        def finish_data(self, sock: socket.socket, *, upload: bool) -> str: ...
        def wrap_data(self, sock: socket.socket, *, handshake: bool = True) -> ssl.SSLSocket: ...
        def secured(self, data: ssl.SSLSocket) -> None: ...
        def transfer_reply(self, cmd: str) -> str: ...
        def forget_prepared(self) -> None: ...

        _reader: ReplyReader | None

    #: this session's login batch was answered in order (see :meth:`probe`)
    _pipelined = False

    @property
    def pipelining(self) -> bool:
        """Whether this session may send commands without waiting for each reply."""
        return self._pipelined and pipelining_allowed()

    def send_batch(self, lines: Sequence[str]) -> None:
        """Write ``lines`` in one send (one TCP segment when small)."""
        for line in lines:
            if any(c in line for c in "\r\n\0"):
                raise ConfigError(
                    "refusing to send a command containing CR, LF or NUL",
                    hint="a path or name contains a line break; fix its source",
                )
        self.forget_prepared()
        for line in lines:
            self.wire.sent(line)
        self._awaiting = "the reply to " + shown(lines[0])
        data = "".join(line + "\r\n" for line in lines)
        self.control.sendall(data.encode(self.encoding, "surrogateescape"))

    def read_reply(self, what: str, within: float | None = None) -> str:
        """The next reply, whatever its code, complete within ``within`` seconds (default: the
        control connection's time-out); ``what`` names it in a time-out's message."""
        self._awaiting = what
        budget = within if within is not None else self.control.gettimeout() or self.conn.timeout
        self._deadline = time.monotonic() + budget
        try:
            return self._multiline()
        finally:
            self._deadline = None

    def batch(self, lines: Sequence[str]) -> list[str]:
        """Every reply to ``lines``, in order, whatever their codes: sent in one go when the
        server pipelines, otherwise one command at a time (then all are still sent: use this
        only for commands that are harmless whatever the earlier replies were)."""
        if len(lines) > 1 and self.pipelining:
            self.send_batch(lines)
            return [self.read_reply("the reply to " + shown(line)) for line in lines]
        return self._one_by_one(lines)

    def commands(self, lines: Sequence[str]) -> list[str]:
        """Send ``lines`` and return their replies; a 4xx/5xx reply is raised as the project's
        error. Pipelined on a server that allows it (every reply is read before the first
        failure is raised, so the session stays in step); otherwise one at a time, stopping
        at the first failure (``RNTO`` is never sent after a refused ``RNFR``)."""
        if len(lines) < 2 or not self.pipelining:
            return [self.command(line) for line in lines]
        replies = self.batch(lines)
        for line, reply in zip(lines, replies, strict=True):
            if reply[:1] not in ("1", "2", "3"):
                raise translate_reply(reply, shown(line))
        return replies

    def probe(self, lines: Sequence[str]) -> list[str]:
        """Every reply to ``lines`` (the login batch), pipelined unless the server is known not
        to pipeline. Every session probes so: the replies after the first must follow it
        promptly (see the module docstring), or the server is remembered as not pipelining
        and :class:`PipeliningRefusedError` says to open a new session. Only a session whose
        probe passed pipelines anything else (a server behind a load balancer may differ from
        the one before it)."""
        if self.facts.pipelining is False or not pipelining_allowed() or len(lines) < 2:
            return self._one_by_one(lines)
        started = time.monotonic()
        self.send_batch(lines)
        replies: list[str] = []
        wait: float | None = None
        for line in lines:
            try:
                replies.append(self.read_reply("the reply to " + shown(line), wait))
            except (FerrymanTimeout, EOFError, OSError) as err:
                if wait is None:  # no answer to the first command: a time-out like any other
                    raise
                self._refused_pipelining(lines[0], err)
            if wait is None:
                # one segment in: a sequential server answers the rest right after the first
                wait = min(self.conn.timeout, max(PROBE_MIN_WAIT, 4 * (time.monotonic() - started)))
        self._pipelined = True
        if self.facts.pipelining is None:
            self.wire.note("the server answers pipelined commands in order")
        self.facts.pipelining = True
        return replies

    def _refused_pipelining(self, first: str, err: BaseException) -> NoReturn:
        self.broken = True
        self.facts.pipelining = False
        self.wire.note(
            "the server did not answer pipelined commands (%s after %s); "
            "one command at a time from now on",
            type(err).__name__,
            shown(first),
        )
        raise PipeliningRefusedError(shown(first)) from None

    def finish_upload(self, sock: socket.socket, path: str) -> tuple[str, int | None]:
        """End an upload's data connection and return the final reply and the size of
        ``path`` on the server, or None when not asked (then the caller asks).

        On a server that pipelines, ``SIZE path`` is sent right behind the end of the data
        stream, so its answer arrives with the 226 (no round trip of its own). It counts
        only when it came after the 226: a server that answers commands during a transfer
        (pyftpdlib; ProFTPD's "450 data transfer in progress") may have measured a file
        still being written, so that answer is ignored and SIZE is asked afresh, and this
        server is not asked so again.
        """
        if not self._size_behind_226():
            return self.finish_data(sock, upload=True), None
        try:
            end_data_stream(sock)
            self.send_batch([f"SIZE {path}"])
            first = self.read_reply(f"the final reply to {self._transfer_command}")
            try:
                second = self.read_reply(f"the reply to SIZE {path}")
            except (EOFError, OSError, FerrymanTimeout):
                if first[:1] in ("4", "5"):  # the transfer failed, and the session with it
                    raise translate_reply(first, self._transfer_command) from None
                raise
        finally:
            sock.close()
        if _final(first):
            self.facts.size_after_226 = True  # by chance on some servers: proves nothing more
            return first, _size_of(path, second)
        if _final(second):
            if self.facts.size_after_226 is not False:
                self.wire.note("SIZE answered during the transfer; asked after the 226 from now on")
            self.facts.size_after_226 = False
            if first.startswith("213"):  # carried out during the transfer (see prepared.py)
                self.facts.commands_after_transfer = False
            return second, None
        raise translate_reply(second if first.startswith("213") else first, self._transfer_command)

    def _size_behind_226(self) -> bool:
        return (
            self.pipelining
            and self.facts.size_after_226 is not False
            and "SIZE" in self.quirks.effective(self.features)
            and self._type == "I"
        )

    def secure_awaiting(self, raw: socket.socket, cmd: str) -> tuple[ssl.SSLSocket, str]:
        """The TLS handshake of ``cmd``'s data connection while its 1xx is on its way; returns
        the secured socket and the 1xx.

        The server sends the 1xx once it accepted the data connection, half a round trip
        after the connect returned here, and the 1xx arrives another half later: waiting for
        it before the handshake cost a round trip per file. Both are awaited together (the
        control connection and the handshake under one ``select``), so a refusal (``550``
        to RETR, after which nobody answers the data connection) ends the handshake at once
        and is raised as itself; a handshake that fails is explained by the reply when there
        is one.
        """
        data = self.wrap_data(raw, handshake=False)
        deadline = time.monotonic() + self.conn.timeout
        reply: str | None = None
        try:
            data.setblocking(False)
            while True:
                readers: list[socket.socket] = []
                writers: list[socket.socket] = []
                try:
                    data.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    readers.append(data)
                except ssl.SSLWantWriteError:
                    writers.append(data)
                if reply is None:
                    if self._reader is not None and self._reader.pending():
                        reply = self.transfer_reply(cmd)
                        continue
                    readers.append(self.control)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FerrymanTimeout(
                        f"{cmd}: the data connection's TLS handshake did not finish within "
                        f"{self.conn.timeout:g} s",
                        hint="the server or network is slow or stuck; raise --timeout if "
                        "this is expected",
                    )
                readable, _, _ = select.select(readers, writers, [], remaining)
                if reply is None and self.control in readable:
                    reply = self.transfer_reply(cmd)
        except (ssl.SSLError, OSError) as err:
            data.close()
            if reply is None:  # the reply says why the server would not talk on it
                reply = self.transfer_reply(cmd)
            self.broken = True  # the transfer started: its final reply is still owed
            raise err from None
        except BaseException:
            data.close()
            if reply is not None:
                self.broken = True  # the transfer started: its final reply is still owed
            raise
        data.settimeout(self.conn.effective_data_timeout)
        self.secured(data)
        if reply is None:
            try:  # a server may finish the handshake before refusing (pyftpdlib)
                reply = self.transfer_reply(cmd)
            except BaseException:
                data.close()
                raise
        return data, reply

    def _one_by_one(self, lines: Sequence[str]) -> list[str]:
        replies = []
        for line in lines:
            self.send_batch([line])
            replies.append(self.read_reply("the reply to " + shown(line)))
        return replies


def _final(reply: str) -> bool:
    """Whether ``reply`` ends a transfer well (226, 250): a 2xx that is not SIZE's 213."""
    return reply[:1] == "2" and not reply.startswith("213")


def _size_of(path: str, reply: str) -> int | None:
    """The size a reply to SIZE gives; None for a refusal (the caller asks again, and so
    learns whether the server refuses SIZE) or a malformed reply."""
    if not reply.startswith("213"):
        return None
    try:
        return parse_size(path, reply)
    except ProtocolError:
        return None
