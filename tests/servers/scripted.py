"""A scripted-dialogue FTP server, for server quirks that no real server here reproduces.

The server listens on ``127.0.0.1`` (port 0, so the OS picks a free one), accepts one control
connection (or ``connections=N`` of them, one after the other), sends a banner and then answers
each command line with what the test scripted for its verb::

    rules = {
        "PASV": pasv(advertise="10.1.2.3"),        # foreign address, real listener on loopback
        "FEAT": multiline("211", ["Features:", " MLST type*;size*;", " UTF8"], "End"),
        "MLSD": transfer_out(b"type=file;size=3; a.txt\\r\\n"),
        "SITE": "500 not understood",
        "MDTM": [ "550 not yet", "213 20240102030405" ],   # in order; the last one repeats
    }
    with ScriptedFtpServer(rules) as server:
        ...  # the client under test connects to server.host, server.port
    assert server.commands[:2] == ["USER anonymous", "PASS x"]

The banner may also be a callable ``(server) -> None`` that talks by itself, such as
``lambda server: server.trickle(b"220 ", b"x")`` (a greeting that never ends). A rule is a
reply string (one line, or several separated by ``\\n``/``\\r\\n``; line ends are sent
as CRLF), raw ``bytes`` (sent exactly as given, for broken line ends or encodings), ``CLOSE``
(drop the control connection without a reply), or a callable ``(server, argument) -> reply``
that may also talk by itself through :meth:`ScriptedFtpServer.reply`, open and use data
connections, keep state in ``server.state`` and return ``None`` for no further reply. Rules may
be given as a mapping verb -> rule (or verb -> list of rules, used in order with the last one
repeating) or as a list of ``(verb, rule)`` pairs with the same in-order meaning per verb.
Verbs without a rule get :data:`DEFAULT_RULES` (USER, PASS, TYPE, QUIT, FEAT, PWD, SYST, ...),
and anything else ``502``.

``drop_pipelined=True`` makes it a server that does not tolerate pipelining: what arrived
behind a command line (commands the client sent without waiting for the reply) is discarded
and recorded in ``dropped``.

Everything is bounded by time-outs, the context manager closes every socket and joins the
thread, and an exception raised by a rule (or a time-out waiting for the client) is re-raised
on exit so that a broken script fails the test instead of hanging it. The server never connects
anywhere: it only listens on loopback, whatever address it advertises.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Final, Self, TypeAlias, cast

__all__ = [
    "CLOSE",
    "DEFAULT_RULES",
    "Reply",
    "Rule",
    "ScriptedFtpServer",
    "epsv",
    "epsv_reply",
    "multiline",
    "pasv",
    "pasv_reply",
    "transfer_in",
    "transfer_out",
    "trickle",
]

LOOPBACK: Final = "127.0.0.1"


class _Close:
    """Sentinel: close the control connection without a reply."""

    def __repr__(self) -> str:
        return "CLOSE"


CLOSE: Final = _Close()

Reply: TypeAlias = str | bytes | _Close | None
Rule: TypeAlias = str | bytes | _Close | Callable[["ScriptedFtpServer", str], Reply]
Rules: TypeAlias = Mapping[str, Rule | Sequence[Rule]] | Iterable[tuple[str, Rule]]


# ---------------------------------------------------------------------------------------------
# reply builders


def multiline(code: str | int, lines: Sequence[str], last: str = "End") -> str:
    """A multi-line reply: ``multiline(211, ["Features:", " UTF8"])`` ->
    ``"211-Features:\\r\\n UTF8\\r\\n211 End"``. The first line gets ``code-``, the others are sent
    as given (a leading space is customary), the closing line is ``code last``."""
    code = str(code)
    if not lines:
        return f"{code} {last}"
    return "\r\n".join([f"{code}-{lines[0]}", *lines[1:], f"{code} {last}"])


def pasv_reply(host: str, port: int, text: str = "Entering Passive Mode") -> str:
    """``227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).`` for any advertised IPv4 address."""
    parts = host.split(".")
    if len(parts) != 4:
        raise ValueError(f"PASV can only advertise an IPv4 address, not {host!r}")
    return f"227 {text} ({','.join(parts)},{port >> 8},{port & 0xFF})."


def epsv_reply(port: int, text: str = "Entering Extended Passive Mode") -> str:
    """``229 Entering Extended Passive Mode (|||port|)``."""
    return f"229 {text} (|||{port}|)"


# ---------------------------------------------------------------------------------------------
# rule factories


def pasv(advertise: str | None = None) -> Callable[[ScriptedFtpServer, str], Reply]:
    """A PASV rule: listen for one data connection on loopback and reply 227, advertising
    ``advertise`` (e.g. a foreign ``"10.1.2.3"``) instead of the real ``127.0.0.1``. The
    server only advertises that address; a correct client connects to the control peer."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        host, port = server.open_passive()
        return pasv_reply(advertise or host, port)

    return rule


