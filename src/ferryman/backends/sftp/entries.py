"""SFTP attributes as the backend interface's entries: type, size, UTC time, permissions.

Links are not followed (``lstat``): a link is ``EntryType.LINK`` with its target. Permissions
read like ``rw-r--r--`` (as the FTP backend gives them), times are aware UTC with a precision
of one second (SFTP v3 sends whole seconds).
"""

from __future__ import annotations

import posixpath
import stat as stat_mode
from datetime import UTC, datetime

import asyncssh

from ..base import Entry, EntryType

__all__ = ["entry_of", "is_link", "name_of"]

#: file types from the mode bits, and from SFTP's own type field when a server sends no mode
_MODE_KINDS = (
    (stat_mode.S_ISLNK, EntryType.LINK),
    (stat_mode.S_ISDIR, EntryType.DIR),
    (stat_mode.S_ISREG, EntryType.FILE),
)
_TYPE_KINDS = {
    asyncssh.FILEXFER_TYPE_REGULAR: EntryType.FILE,
    asyncssh.FILEXFER_TYPE_DIRECTORY: EntryType.DIR,
    asyncssh.FILEXFER_TYPE_SYMLINK: EntryType.LINK,
}


def _kind(attrs: asyncssh.SFTPAttrs) -> EntryType:
    mode = attrs.permissions
    if mode is not None and stat_mode.S_IFMT(mode):
        return next((kind for test, kind in _MODE_KINDS if test(mode)), EntryType.OTHER)
    return _TYPE_KINDS.get(attrs.type, EntryType.OTHER)


def is_link(attrs: asyncssh.SFTPAttrs) -> bool:
    return _kind(attrs) is EntryType.LINK


def entry_of(name: str, attrs: asyncssh.SFTPAttrs, link_target: str | None = None) -> Entry:
    kind = _kind(attrs)
    mtime = None
    if attrs.mtime is not None:
        mtime = datetime.fromtimestamp(attrs.mtime, UTC)
        if attrs.mtime_ns:  # SFTP v4+ only; v3 has whole seconds
            mtime = mtime.replace(microsecond=attrs.mtime_ns // 1000)
    mode = attrs.permissions
    return Entry(
        name=name,
        type=kind,
        size=None if kind is EntryType.DIR else attrs.size,
        mtime=mtime,
        mtime_precision=1 if mtime is not None else None,
        permissions=stat_mode.filemode(mode)[1:] if mode is not None else None,
        link_target=link_target,
    )


def name_of(path: str) -> str:
    return posixpath.basename(path.rstrip("/")) or path or "."
