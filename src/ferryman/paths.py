"""Path safety: what may go onto the wire, and what a server's names may do on local disk."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from .errors import ConfigError, ProtocolError

__all__ = [
    "LocalDestination",
    "LocalNameError",
    "check_listed_name",
    "check_remote_path",
    "join_remote",
    "listed_name_problem",
    "safe_local_child",
    "safe_local_path",
    "split_remote",
]

_FORBIDDEN_ON_WIRE = {"\r": "CR", "\n": "LF", "\0": "NUL"}
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_remote_path(path: str) -> str:
    """Return ``path`` unchanged, or refuse it when it could inject a command.

    A CR or LF inside a path would end the FTP command early and start another one
    (command injection); NUL truncates paths in C servers. Refuse before anything is sent.
    """
    for char, name in _FORBIDDEN_ON_WIRE.items():
        if char in path:
            raise ConfigError(
                f"remote path {path!r} contains a {name} character",
                hint="paths may not contain CR, LF or NUL; check the path or the variable "
                "that built it",
            )
    return path


def join_remote(directory: str, name: str) -> str:
    """Join a remote directory and a name with ``/`` (never the local separator)."""
    if not directory:
        return name
    return posixpath.join(directory, name)


def split_remote(path: str) -> tuple[str, str]:
    """Split a remote path into (directory, name); ``/a/b`` -> (``/a``, ``b``)."""
    stripped = path.rstrip("/") or path
    return posixpath.split(stripped)


def listed_name_problem(name: str) -> str | None:
    """Why a name from a directory listing is unsafe to use as one path component, or None.

    A hostile or broken server can list names such as ``../../.bashrc``, ``/etc/passwd``,
    ``C:\\x`` or names with control characters (wget CVE-2014-4877, basic-ftp CVE-2026-27699).
    """
    if name in ("", ".", ".."):
        return "is empty or a dot entry"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):  # C0, DEL, C1 (\x9b: CSI)
        return "contains control characters"
    return None


def _refuse(name: str, problem: str) -> ProtocolError:
    return ProtocolError(
        f"refusing server-supplied name {name!r}: it {problem}",
        hint="the server listed a name that could write outside the destination; "
        "the name was skipped",
    )


class LocalNameError(ProtocolError):
    """A name from a server that is not hostile but that the local file system cannot hold
    (longer than its NAME_MAX or PATH_MAX): refused like a hostile name, with its reason."""


def _limits(directory: Path) -> tuple[int, int]:
    """(NAME_MAX, PATH_MAX) in bytes of the file system that holds ``directory`` (or would:
    its nearest existing parent), 255 and 4096 where the system does not say."""
    for where in (directory, *directory.parents):
        try:
            return os.pathconf(where, "PC_NAME_MAX"), os.pathconf(where, "PC_PATH_MAX")
        except (OSError, ValueError):
            continue
    return 255, 4096


def _unfit(name: str, problem: str) -> LocalNameError:
    shown = name if len(name) <= 80 else f"{name[:60]}...{name[-12:]}"
    return LocalNameError(
        f"refusing server-supplied name {shown!r}: it {problem}",
        hint="the local file system cannot hold the name; get that file alone under a shorter "
        "local name (ferryman get URL/NAME LOCAL/SHORTER)",
    )


def check_listed_name(name: str) -> str:
    """Return ``name``, or raise ProtocolError when it is unsafe (see listed_name_problem)."""
    problem = listed_name_problem(name)
    if problem is not None:
        raise _refuse(name, problem)
    return name


class LocalDestination:
    """Where server-supplied relative paths land inside one local ``destination``: every
    part is checked, then the resolved path must stay inside it (a symbolic link already on
    disk cannot lead the write elsewhere).

    The destination and each directory are resolved once, not once per file (resolving
    costs a ``lstat`` per path component: ~15 system calls per file before, 1 now).

    A part longer than the file system's NAME_MAX, or a path longer than its PATH_MAX, is
    refused with :class:`LocalNameError` before any system call sees it; ``reserve`` bytes
    are kept free on the final name (for the copy's temporary suffix).
    """

    def __init__(self, destination: Path, *, reserve: int = 0) -> None:
        self.root = destination.resolve()
        self._dirs: dict[tuple[str, ...], Path] = {(): self.root}
        self._name_max, self._path_max = _limits(self.root)
        self._reserve = reserve

    def _check_lengths(self, relative: str, parts: list[str]) -> None:
        for n, part in enumerate(parts):
            size = len(os.fsencode(part))
            limit = self._name_max - (self._reserve if n == len(parts) - 1 else 0)
            if size > limit:
                raise _unfit(
                    relative,
                    f"is too long for the local file system ({size} bytes in one name; "
                    f"at most {limit})",
                )
        size = len(os.fsencode(str(self.root.joinpath(*parts)))) + self._reserve
        if size >= self._path_max:
            raise _unfit(
                relative,
                f"makes a path too long for the local file system ({size} bytes; "
                f"at most {self._path_max - 1})",
            )

    def path(self, relative: str) -> Path:
        """The local path for ``relative`` (``/``-separated, each part from a listing)."""
        parts = relative.split("/")
        for part in parts:
            check_listed_name(part)
        self._check_lengths(relative, parts)
        try:
            return self._resolved(relative, parts)
        except OSError as err:  # whatever else the file system refuses: this name only
            problem = f"cannot be checked on the local disk ({err.strerror})"
            raise _unfit(relative, problem) from None

    def _resolved(self, relative: str, parts: list[str]) -> Path:
        folders = tuple(parts[:-1])
        parent = self._dirs.get(folders)
        if parent is None:
            parent = self.root.joinpath(*folders).resolve()
            if not parent.is_relative_to(self.root):
                raise _refuse(relative, "resolves outside the destination")
            self._dirs[folders] = parent
        final = parent / parts[-1]
        if final.is_symlink():  # an existing link under the final name: where it leads counts
            target = final.resolve()
            if not target.is_relative_to(self.root) or target == self.root:
                raise _refuse(relative, "resolves outside the destination")
        return self.root.joinpath(*parts)


def safe_local_path(destination: Path, relative: str) -> Path:
    """The local path for ``relative`` inside ``destination`` (see LocalDestination)."""
    return LocalDestination(destination).path(relative)


def safe_local_child(destination: Path, name: str) -> Path:
    """The local path for a server-supplied ``name`` directly inside ``destination``."""
    check_listed_name(name)
    root = destination.resolve()
    if (root / name).resolve().parent != root:
        raise _refuse(name, "resolves outside the destination")
    return root / name