def epsv() -> Callable[[ScriptedFtpServer, str], Reply]:
    """An EPSV rule: listen for one data connection and reply ``229 ... (|||port|)``."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        _host, port = server.open_passive()
        return epsv_reply(port)

    return rule


def transfer_out(
    data: bytes,
    *,
    start: str = "150 Opening data connection.",
    end: str = "226 Transfer complete.",
) -> Callable[[ScriptedFtpServer, str], Reply]:
    """A RETR/LIST/NLST/MLSD rule: reply ``start``, send ``data`` over the data connection
    that the client opened after PASV/EPSV, close it and reply ``end``."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        server.reply(start)
        server.send_data(data)
        return end

    return rule


def transfer_in(
    *,
    start: str = "150 Ok to send data.",
    end: str = "226 Transfer complete.",
) -> Callable[[ScriptedFtpServer, str], Reply]:
    """A STOR/APPE rule: reply ``start``, read the data connection to its end (appended to
    ``server.uploads`` as ``(argument, data)``) and reply ``end``."""

    def rule(server: ScriptedFtpServer, arg: str) -> Reply:
        server.reply(start)
        server.uploads.append((arg, server.receive_data()))
        return end

    return rule


def trickle(
    head: bytes, drip: bytes = b".", *, interval: float = 0.1, transfer: bytes | None = None
) -> Callable[[ScriptedFtpServer, str], Reply]:
    """A rule for a reply that never completes (see :meth:`ScriptedFtpServer.trickle`): send
    ``head``, then ``drip`` every ``interval`` seconds. With ``transfer`` it is a RETR/LIST
    rule that first replies 150 and sends ``transfer`` over the data connection, so that the
    final reply is the one that trickles."""

    def rule(server: ScriptedFtpServer, _arg: str) -> Reply:
        if transfer is not None:
            server.reply("150 Opening data connection.")
            server.send_data(transfer)
        server.trickle(head, drip, interval=interval)
        return CLOSE

    return rule


def _quit(server: ScriptedFtpServer, _arg: str) -> Reply:
    server.reply("221 Goodbye.")
    return CLOSE


DEFAULT_RULES: Final[Mapping[str, Rule]] = {
    "USER": "331 Please specify the password.",
    "PASS": "230 Login successful.",
    "ACCT": "202 Not needed.",
    "TYPE": "200 Type set.",
    "MODE": "200 Mode set.",
    "STRU": "200 Structure set.",
    "QUIT": _quit,
    "FEAT": multiline("211", ["Features:", " EPSV", " PASV", " UTF8"], "End"),
    "OPTS": "200 Ok.",
    "PWD": '257 "/" is the current directory',
    "CWD": "250 Directory successfully changed.",
    "SYST": "215 UNIX Type: L8",
    "NOOP": "200 NOOP ok.",
    "PBSZ": "200 PBSZ=0",
    "PROT": "200 Protection level set.",
    "PASV": pasv(),
    "EPSV": epsv(),
}


# ---------------------------------------------------------------------------------------------
# the server


