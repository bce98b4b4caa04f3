"""The next transfer's passive port asked for while the current one ends (issue 19).

Per downloaded file a session sends ``EPSV`` + ``RETR`` and waits a round trip for the 229
before it can connect. When the engine says that another transfer follows on this
connection (``Backend.transfers_follow``), the session asks for the next port *behind* the
current transfer: ``EPSV`` goes out with the data connection's close, its 229 comes right
behind the 226, and the next transfer sends ``RETR`` and connects at once (RFC 959 section
4.2: the server reads commands as a stream and answers each in turn). After an upload it
goes with ``RNFR`` + ``RNTO``, when no transfer is in progress.

An ``EPSV`` that arrives while a transfer is still going is not harmless everywhere:
pyftpdlib answers commands during a transfer, and its ``EPSV`` closes the data channel it
holds (the transfer is cut, no 226 follows). So behind a transfer it is sent only to a server
that showed that it reads commands only once a transfer ended (:class:`HostFacts`
``commands_after_transfer``), learned from a ``NOOP`` sent with the first pipelined
``EPSV`` + ``RETR`` while that is unknown: pyftpdlib reads the three lines at once and
answers the NOOP before the 150 (it waits for the data connection); vsftpd answers it after
the 226. A server that carried out a ``SIZE`` sent behind an upload during the transfer (a
213 before the 226) is known to read commands during one. ProFTPD at times refuses such a
command during a transfer (``450 ...: data transfer in progress``): harmless, nothing was
prepared, and the next transfer asks anew; only a command *carried out* during a transfer
(a 2xx before the final reply) marks the server. The transfer's final reply and the other
one are read whatever their order, so the session stays in step either way.

A prepared port that is not used: any other command first drops it (the server replaces
its listener at the next ``EPSV``); one older than :data:`PREPARED_MAX_AGE` is not trusted
(some servers time unused passive ports out with an unsolicited ``421``, which would be
read as the next command's reply): the backend replaces that session instead.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

from ...errors import ProtocolError
from .replies import parse_epsv
from .translate import translate_reply

if TYPE_CHECKING:
    from ...connection import FtpConnection
    from ...wirelog import WireLog
    from .pipelining import HostFacts
    from .quirks import ServerQuirks

__all__ = ["PREPARED_MAX_AGE", "PreparedTransfers", "is_final"]

#: a prepared passive port older than this (seconds) is not used: its session is replaced
PREPARED_MAX_AGE = 5.0


def is_final(reply: str) -> bool:
    """Whether ``reply`` ends a transfer well (226, 250)."""
    return reply[:3] in ("226", "250")


class PreparedTransfers:
    """Asking for the next passive port behind a transfer; a mixin of
    :class:`~.session.FtpSession`."""

    conn: FtpConnection
    wire: WireLog
    facts: HostFacts
    quirks: ServerQuirks
    broken: bool
    _transfer_command: str

    if TYPE_CHECKING:  # provided by FtpSession

        @property
        def pipelining(self) -> bool: ...
        @property
        def control(self) -> socket.socket: ...
        def send_batch(self, lines: list[str]) -> None: ...
        def read_reply(self, what: str, within: float | None = None) -> str: ...

    #: the backend's hint: another transfer follows on this session
    follows = False
    #: a NOOP sent with a transfer still owes its reply (the probe, see the module docstring)
    probe_pending = False
    _prepared: tuple[int, float] | None = None

    def may_prepare(self) -> bool:
        """Whether the next passive port may be asked for ahead of its transfer."""
        return (
            self.follows
            and self.pipelining
            and self.conn.passive
            and self.conn.use_epsv
            and self.facts.epsv_reached
            and not self.quirks.refused("EPSV")
        )

    def prepared_stale(self) -> bool:
        prepared = self._prepared
        return prepared is not None and time.monotonic() - prepared[1] > PREPARED_MAX_AGE

    def take_prepared(self) -> int | None:
        """The prepared passive port, now spent; None when there is none."""
        prepared, self._prepared = self._prepared, None
        return prepared[0] if prepared is not None else None

    def forget_prepared(self) -> None:
        """Another command is being sent: a prepared port is not used after it."""
        self._prepared = None

    def probe_behind(self, cmd: str) -> list[str]:
        """What to send with ``EPSV`` + ``cmd`` to learn whether the server reads commands
        during a transfer: a NOOP, once, while that is unknown and would be of use."""
        if (
            cmd.startswith("RETR ")
            and self.facts.commands_after_transfer is None
            and self.may_prepare()
        ):
            self.probe_pending = True
            return ["NOOP"]
        return []

    def probe_answered_early(self, reply: str) -> bool:
        """Whether ``reply``, read where a transfer's 1xx was expected, answers the probe:
        the server reads commands during a transfer (never prepared behind one)."""
        if not (self.probe_pending and reply.startswith("200")):
            return False
        self.probe_pending = False
        self._learn(after=False)
        return True

    def owed_behind(self) -> str | None:
        """Before the final reply of a transfer is read: the command whose reply follows it
        (the probe's NOOP, or an EPSV sent now for the next transfer), or None."""
        if self.probe_pending:
            return "NOOP"
        if self.may_prepare() and self.facts.commands_after_transfer:
            self.send_batch(["EPSV"])
            return "EPSV"
        return None

    def final_and_owed(self, owed: str) -> str:
        """Read the transfer's final reply and ``owed``'s, in whichever order they come;
        return the final one (raised as an error when the transfer failed)."""
        self.probe_pending = False
        first = self.read_reply(f"the final reply to {self._transfer_command}")
        try:
            second = self.read_reply(f"the reply to {owed}")
        except BaseException:
            self.broken = True
            if first[:1] in ("4", "5"):
                raise translate_reply(first, self._transfer_command) from None
            raise
        if is_final(first):
            final, other, after = first, second, True
        elif is_final(second):
            final, other, after = second, first, False  # answered during the transfer
        else:
            failed = next((r for r in (first, second) if r[:1] in ("4", "5")), first)
            raise translate_reply(failed, self._transfer_command)
        # carried out during the transfer (a 2xx before the final reply): that server may cut a
        # transfer with an EPSV; one that refused it during the transfer (ProFTPD's 450) or
        # answered it after did no harm
        executed_during = not after and other[:1] == "2"
        self._learn(after=not executed_during)
        if owed == "EPSV" and after and other.startswith("229"):
            try:
                self._prepared = (parse_epsv(other), time.monotonic())
            except ProtocolError:
                self._prepared = None
        return final

    def _learn(self, *, after: bool) -> None:
        if self.facts.commands_after_transfer is None:
            self.wire.note(
                "the server reads commands %s",
                "only after a transfer ended: the next passive port is asked for behind it"
                if after
                else "during a transfer: nothing is sent behind one",
            )
        if not after or self.facts.commands_after_transfer is None:
            self.facts.commands_after_transfer = after

    def commands_preparing(self, lines: list[str]) -> list[str] | None:
        """Every reply to ``lines`` with an ``EPSV`` for the next transfer sent behind them
        (no transfer is in progress: harmless on any server that pipelines); None when no
        transfer follows (the caller sends ``lines`` as usual). A refusal among ``lines`` is
        raised once all replies were read."""
        if not self.may_prepare():
            return None
        replies = self.batch_replies([*lines, "EPSV"])
        epsv = replies.pop()
        if epsv.startswith("229"):
            try:
                self._prepared = (parse_epsv(epsv), time.monotonic())
            except ProtocolError:
                self._prepared = None
        for line, reply in zip(lines, replies, strict=True):
            if reply[:1] not in ("1", "2", "3"):
                raise translate_reply(reply, line)
        return replies

    def batch_replies(self, lines: list[str]) -> list[str]:
        self.send_batch(lines)
        return [self.read_reply(f"the reply to {line}") for line in lines]
