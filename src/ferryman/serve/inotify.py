"""inotify for local trigger directories, through the C library (``ctypes``, no dependency).

A :class:`DirectoryWatch` wakes a trigger as soon as something changes in its directory
instead of at its next poll; the trigger then lists the directory as it always does (the
event is only a wake-up, never trusted for content). Where inotify is missing (not Linux,
no libc symbol, the watch limit reached) :func:`watch_directory` returns None and the trigger
polls at its ``poll`` interval.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
from pathlib import Path

__all__ = ["DirectoryWatch", "watch_directory"]

log = logging.getLogger("ferryman.serve")

_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
#: modify, attrib, close-write, moved-from, moved-to, create, delete
_MASK = 0x002 | 0x004 | 0x008 | 0x040 | 0x080 | 0x100 | 0x200


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):
        return None
    return libc


class DirectoryWatch:
    """An inotify descriptor watching one directory."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a change; True when one came (events drained)."""
        if self.fd < 0:
            return False
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def watch_directory(path: Path) -> DirectoryWatch | None:
    """An inotify watch on ``path``, or None where inotify cannot be had."""
    libc = _libc()
    if libc is None or not path.is_dir():
        return None
    fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
    if fd < 0:
        log.debug("inotify unavailable (%s); polling", os.strerror(ctypes.get_errno()))
        return None
    if int(libc.inotify_add_watch(fd, os.fsencode(path), _MASK)) < 0:
        log.debug("cannot watch %s (%s); polling", path, os.strerror(ctypes.get_errno()))
        os.close(fd)
        return None
    return DirectoryWatch(fd, path)
