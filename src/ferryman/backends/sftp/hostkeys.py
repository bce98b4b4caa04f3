"""SSH host key verification: known_hosts, a pinned fingerprint, accept-new, insecure.

Checked in this order (the first that applies decides):

1. ``fingerprint`` pinned: exactly the key with that SHA-256 fingerprint is trusted;
2. ``insecure``: any key is accepted, with a warning on every connection;
3. ``known_hosts`` (default ``~/.ssh/known_hosts``, plain or hashed entries, ``[host]:port``
   for ports other than 22, as OpenSSH writes them): a listed key is trusted; a different key
   for a listed host is a CHANGED key and always refused; a revoked key is refused; an
   unknown host is refused, or with ``accept_new_host_key`` recorded and trusted (OpenSSH's
   ``StrictHostKeyChecking=accept-new``).

There is no silent trust on first use. A refusal names the offered key's type and fingerprint
and how to pin it. The verifier runs in the event loop thread (``check``); reading and
writing the file happens in the caller's thread (``__init__``, ``record``).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from asyncssh.public_key import get_default_public_key_algs

from ...connection import SftpConnection
from ...errors import ConfigError, HostKeyError
from ...wirelog import WireLog

__all__ = [
    "HostKeyVerifier",
    "OfferedKey",
    "Verdict",
    "default_known_hosts",
    "host_entry_name",
]


class Verdict(enum.StrEnum):
    PINNED = "matches the pinned fingerprint"
    KNOWN = "found in known_hosts"
    RECORDED = "new, accepted and recorded in known_hosts (accept_new_host_key)"
    INSECURE = "NOT VERIFIED (insecure)"
    UNKNOWN = "unknown"
    CHANGED = "CHANGED"
    PIN_MISMATCH = "does not match the pinned fingerprint"
    REVOKED = "revoked in known_hosts"

    @property
    def trusted(self) -> bool:
        return self in (Verdict.PINNED, Verdict.KNOWN, Verdict.RECORDED, Verdict.INSECURE)


@dataclass(frozen=True, slots=True)
class OfferedKey:
    """The host key a server presented: its type and OpenSSH-style SHA-256 fingerprint."""

    algorithm: str
    fingerprint: str
    openssh_line: str  #: ``type base64``, as a known_hosts entry holds it

    @classmethod
    def of(cls, key: asyncssh.SSHKey) -> OfferedKey:
        exported = key.export_public_key("openssh").decode("ascii").split()
        return cls(key.get_algorithm(), key.get_fingerprint("sha256"), " ".join(exported[:2]))


def default_known_hosts() -> Path:
    return Path("~/.ssh/known_hosts").expanduser()


def host_entry_name(host: str, port: int) -> str:
    """How known_hosts names the server: ``host``, or ``[host]:port`` when not on port 22."""
    return host if port == 22 else f"[{host}]:{port}"


def _read_known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    known = asyncssh.SSHKnownHosts()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return known
    except OSError as err:
        raise ConfigError(
            f"cannot read known_hosts file {path}: {err.strerror}",
            hint="check the path and its permissions, or name another file with known_hosts:",
        ) from None
    for line in text.splitlines():
        with contextlib.suppress(ValueError):  # OpenSSH skips lines it cannot parse, so do we
            known.load(line)
    return known


class HostKeyVerifier:
    """Decides whether the key a server offers is trusted; see the module docstring."""

    def __init__(self, conn: SftpConnection, wire: WireLog) -> None:
        self.conn = conn
        self.wire = wire
        self.path = (conn.known_hosts or default_known_hosts()).expanduser()
        self.name = host_entry_name(conn.host, conn.port)
        self.known: list[asyncssh.SSHKey] = []
        self.revoked: list[asyncssh.SSHKey] = []
        self.offered: OfferedKey | None = None
        self.verdict: Verdict | None = None
        if conn.fingerprint is None and not conn.insecure:
            matched = _read_known_hosts(self.path).match(self.name, "", None)
            self.known, self.revoked = list(matched[0]), list(matched[2])

    @property
    def source(self) -> str:
        """What the key is checked against, for the transcript and ``ferryman test``."""
        if self.conn.fingerprint is not None:
            return f"pinned fingerprint {self.conn.fingerprint}"
        if self.conn.insecure:
            return "nothing (insecure)"
        return f"known_hosts {self.path} ({self.name})"

    def host_key_algorithms(self) -> list[str]:
        """Algorithms to offer, those of keys known for this host first (as OpenSSH does), so
        that a server with several host keys presents the one on file."""
        preferred: list[str] = []
        for key in self.known:
            names = [algorithm.decode("ascii") for algorithm in key.sig_algorithms]
            preferred += [name for name in names if name not in preferred]
        defaults = [a.decode("ascii") for a in get_default_public_key_algs()]
        return preferred + [a for a in defaults if a not in preferred]

    def check(self, key: asyncssh.SSHKey) -> bool:
        """Record the verdict on ``key``; True when it is trusted (runs in the loop thread)."""
        offered = self.offered = OfferedKey.of(key)
        if self.conn.fingerprint is not None:
            pinned = offered.fingerprint == self.conn.fingerprint
            self.verdict = Verdict.PINNED if pinned else Verdict.PIN_MISMATCH
        elif self.conn.insecure:
            self.verdict = Verdict.INSECURE
        elif key in self.revoked:
            self.verdict = Verdict.REVOKED
        elif key in self.known:
            self.verdict = Verdict.KNOWN
        elif self.known:
            self.verdict = Verdict.CHANGED
        elif self.conn.accept_new_host_key:
            self.verdict = Verdict.RECORDED
        else:
            self.verdict = Verdict.UNKNOWN
        return self.verdict.trusted

    def after_handshake(self) -> None:
        """Log the verdict; record a newly accepted key (caller's thread, key proven)."""
        offered, verdict = self.offered, self.verdict
        if offered is None or verdict is None:
            return
        shown = f"{offered.algorithm} {offered.fingerprint}"
        if verdict is Verdict.INSECURE:
            self.wire.warning(
                "host key verification is OFF (insecure): accepted %s from %s unchecked; "
                "anyone on the path could intercept this session",
                shown,
                self.name,
            )
        elif verdict is Verdict.RECORDED:
            self.record(offered)
            self.wire.warning("recorded new host key %s for %s in %s", shown, self.name, self.path)
        else:
            self.wire.note("host key %s %s (%s)", shown, verdict.value, self.source)

    def record(self, offered: OfferedKey) -> None:
        """Append ``offered`` to known_hosts (file 0600 and directory 0700 when created)."""
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(mode=0o700, parents=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as file:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # parallel connections append whole lines
                text = self.path.read_text(encoding="utf-8", errors="replace")
                line = f"{self.name} {offered.openssh_line}"
                if line not in text.splitlines():
                    file.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")
        except OSError as err:
            raise ConfigError(
                f"cannot record the host key of {self.name} in {self.path}: {err.strerror}",
                hint="check that the directory is writable, or pin the key with --fingerprint "
                f"{offered.fingerprint}",
            ) from None

    def error(self, where: str) -> HostKeyError:
        """The refusal for an untrusted verdict: what was offered, what to do."""
        offered = self.offered
        if offered is None:
            return HostKeyError(f"the host key of {where} could not be checked")
        shown = f"{offered.algorithm} key {offered.fingerprint}"
        pin_hint = (
            f"pin it with --fingerprint {offered.fingerprint} (fingerprint: in a connections file)"
        )
        if self.verdict is Verdict.PIN_MISMATCH:
            return HostKeyError(
                f"the host key of {where} does not match the pinned fingerprint: the server "
                f"offered {shown}, the pin is {self.conn.fingerprint}",
                hint="someone may be intercepting the connection; if the server's key was "
                "replaced on purpose (confirm with its administrator), update the pin",
                fingerprint=offered.fingerprint,
            )
        if self.verdict is Verdict.CHANGED:
            on_file = ", ".join(
                f"{k.get_algorithm()} {k.get_fingerprint('sha256')}" for k in self.known
            )
            return HostKeyError(
                f"HOST KEY CHANGED for {self.name}: the server offered {shown}, but "
                f"{self.path} holds {on_file}. Someone may be intercepting the connection "
                "(man-in-the-middle), or the server's key was replaced. Refused "
                "(accept_new_host_key never applies to a changed key)",
                hint="confirm the new fingerprint with the server's administrator; if the "
                f"change is expected, remove the old entry (ssh-keygen -R '{self.name}' -f "
                f"{self.path}) or {pin_hint}",
                fingerprint=offered.fingerprint,
            )
        if self.verdict is Verdict.REVOKED:
            return HostKeyError(
                f"the host key of {where} ({shown}) is marked @revoked in {self.path}",
                hint="the key was withdrawn on purpose; ask the server's administrator",
                fingerprint=offered.fingerprint,
            )
        keyscan = f"ssh-keyscan -p {self.conn.port} {self.conn.host} >> {self.path}"
        return HostKeyError(
            f"the host key of {where} is not known: the server offered {shown}, and "
            f"{self.path} has no entry for {self.name}",
            hint=f"check the fingerprint with the server's administrator; if it is right, "
            f"{pin_hint}, or add the key to known_hosts ({keyscan}), or set "
            "accept_new_host_key: true to record it on first connection",
            fingerprint=offered.fingerprint,
        )
