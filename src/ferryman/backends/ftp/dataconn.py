"""How an FTP session opens data connections: passive (EPSV, then PASV) or active (PORT/EPRT).

- EPSV first (RFC 2428), PASV when the server refuses it, remembered for the server in its
  :class:`~.quirks.ServerQuirks` (and when the EPSV port is unreachable behind a gateway);
- the PASV address is never trusted over the control connection's peer (CVE-2021-4189, curl
  CVE-2020-8284): it is logged and ignored;
- active mode binds to the control connection's local address, within a port range, and
  accepts the data connection only from the server's address.

:class:`DataConnections` is a mixin of :class:`~.session.FtpSession`.
"""

from __future__ import annotations

import ftplib
import random
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...errors import ConfigError, ProtocolError
from .quirks import means_unsupported
from .replies import parse_epsv, parse_pasv
from .translate import reply_code, translate_reply

if TYPE_CHECKING:
    from ...connection import FtpConnection
    from ...wirelog import WireLog
    from .pipelining import HostFacts
    from .quirks import ServerQuirks

__all__ = ["DataConnections"]


class DataConnections:
    """``dial``, passive and active data connections of :class:`~.session.FtpSession`."""

    conn: FtpConnection
    wire: WireLog
    quirks: ServerQuirks
    facts: HostFacts

    if TYPE_CHECKING:  # provided by FtpSession and ftplib.FTP

        @property
        def control(self) -> socket.socket: ...
        def sendcmd(self, cmd: str) -> str: ...
        def command(self, line: str) -> str: ...
        def send_batch(self, lines: Sequence[str]) -> None: ...
        def read_reply(self, what: str, within: float | None = None) -> str: ...
        @property
        def pipelining(self) -> bool: ...
        def probe_behind(self, cmd: str) -> list[str]: ...
        def probe_answered_early(self, reply: str) -> bool: ...

        probe_pending: bool

        broken: bool
        _transfer_command: str

        af: int

    def dial(self, host: str, port: int) -> socket.socket:
        sock = socket.create_connection((host, port), timeout=self.conn.effective_connect_timeout)
        local, peer = sock.getsockname(), sock.getpeername()
        self.wire.note("data %s:%s -> %s:%s", local[0], local[1], peer[0], peer[1])
        return sock

    def _connect_passive(self) -> socket.socket:
        peer = self.control.getpeername()[0]
        if self.conn.use_epsv and not self.quirks.refused("EPSV"):
            try:
                reply = self.sendcmd("EPSV")
            except ftplib.error_perm as err:
                code = reply_code(str(err))
                # 522: "network protocol not supported" (RFC 2428 section 3), i.e. use PASV
                if not (means_unsupported(code, str(err)) or code in (501, 522)):
                    raise translate_reply(str(err), "EPSV") from None
                self.quirks.refuse("EPSV", str(err), self.wire, then="PASV from now on")
            else:
                port = parse_epsv(reply)
                try:
                    data = self.dial(peer, port)
                except OSError as err:
                    if self.af == socket.AF_INET6:
                        raise
                    # a NAT or gateway that forwards EPSV but not its port (issue 12): try PASV
                    self.quirks.refuse(
                        "EPSV",
                        f"port {port} unreachable: {err}",
                        self.wire,
                        then="PASV from now on",
                    )
                else:
                    self.facts.epsv_reached = True  # from now on EPSV may be pipelined
                    return data
        if self.af == socket.AF_INET6:
            raise ProtocolError("the server refused EPSV, and PASV cannot work over IPv6")
        host, port = parse_pasv(self.command("PASV"))
        if host != peer:
            self.wire.warning(
                "PASV address %s ignored; connecting to the server's address %s instead "
                "(CVE-2021-4189)",
                host,
                peer,
            )
        return self.dial(peer, port)

    def _may_pipeline_transfer(self, rest: int | None) -> bool:
        """EPSV + the transfer command in one send: passive, EPSV in use and known to give a
        reachable port (a refusal is then all but ruled out and a fall-back to PASV needs no
        transfer command in flight), and no REST (its refusal must be known first)."""
        return (
            self.conn.passive
            and not rest
            and self.pipelining
            and self.facts.epsv_reached
            and self.conn.use_epsv
            and not self.quirks.refused("EPSV")
        )

    def _passive_pipelined(
        self, cmd: str, *, await_reply: bool = True
    ) -> tuple[socket.socket, str | None] | None:
        """``EPSV`` and ``cmd`` in one send: read the 229, connect, then read the 1xx (not
        with ``await_reply=False``: the caller does, see ``secure_awaiting``). None when the
        server refused EPSV after all (then PASV, one command at a time)."""
        self._transfer_command = cmd
        self.send_batch(["EPSV", cmd, *self.probe_behind(cmd)])
        try:
            return self._pipelined_port(cmd, await_reply)
        except BaseException:
            if self.probe_pending:
                self.broken = True  # the probe's reply is still owed
            raise

    def _pipelined_port(
        self, cmd: str, await_reply: bool
    ) -> tuple[socket.socket, str | None] | None:
        epsv = self.read_reply("the reply to EPSV")
        if not epsv.startswith("229"):
            answer = self.read_reply(f"the reply to {cmd}")  # refused: no data port was set
            if answer[:1] in ("1", "2"):
                self.broken = True
                raise ProtocolError(f"{cmd}: the server started a transfer without a data port")
            code = reply_code(epsv)
            if epsv[:1] == "5" and (means_unsupported(code, epsv) or code in (501, 522)):
                self.quirks.refuse("EPSV", epsv, self.wire, then="PASV from now on")
                return None
            raise translate_reply(epsv, "EPSV")
        try:
            port = parse_epsv(epsv)
        except BaseException:
            self.broken = True  # the reply to cmd is still owed
            raise
        return self._dial_for(cmd, port, await_reply)

    def _passive_prepared(
        self, cmd: str, port: int, *, await_reply: bool = True
    ) -> tuple[socket.socket, str] | tuple[socket.socket, None]:
        """``cmd`` on the passive port prepared behind the last transfer (prepared.py): the
        command and the connect go out together."""
        self._transfer_command = cmd
        self.send_batch([cmd])
        return self._dial_for(cmd, port, await_reply)

    def _dial_for(
        self, cmd: str, port: int, await_reply: bool
    ) -> tuple[socket.socket, str] | tuple[socket.socket, None]:
        """Connect to passive ``port`` for ``cmd`` (already sent); then read its 1xx,
        unless the caller does (``await_reply=False``)."""
        try:
            data = self.dial(self.control.getpeername()[0], port)
        except OSError:
            # a server that refused cmd at once may have closed the port before the connect
            # came (ProFTPD's "451 Append/Restart not permitted"): its reply says why
            answer = self.read_reply(f"the reply to {cmd}")
            if answer[:1] in ("4", "5"):
                raise translate_reply(answer, cmd) from None
            self.broken = True
            raise
        if not await_reply:
            return data, None
        try:
            reply = self.transfer_reply(cmd)
        except BaseException:
            data.close()
            raise
        return data, reply

    def transfer_reply(self, cmd: str) -> str:
        """The 1xx that starts ``cmd``'s transfer; a refusal raised as the project's error."""
        reply = self.read_reply(f"the reply to {cmd}")
        if self.probe_answered_early(reply):
            reply = self.read_reply(f"the reply to {cmd}")
        if reply.startswith("2"):  # some servers send 2xx before 150 (ftplib's note)
            reply = self.read_reply(f"the reply to {cmd}")
        if not reply.startswith("1"):
            raise translate_reply(reply, cmd)
        return reply

    def _listen_active(self) -> socket.socket:
        local_host = self.control.getsockname()[0]
        ports = [0]
        if self.conn.active_port_range:
            low, high = self.conn.active_port_range
            ports = random.sample(range(low, high + 1), k=min(high - low + 1, 200))
        listener = socket.socket(self.af, socket.SOCK_STREAM)
        for port in ports:
            try:
                listener.bind((local_host, port))
                break
            except OSError:
                continue
        else:
            listener.close()
            raise ConfigError(
                f"no free port in active_port_range {self.conn.active_port_range}",
                hint="widen the range or use passive mode",
            )
        listener.listen(1)
        listener.settimeout(self.conn.effective_connect_timeout)
        host, port = listener.getsockname()[:2]
        if self.af == socket.AF_INET:
            self.command("PORT " + ",".join([*host.split("."), str(port >> 8), str(port & 255)]))
        else:
            self.command(f"EPRT |2|{host}|{port}|")
        return listener

    def _accept_active(self, listener: socket.socket) -> socket.socket:
        data, address = listener.accept()
        expected = self.control.getpeername()[0]
        if address[0] != expected:
            data.close()
            raise ProtocolError(
                f"active-mode data connection came from {address[0]}, not the server "
                f"{expected}; refused"
            )
        self.wire.note("data (active) %s:%s <- %s:%s", *listener.getsockname()[:2], *address[:2])
        return data
