"""Listings and stat of the FTP backend, and how each falls back on a server that refuses
what it advertised (see quirks.py): MLSD -> LIST; MLST -> SIZE + MDTM -> a LIST of the parent.

:class:`FtpLookups` is a mixin of :class:`~.backend.FtpBackend`, which provides the session
(``_op``), the quirks and the refusal bookkeeping (``_refused``, ``_features``).
"""

from __future__ import annotations

import builtins
import dataclasses
import ftplib
import posixpath
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ...errors import FerrymanError, NotFoundError, ProtocolError, RemoteError
from ...paths import check_remote_path
from ..base import Entry, EntryType
from .listing import parse_list, parse_mlsd, parse_mlsd_line
from .quirks import refused_command
from .replies import parse_size
from .translate import translate_reply

if TYPE_CHECKING:
    from ...connection import FtpConnection
    from .quirks import ServerQuirks
    from .session import FtpSession

__all__ = ["MAX_LISTING_BYTES", "SIZE_INSTEAD", "FtpLookups"]

MAX_LISTING_BYTES = 512 * 1024 * 1024  # bound on one directory listing


#: what a server that refuses SIZE gets instead (noted once in the transcript)
SIZE_INSTEAD = "sizes from directory listings instead"


class FtpLookups:
    """``list``, ``stat`` and ``size`` of :class:`~.backend.FtpBackend`."""

    conn: FtpConnection
    quirks: ServerQuirks

    if TYPE_CHECKING:  # provided by FtpBackend and Backend

        def _op(self, what: str, path: str = "") -> AbstractContextManager[FtpSession]: ...
        def _features(self, session: FtpSession) -> dict[str, str]: ...
        def _refused(self, command: str, err: FerrymanError, then: str) -> None: ...
        def _optional(
            self, session: FtpSession, command: str, line: str, then: str
        ) -> str | None: ...
        def describe(self) -> str: ...
        def login_path(self, path: str) -> str: ...

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
        path = check_remote_path(self.login_path(path))
        with self._op(f"list {path or '.'}", path) as session:
            return self._list_on(session, path)

    def _list_on(self, session: FtpSession, path: str) -> builtins.list[Entry]:
        if self.conn.use_mlsd and not self.quirks.refused("MLSD") and _offers_mlsd(session):
            try:
                return parse_mlsd(self._retr_lines(session, f"MLSD {path}".rstrip()))
            except ProtocolError as err:
                if not refused_command(err):
                    raise
                # RFC 3659 is optional (vsftpd has no MLSD): LIST for good
                self._refused("MLSD", err, "LIST from now on")
        entries = parse_list(self._retr_lines(session, f"LIST {path}".rstrip()))
        if not entries and path and not self._is_dir(session, path):
            raise NotFoundError(f"list {path}: no such directory on {self.describe()}")
        return entries

    def _is_dir(self, session: FtpSession, path: str) -> bool:
        """``CWD path`` and back: one send on a server that pipelines (going back is harmless
        when the first one failed)."""
        if session.home is None:
            session.home = ftplib.parse257(session.command("PWD"))
        home = session.home
        lines = [f"CWD {path}", f"CWD {home}"]
        # one at a time, going back only from where the first one went
        replies = session.batch(lines if session.pipelining else lines[:1])
        if replies[0][:1] != "2":
            err = translate_reply(replies[0], lines[0])
            if not isinstance(err, RemoteError):
                raise err
            if len(replies) == 1:
                return False  # not found, denied, not understood: not a directory
        if len(replies) == 1:
            replies += session.batch(lines[1:])
        if replies[1][:1] != "2":
            session.home = None
            raise translate_reply(replies[1], lines[1])
        return replies[0][:1] == "2"

    def stat(self, path: str) -> Entry:
        path = check_remote_path(self.login_path(path))
        name = posixpath.basename(path.rstrip("/")) or path
        with self._op(f"stat {path}", path) as session:
            if path in ("", "/", "."):
                return Entry(name=path or ".", type=EntryType.DIR)
            return self._stat_on(session, path, name)

    def _stat_on(self, session: FtpSession, path: str, name: str) -> Entry:
        if self.conn.use_mlsd and "MLST" in self._features(session):
            entry = self._mlst(session, path, name)
            if entry is not None:
                return entry
        if not self.quirks.refused("SIZE"):
            entry = self._stat_by_size(session, path, name)
            if entry is not None:
                return entry
        return self._stat_by_listing(session, path, name)

    def _mlst(self, session: FtpSession, path: str, name: str) -> Entry | None:
        """MLST (RFC 3659 section 7); None when the server refuses the command itself."""
        # advertised but refused (gateways, per-user <Limit MLST>; issue 12): carry on
        reply = self._optional(
            session, "MLST", f"MLST {path}", "SIZE and MDTM, or a LIST of the parent, instead"
        )
        if reply is None:
            return None
        for line in reply.splitlines()[1:]:
            if line.startswith(" "):
                entry = parse_mlsd_line(line[1:])
                if entry is not None:
                    return dataclasses.replace(entry, name=name)
        raise ProtocolError(f"stat {path}: MLST reply without facts", reply_text=reply)

    def _stat_by_size(self, session: FtpSession, path: str, name: str) -> Entry | None:
        """SIZE + MDTM (RFC 3659 sections 3, 4), in one send on a server that pipelines;
        None when the server refuses SIZE."""
        session.set_type("I")  # SIZE counts bytes in TYPE I; some refuse it in A
        lines = [f"SIZE {path}"]
        if session.pipelining and "MDTM" in self._features(session):
            lines.append(f"MDTM {path}")
        replies = session.batch(lines)
        try:
            if replies[0][:1] != "2":
                raise translate_reply(replies[0], lines[0])
            size = int(replies[0].split()[1])
        except ProtocolError as err:
            if not refused_command(err):
                raise
            # advertised but refused (issue 12): the parent's listing has the size
            self._refused("SIZE", err, SIZE_INSTEAD)
            return None
        except (NotFoundError, RemoteError, ValueError, IndexError):
            if self._is_dir(session, path):
                return Entry(name=name, type=EntryType.DIR)
            raise NotFoundError(f"stat {path}: no such file or directory") from None
        mtime = self._mdtm(session, path, replies[1] if len(replies) > 1 else None)
        return Entry(
            name=name,
            type=EntryType.FILE,
            size=size,
            mtime=mtime,
            mtime_precision=1 if mtime else None,
        )

    def _stat_by_listing(self, session: FtpSession, path: str, name: str) -> Entry:
        """The entry as a listing of the parent directory shows it (the last way left)."""
        parent = posixpath.dirname(path.rstrip("/"))
        try:
            entries = self._list_on(session, parent)
        except NotFoundError:
            entries = []
        for entry in entries:
            if entry.name == name:
                return entry
        if self._is_dir(session, path):
            return Entry(name=name, type=EntryType.DIR)
        raise NotFoundError(f"stat {path}: no such file or directory")

    def size(self, path: str) -> int | None:
        """``SIZE`` alone (RFC 3659 section 4): one round trip where ``stat`` may need three."""
        path = check_remote_path(self.login_path(path))
        with self._op(f"SIZE {path}", path) as session:
            if "SIZE" not in session.features:
                return None
            if self.quirks.refused("SIZE"):  # advertised but refused: MLST or a listing
                return self._stat_on(session, path, posixpath.basename(path)).size
            session.set_type("I")  # SIZE counts bytes in TYPE I; some servers refuse it in A
            reply = self._optional(session, "SIZE", f"SIZE {path}", SIZE_INSTEAD)
            if reply is None:
                return self._stat_on(session, path, posixpath.basename(path)).size
        return parse_size(path, reply)

    def _mdtm(self, session: FtpSession, path: str, reply: str | None = None) -> datetime | None:
        """The time MDTM gives ``path``; ``reply``: its reply, when it was sent already."""
        if "MDTM" not in self._features(session):
            return None
        try:
            if reply is None:
                reply = session.command(f"MDTM {path}")
            elif reply[:1] != "2":
                raise translate_reply(reply, f"MDTM {path}")
            stamp = reply.split()[1][:14]
            return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        except FerrymanError as err:
            if refused_command(err):  # advertised but refused (issue 12): no time, no error
                self._refused("MDTM", err, "times from directory listings instead")
            return None
        except (ValueError, IndexError):
            return None


def _offers_mlsd(session: FtpSession) -> bool:
    """Whether to try MLSD: FEAT lists MLST (RFC 3659 section 7.8: the MLST feature stands
    for MLST and MLSD), or FEAT said nothing. Trying it on a server that lacks it (vsftpd)
    cost an EPSV, a refused MLSD and a second listing with LIST (issue 19)."""
    return not session.features or "MLST" in session.features
