"""The SFTP backend: the Backend interface over one SFTP channel of a shared SSH connection.

A backend is one SFTP channel (or a share of one), used by one thread at a time; its siblings
use channels on the same SSH connection (see ``group.ConnectionGroup``). A channel or connection
that failed at the network level is dropped, and the next operation opens a fresh one;
retrying is the caller's policy (see ``ferryman.retry``), not the backend's.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Self, TypeVar

import asyncssh

from ...connection import SftpConnection
from ...errors import (
    ConnectError,
    FerrymanError,
    NotFoundError,
    PermissionDeniedError,
    RemoteError,
    TransferError,
)
from ...errors import TimeoutError as FerrymanTimeout
from ...paths import check_remote_path
from ...wirelog import WireLog
from ..base import (
    Backend,
    Capabilities,
    Entry,
    EntryType,
    NotSupportedError,
    usable_login_directory,
)
from . import loop
from .channel import SftpChannel
from .entries import entry_of, is_link, name_of
from .group import ConnectionGroup, SharedChannel
from .listing import read_directory
from .reader import SftpReadStream
from .session import SshConnection
from .translate import translate
from .writer import SftpWriteStream

__all__ = ["SftpBackend"]

T = TypeVar("T")
#: finds out why a request failed with a bare "Failure" (runs in the loop)
Explainer = Callable[[], Coroutine[Any, Any, str | None]]


class SftpBackend(Backend):
    """SFTP (SSH file transfer) via asyncssh, behind a synchronous facade."""

    def __init__(self, conn: SftpConnection, *, group: ConnectionGroup | None = None) -> None:
        self.conn = conn
        self.group = group if group is not None else ConnectionGroup(conn)
        self.wire = WireLog(conn.describe())
        self.user = conn.user
        self.ssh: SshConnection | None = None
        self.channel: SftpChannel | None = None
        self._shared: SharedChannel | None = None
        self.capabilities = self._capabilities(atomic_rename=False)
        self._realpath_asked = False  # REALPATH . was sent (its answer may have been unusable)

    def _capabilities(self, *, atomic_rename: bool) -> Capabilities:
        return Capabilities(
            hashes=("sha256",) if self.conn.exec_hash else (),
            resume_read=True,
            resume_write=True,
            set_mtime=True,
            mtime_precision=1,
            atomic_rename_replace=atomic_rename,
            shared_connections=not self.conn.exec_hash,
            write_ranges=True,
            # every connection's data is decrypted by the one event-loop thread, which four
            # keep busy: 1 GiB at 50 ms took 5.9 s with 4 and 6.3 s with 8 (issue 19)
            auto_read_segments=4,
            read_ahead=not self.conn.exec_hash,
            read_round_trips=2,  # OPEN; READ + CLOSE
            write_round_trips=3,  # OPEN; WRITE + FSTAT + CLOSE; RENAME into place
        )

    # -- session life cycle ----------------------------------------------------------------

    def describe(self) -> str:
        return self.conn.describe(self.user)

    def translate(self, err: BaseException, what: str, *, transfer: bool = False) -> FerrymanError:
        return translate(err, what, self.describe(), transfer=transfer)

    def connect(self) -> Self:
        """Open the SSH connection (or share the siblings') and an SFTP channel on it now."""
        self._channel()
        return self

    def sibling(self) -> SftpBackend:
        """Another backend whose channel shares this one's SSH connection."""
        return SftpBackend(self.conn, group=self.group)

    def sibling_with_own_connection(self) -> SftpBackend:
        """Another backend on an SSH connection of its own (its own TCP flow)."""
        backend = SftpBackend(self.conn)
        backend.group.login_directory = self.group.login_directory
        backend.group.round_trip = self.group.round_trip
        return backend

    def _channel(self) -> SftpChannel:
        if self.channel is not None:
            return self.channel
        for attempt in (1, 2):
            try:
                ssh, shared = self.group.acquire(self.wire)
            except FerrymanError:
                raise
            except Exception as err:
                error = self.translate(err, f"opening an SFTP channel on {self.describe()}")
                if attempt == 2 or not isinstance(error, ConnectError):
                    raise error from None
                continue  # a full or broken connection: once more, on a fresh one
            break
        self.ssh, self._shared, self.channel = ssh, shared, shared.channel
        self.user = ssh.user
        if self.group.round_trip is not None:
            self.note_round_trip(self.group.round_trip)
        channel = shared.channel
        self.capabilities = self._capabilities(atomic_rename=channel.posix_rename)
        on = "" if ssh.wire is self.wire else f" on the ssh connection of [{ssh.wire.id}]"
        if shared.users > 1:
            self.wire.note("sftp channel shared%s (%d files in flight on it)", on, shared.users)
        else:
            self.wire.note("sftp channel opened%s: %s", on, channel.summary())
        return channel

    def find_login_directory(self) -> str | None:
        """REALPATH of "." on the open channel, once for the backend and its siblings: the
        directory the server starts sessions in (the user's home, or the chroot's), which
        ``~`` names. Without a channel nothing is asked; when the server refuses or answers
        with something unusable it stays unknown. Either way ``~/x`` is then sent as the
        relative ``x``, which the server reads from that same directory."""
        known = self.group.login_directory
        if known is not None or self._realpath_asked or self.channel is None:
            self.login_directory = known
            return known
        self._realpath_asked = True
        self.wire.sent("REALPATH .")
        try:
            found = str(loop.run(self.channel.client.realpath("."), self.conn.timeout))
        except Exception as err:  # only a nicety: relative paths work without it
            self.wire.received(f"failed: {err}")
            self.after_error(self.translate(err, "REALPATH ."))
            return None
        home = usable_login_directory(found)
        self.wire.received(home if home is not None else f"unusable: {found[:200]!r}")
        self.group.login_directory = self.login_directory = home
        return home

    def after_error(self, error: FerrymanError) -> None:
        """Drop the channel and connection after a network-level failure."""
        if isinstance(error, ConnectError) or (
            isinstance(error, TransferError) and error.retriable
        ):
            self._drop(discard=True)

    def _drop(self, *, discard: bool) -> None:
        """Give the channel and connection back to the group (which closes them with their
        last user); ``discard``: they failed, hand them out no more."""
        shared, ssh = self._shared, self.ssh
        self.channel = self.ssh = self._shared = None
        if ssh is not None:
            if discard:
                self.group.discard(ssh)
                if shared is not None:
                    self.group.discard(ssh, shared)
            self.group.release(ssh, shared)

    def close(self) -> None:
        self._drop(discard=False)

    def _call(
        self,
        command: str,
        make: Callable[[asyncssh.SFTPClient], Coroutine[Any, Any, T]],
        *,
        explain: Explainer | None = None,
        done: str | None = "OK",
        path: str = "",
    ) -> T:
        """Run one request; log it and its outcome (``done``, or the caller logs a summary);
        translate any failure, with the reason ``explain`` finds for a bare 'Failure', and
        the login directory in the hint of a "not found" for absolute ``path``."""
        client = self._channel().client
        self.wire.sent(command)
        started = time.monotonic()
        try:
            result = loop.run(make(client), self.conn.timeout)
            self.note_round_trip(time.monotonic() - started)
        except Exception as err:
            if isinstance(err, TimeoutError):  # the builtin: asyncio's time-out of loop.run
                error: FerrymanError = self._request_timeout(command)
            else:
                error = self.translate(err, command)
            if explain is not None and type(error) is RemoteError:
                reason = self._explanation(explain)
                if reason:
                    error.message = f"{command}: {reason}"
                    error.hint = None
            self.wire.received(error.message.removeprefix(f"{command}: "))
            self.after_error(error)
            raise self.hint_not_found(error, path) from None
        if done is not None:
            self.wire.received(done)
        return result

    def _request_timeout(self, command: str) -> FerrymanTimeout:
        """A request whose reply did not come (complete) within the time-out (issue 13)."""
        return FerrymanTimeout(
            f"waiting for the reply to {command}: {self.describe()} did not answer in time "
            f"(no complete reply within {self.conn.timeout:g} s)",
            hint="the server or network is slow or stuck; raise --timeout if this is expected",
        )

    def _explanation(self, explain: Explainer) -> str | None:
        """Why SFTP v3's bare 'Failure' happened, found out with a stat; None if unknown."""
        try:
            return loop.run(explain(), self.conn.timeout)
        except Exception:  # the explanation is a nicety; the original error stands
            return None

    def _kind_of(self, path: str) -> Explainer:
        """An explainer that tells what ``path`` is ("file", "dir", ...; None when missing)."""
        client = self._channel().client

        async def kind() -> str | None:
            try:
                attrs = await client.lstat(path)
            except asyncssh.SFTPError:
                return None
            return str(entry_of(path, attrs).type)

        return kind

    # -- listings --------------------------------------------------------------------------

    def list(self, path: str) -> list[Entry]:
        path = check_remote_path(self.login_path(path))
        directory = path or "."

        async def listing(client: asyncssh.SFTPClient) -> list[Entry]:
            every = await read_directory(client, directory)
            names = [n for n in every if n.filename not in (".", "..")]
            links = [n for n in names if is_link(n.attrs)]
            targets = await asyncio.gather(
                *(client.readlink(posixpath.join(directory, str(n.filename))) for n in links),
                return_exceptions=True,
            )
            link_of = {
                str(n.filename): str(t)
                for n, t in zip(links, targets, strict=True)
                if isinstance(t, str)
            }
            entries = [
                entry_of(str(n.filename), n.attrs, link_of.get(str(n.filename))) for n in names
            ]
            return sorted(entries, key=lambda e: e.name)

        command = f"READDIR {directory}"
        try:
            entries = self._call(command, listing, done=None, path=directory)
        except RemoteError as err:
            if isinstance(err, NotFoundError | PermissionDeniedError):
                raise
            kind = self._explanation(self._kind_of(directory))
            if kind is None or kind == str(EntryType.DIR):
                raise
            raise NotFoundError(
                f"{command}: not a directory (it is a {kind})",
                hint="give the path of a directory",
            ) from None
        self.wire.received(f"{len(entries)} entries")
        return entries

    def stat(self, path: str) -> Entry:
        path = check_remote_path(self.login_path(path))

        async def lstat(client: asyncssh.SFTPClient) -> Entry:
            attrs = await client.lstat(path or ".")
            target = str(await client.readlink(path)) if is_link(attrs) else None
            return entry_of(name_of(path), attrs, target)

        entry = self._call(f"LSTAT {path or '.'}", lstat, done=None, path=path)
        self.wire.received(f"{entry.type} size={entry.size} mtime={entry.mtime}")
        return entry

    # -- data ------------------------------------------------------------------------------

    def open_read_ahead(self, path: str, size: int) -> SftpReadStream:
        """:meth:`open_read` with the size the listing gave: the reads go right behind the
        OPEN's answer without an FSTAT (see ``SftpReadStream``)."""
        return self.open_read(path, size_hint=size)

    def open_read(
        self, path: str, offset: int = 0, *, size_hint: int | None = None
    ) -> SftpReadStream:
        """Open for reading; the OPEN is answered while the caller goes on (a failure is
        raised by the first ``readinto``). ``size_hint``: see :meth:`open_read_ahead`."""
        path = check_remote_path(self.login_path(path))
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        channel = self._channel()

        async def open_file() -> asyncssh.SFTPClientFile:
            return await channel.client.open(path, asyncssh.FXF_READ, encoding=None, block_size=0)

        self.wire.sent(f"OPEN {path} (read" + (f" from byte {offset})" if offset else ")"))
        what = f"read {path}" + (f" from byte {offset}" if offset else "")
        limit = self.conn.requests_in_flight
        hint = size_hint if not offset else None
        stream = SftpReadStream(self, open_file, what, offset, channel.read_size, limit, hint)
        stream.path = path
        return stream

    def open_write(self, path: str, offset: int = 0) -> SftpWriteStream:
        """Open for writing (offset 0: create or truncate; else continue at ``offset``). A
        new file's OPEN is answered while the caller goes on (a failure is raised by a later
        ``write`` or by ``close``); continuing waits, to check the partial file first."""
        path = check_remote_path(self.login_path(path))
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        channel = self._channel()

        async def open_file() -> asyncssh.SFTPClientFile:
            if not offset:
                flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC
                return await channel.client.open(path, flags, encoding=None, block_size=0)
            file = await channel.client.open(path, asyncssh.FXF_WRITE, encoding=None, block_size=0)
            try:
                size = (await file.stat()).size or 0
                if size < offset:
                    raise RemoteError(
                        f"cannot continue writing {path!r} at byte {offset}: the file has only "
                        f"{size} bytes",
                        hint="stat the partial file and resume from its size, or start again "
                        "at offset 0",
                    )
                if size > offset:
                    await file.truncate(offset)
            except BaseException:
                await file.close()
                raise
            return file

        mode = f"write from byte {offset}" if offset else "write, create or truncate"
        self.wire.sent(f"OPEN {path} ({mode})")
        what = f"write {path}" + (f" from byte {offset}" if offset else "")
        limit = self.conn.requests_in_flight
        stream = SftpWriteStream(self, open_file, what, offset, channel.write_size, limit)
        stream.path = path
        if offset:
            stream.wait_opened()
        return stream

    def open_write_range(self, path: str, offset: int) -> SftpWriteStream:
        """Write from ``offset`` into ``path`` without truncating it (a segment of a
        segmented upload: OPEN with WRITE|CREAT, no TRUNC; the writes carry their offsets)."""
        path = check_remote_path(self.login_path(path))
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        channel = self._channel()

        async def open_file() -> asyncssh.SFTPClientFile:
            flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT
            return await channel.client.open(path, flags, encoding=None, block_size=0)

        self.wire.sent(f"OPEN {path} (write a range from byte {offset})")
        limit = self.conn.requests_in_flight
        stream = SftpWriteStream(
            self, open_file, f"write {path} from byte {offset}", offset, channel.write_size, limit
        )
        stream.path = path
        return stream

    # -- namespace -------------------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        path = check_remote_path(self.login_path(path))
        kind_of = self._kind_of(path)

        async def explain() -> str | None:
            kind = await kind_of()
            return f"it already exists (a {kind})" if kind else None

        self._call(f"MKDIR {path}", lambda c: c.mkdir(path), explain=explain, path=path)

    def rmdir(self, path: str) -> None:
        path = check_remote_path(self.login_path(path))
        kind_of = self._kind_of(path)

        async def explain() -> str | None:
            kind = await kind_of()
            if kind == str(EntryType.DIR):
                return "the directory is not empty"
            return f"it is not a directory (it is a {kind})" if kind else None

        self._call(f"RMDIR {path}", lambda c: c.rmdir(path), explain=explain, path=path)

    def remove(self, path: str) -> None:
        path = check_remote_path(self.login_path(path))
        kind_of = self._kind_of(path)

        async def explain() -> str | None:
            kind = await kind_of()
            return (
                "it is a directory (remove it with rmdir)" if kind == str(EntryType.DIR) else None
            )

        self._call(f"REMOVE {path}", lambda c: c.remove(path), explain=explain, path=path)

    def rename(self, source: str, target: str) -> None:
        source = check_remote_path(self.login_path(source))
        target = check_remote_path(self.login_path(target))
        atomic = self._channel().posix_rename

        async def rename(client: asyncssh.SFTPClient) -> None:
            if atomic:
                await client.posix_rename(source, target)
            else:
                await client.rename(source, target)

        kind_of = self._kind_of(target)

        async def explain() -> str | None:
            kind = await kind_of()
            return f"the target {target!r} exists (a {kind})" if kind else None

        how = " (posix-rename@openssh.com)" if atomic else ""
        self._call(f"RENAME {source} {target}{how}", rename, explain=explain, path=source)

    def set_mtime(self, path: str, mtime: datetime) -> None:
        path = check_remote_path(self.login_path(path))
        if mtime.tzinfo is None or mtime.utcoffset() is None:
            raise ValueError(f"mtime must be timezone-aware, got {mtime!r}")
        times = (time.time(), mtime.timestamp())
        what = f"SETSTAT {path} mtime={mtime.isoformat()}"
        self._call(what, lambda c: c.utime(path, times), path=path)

    # -- server-side hash ------------------------------------------------------------------

    def hash(self, path: str, algorithm: str) -> str:
        """SHA-256 by running ``sha256sum`` over an SSH exec channel (``exec_hash``)."""
        path = check_remote_path(self.login_path(path))
        if algorithm.lower() not in self.capabilities.hashes:
            return super().hash(path, algorithm)
        self._channel()
        assert self.ssh is not None
        ssh = self.ssh.ssh
        command = f"sha256sum -- {shlex.quote(path)}"

        async def run(_client: asyncssh.SFTPClient) -> asyncssh.SSHCompletedProcess:
            return await ssh.run(
                command, check=False, encoding=self.conn.encoding, errors="replace"
            )

        result = self._call(f"EXEC {command}", run, done=None)
        out, err = str(result.stdout or ""), str(result.stderr or "").strip()
        self.wire.received(f"exit {result.exit_status}: {(out or err).strip()[:200]}")
        if result.exit_status == 0:
            digest = out.lstrip("\\").split(" ", 1)[0].lower()
            if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
                return digest
        what = f"sha256sum {path} on {self.describe()}"
        if result.exit_status == 127:
            raise NotSupportedError(f"{what}: the server has no sha256sum ({err})")
        if "No such file" in err:
            raise NotFoundError(f"{what}: {err}", hint="check the path")
        if "Permission denied" in err:
            raise PermissionDeniedError(f"{what}: {err}")
        raise RemoteError(
            f"{what} failed (exit {result.exit_status}): {err or out.strip()}",
            hint="exec_hash needs a shell account on the server with sha256sum; turn it off "
            "otherwise",
        )
