"""Path safety: what may go onto the wire, and what a server's names may do on local disk."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from .errors import ConfigError, ProtocolError

__all__ = [
    "check_remote_path",
    "join_remote",
    "safe_local_child",
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


def safe_local_child(destination: Path, name: str) -> Path:
    """The local path for a server-supplied ``name`` inside ``destination``.

    A hostile or broken server can list names such as ``../../.bashrc``, ``/etc/passwd``,
    ``C:\\x`` or names with control characters (wget CVE-2014-4877, basic-ftp CVE-2026-27699).
    Refuse every such name, then check that the resolved path stays inside ``destination``.
    """
    problem: str | None = None
    if name in ("", ".", ".."):
        problem = "is empty or a dot entry"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator"
    elif _DRIVE.match(name):
        problem = "starts with a drive letter"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "contains control characters"
    if problem is None:
        root = destination.resolve()
        candidate = (root / name).resolve()
        if candidate.parent != root:
            problem = "resolves outside the destination"
        else:
            return root / name
    raise ProtocolError(
        f"refusing server-supplied name {name!r}: it {problem}",
        hint="the server listed a name that could write outside the destination; "
        "the name was skipped",
    )