class ScriptedFtpServer:
    """See the module docstring. Attributes for assertions: ``commands`` (each received line,
    decoded, without its line end), ``raw_commands`` (the same as bytes), ``uploads``
    (``(argument, data)`` of :func:`transfer_in`), ``connections_accepted``, ``state`` (a dict
    for rules to share). ``host``/``port`` are where to connect."""

    def __init__(
        self,
        rules: Rules | None = None,
        *,
        banner: str
        | bytes
        | Callable[[ScriptedFtpServer], None] = "220 Scripted FTP server ready.",
        connections: int = 1,
        timeout: float = 10.0,
        encoding: str = "utf-8",
        use_defaults: bool = True,
        unknown: Rule = "502 Command not implemented.",
        drop_pipelined: bool = False,
    ) -> None:
        self.banner = banner
        self.max_connections = connections
        self.timeout = timeout
        self.encoding = encoding
        self.unknown = unknown
        #: behave like servers that flush their input after each command: whatever arrived
        #: behind a command line is discarded (kept in ``dropped``), never answered
        self.drop_pipelined = drop_pipelined
        self.dropped: list[bytes] = []
        self._rules: dict[str, deque[Rule]] = {}
        if use_defaults:
            for verb, rule in DEFAULT_RULES.items():
                self._rules[verb] = deque([rule])
        self._add_rules(rules)

        self.commands: list[str] = []
        self.raw_commands: list[bytes] = []
        self.uploads: list[tuple[str, bytes]] = []
        self.state: dict[str, object] = {}
        self.connections_accepted = 0
        self.errors: list[BaseException] = []

        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._control: socket.socket | None = None
        self._data_listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.host = LOOPBACK
        self.port = 0

    # -- rules ---------------------------------------------------------------------------------

    def _add_rules(self, rules: Rules | None) -> None:
        if rules is None:
            return
        custom: dict[str, deque[Rule]] = {}
        if isinstance(rules, Mapping):
            for verb, value in rules.items():
                seq: list[Rule] = (
                    list(value) if isinstance(value, list | tuple) else [cast(Rule, value)]
                )
                if not seq:
                    raise ValueError(f"empty rule list for {verb!r}")
                custom[verb.upper()] = deque(seq)
        else:
            for verb, rule in rules:
                custom.setdefault(verb.upper(), deque()).append(rule)
        self._rules.update(custom)

    def set_rule(self, verb: str, *rules: Rule) -> None:
        """Replace the rule(s) for ``verb`` (also from within a running dialogue)."""
        if not rules:
            raise ValueError("give at least one rule")
        with self._lock:
            self._rules[verb.upper()] = deque(rules)

    def _next_rule(self, verb: str) -> Rule:
        with self._lock:
            queue = self._rules.get(verb)
            if not queue:
                return self.unknown
            return queue.popleft() if len(queue) > 1 else queue[0]

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((LOOPBACK, 0))
            listener.listen(max(1, self.max_connections))
            listener.settimeout(0.1)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(
            target=self._serve, name=f"scripted-ftp-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the dialogue, close every socket and join the thread (bounded)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.timeout + 5)
        self._close_sockets()
        if thread is not None and thread.is_alive():
            raise RuntimeError(f"scripted FTP server thread on port {self.port} did not stop")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc is None:
            self.raise_errors()

    def raise_errors(self) -> None:
        """Re-raise the first exception of a rule or of the serving thread, if any."""
        if self.errors:
            raise AssertionError(
                f"scripted FTP server failed: {self.errors[0]!r} (commands: {self.commands})"
            ) from self.errors[0]

    def _close_sockets(self) -> None:
        for name in ("_control", "_data_listener", "_listener"):
            sock = getattr(self, name)
            setattr(self, name, None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    # -- sending -------------------------------------------------------------------------------

    def _encode_reply(self, reply: str | bytes) -> bytes:
        if isinstance(reply, bytes):
            return reply
        lines = reply.replace("\r\n", "\n").split("\n")
        return "".join(f"{line}\r\n" for line in lines).encode(self.encoding)

    def reply(self, reply: str | bytes) -> None:
        """Send a reply now (str: CRLF line ends added; bytes: sent exactly as given)."""
        control = self._control
        if control is None:
            raise RuntimeError("no control connection")
        control.sendall(self._encode_reply(reply))

    def trickle(self, head: bytes, drip: bytes = b".", *, interval: float = 0.1) -> None:
        """Send ``head``, then ``drip`` every ``interval`` seconds, until the client goes away
        or ``timeout`` seconds have passed (then return: a client that never timed out gets
        an end of file instead, which its test must not mistake for a time-out)."""
        control = self._control
        if control is None:
            raise RuntimeError("no control connection")
        control.settimeout(self.timeout)
        deadline = time.monotonic() + self.timeout
        try:
            control.sendall(head)
            while time.monotonic() < deadline and not self._stop.wait(interval):
                control.sendall(drip)
                self.state["trickled"] = cast(int, self.state.get("trickled", 0)) + len(drip)
            control.shutdown(socket.SHUT_RDWR)  # the client never gave up: end it with an EOF
        except OSError:
            return  # the client closed the connection: what the test expects

    # -- data connections ----------------------------------------------------------------------

    def open_passive(self) -> tuple[str, int]:
        """Listen for one data connection on ``127.0.0.1:0``; returns ``(host, port)``. A
        previous listener that was never connected to is closed."""
        if self._data_listener is not None:
            with contextlib.suppress(OSError):
                self._data_listener.close()
            self._data_listener = None
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((LOOPBACK, 0))
            listener.listen(1)
            listener.settimeout(self.timeout)
        except BaseException:
            listener.close()
            raise
        self._data_listener = listener
        return LOOPBACK, listener.getsockname()[1]

    def accept_data(self) -> socket.socket:
        """Accept the client's data connection on the listener of :meth:`open_passive` (the
        listener is closed then). The caller closes the returned socket."""
        listener = self._data_listener
        if listener is None:
            raise RuntimeError("no passive listener: the client sent no PASV/EPSV")
        self._data_listener = None
        try:
            conn, _addr = listener.accept()
        except TimeoutError:
            raise TimeoutError(
                f"the client did not open the data connection within {self.timeout} s"
            ) from None
        finally:
            listener.close()
        conn.settimeout(self.timeout)
        return conn

    def send_data(self, data: bytes) -> None:
        """Accept the data connection, send ``data`` and close it."""
        conn = self.accept_data()
        try:
            conn.sendall(data)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
        finally:
            conn.close()

    def receive_data(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """Accept the data connection and read it to its end (at most ``limit`` bytes)."""
        conn = self.accept_data()
        chunks: list[bytes] = []
        size = 0
        try:
            while size < limit:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            conn.close()
        return b"".join(chunks)

    # -- the serving thread --------------------------------------------------------------------

    def _serve(self) -> None:
        try:
            while self.connections_accepted < self.max_connections and not self._stop.is_set():
                control = self._accept_control()
                if control is None:
                    return
                self._control = control
                self.connections_accepted += 1
                try:
                    self._dialogue(control)
                finally:
                    self._control = None
                    if self._data_listener is not None:
                        with contextlib.suppress(OSError):
                            self._data_listener.close()
                        self._data_listener = None
                    with contextlib.suppress(OSError):
                        control.close()
        except BaseException as err:  # recorded and re-raised in the test's thread
            self.errors.append(err)

    def _accept_control(self) -> socket.socket | None:
        listener = self._listener
        assert listener is not None
        deadline = time.monotonic() + self.timeout
        while not self._stop.is_set():
            try:
                conn, _addr = listener.accept()
            except TimeoutError:
                if time.monotonic() > deadline:
                    if self.connections_accepted == 0:
                        raise TimeoutError(f"no client connected within {self.timeout} s") from None
                    return None  # the further connections were optional
                continue
            conn.settimeout(0.1)
            return conn
        return None

    def _dialogue(self, control: socket.socket) -> None:
        if callable(self.banner):
            self.banner(self)
        else:
            control.sendall(self._encode_reply(self.banner))
        buffer = b""
        idle_deadline = time.monotonic() + self.timeout
        while not self._stop.is_set():
            newline = buffer.find(b"\n")
            if newline < 0:
                try:
                    chunk = control.recv(4096)
                except TimeoutError:
                    if time.monotonic() > idle_deadline:
                        raise TimeoutError(
                            f"the client sent no command within {self.timeout} s"
                        ) from None
                    continue
                except OSError:
                    return  # reset by the client
                if not chunk:
                    return  # the client closed the connection
                buffer += chunk
                continue
            raw, buffer = buffer[:newline].rstrip(b"\r"), buffer[newline + 1 :]
            if self.drop_pipelined and buffer:
                self.dropped.append(buffer)
                buffer = b""
            idle_deadline = time.monotonic() + self.timeout
            if not self._handle(control, raw):
                return

    def _handle(self, control: socket.socket, raw: bytes) -> bool:
        """Answer one command line; False when the connection is to be closed."""
        line = raw.decode(self.encoding, errors="replace")
        self.raw_commands.append(raw)
        self.commands.append(line)
        verb, _sep, arg = line.partition(" ")
        rule = self._next_rule(verb.upper())
        control.settimeout(self.timeout)  # rules may block in sendall
        try:
            if callable(rule):
                try:
                    result = rule(self, arg)
                except Exception as err:
                    self.errors.append(err)
                    result = "451 Scripted rule failed."
            else:
                result = rule
            if isinstance(result, _Close):
                return False
            if result is not None:
                control.sendall(self._encode_reply(result))
        except OSError:
            return False  # the client went away in the middle of a reply
        finally:
            with contextlib.suppress(OSError):
                control.settimeout(0.1)
        return True
