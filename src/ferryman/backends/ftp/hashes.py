"""Server-side file hashes over FTP: ``HASH`` and the older ``XSHA256``/``XSHA1``/``XMD5``/``XCRC``.

``HASH`` (draft-bryan-ftpext-hash-02) is announced in FEAT with the algorithms the server
offers, the selected one marked with ``*`` (``HASH SHA-256*;SHA-1;MD5;CRC32``); another one is
selected with ``OPTS HASH <name>``; the reply is ``213 <name> <start>-<end> <hex> <path>``. The
older commands (announced as FEAT lines of their own) take a path and answer ``250 <hex>`` or
``213 <hex>``, depending on the server.

Nothing in a reply is trusted that does not look exactly like what was asked for: the right
reply code, the algorithm that was selected, a range from byte 0, a hexadecimal digest of the
algorithm's length. Anything else is a :class:`ProtocolError`: a wrong "verified" hash is worse
than none. Algorithms are named as hashlib names them (``sha256``, ``sha1``, ``md5``) plus
``crc32``; digests are returned in lower case (CRC32 as eight hex digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...errors import ProtocolError
from .translate import reply_code

if TYPE_CHECKING:
    from .session import FtpSession

__all__ = [
    "HEX_LENGTHS",
    "HashSupport",
    "hash_support",
    "normalize_algorithm",
    "parse_hash_reply",
    "parse_x_reply",
    "server_hash",
]

#: hex digits of each algorithm's digest, strongest first (the order ``capabilities.hashes``
#: lists them in, so a caller taking the first one takes the strongest)
HEX_LENGTHS: dict[str, int] = {
    "sha512": 128,
    "sha384": 96,
    "sha256": 64,
    "sha224": 56,
    "sha1": 40,
    "md5": 32,
    "crc32": 8,
}
# names in the HASH feature (draft-bryan-ftpext-hash-02, section 3.1, and the IANA hash names)
_HASH_NAMES = {
    "SHA-512": "sha512",
    "SHA-384": "sha384",
    "SHA-256": "sha256",
    "SHA-224": "sha224",
    "SHA-1": "sha1",
    "MD5": "md5",
    "CRC32": "crc32",
}
# the pre-draft commands; each is a FEAT line of its own where announced
_X_COMMANDS = {
    "XSHA512": "sha512",
    "XSHA256": "sha256",
    "XSHA1": "sha1",
    "XMD5": "md5",
    "XCRC": "crc32",
}
_HEX = re.compile(r"[0-9A-Fa-f]+")
_RANGE = re.compile(r"(\d+)-(\d+)")


@dataclass(frozen=True)
class HashSupport:
    """What a server's FEAT reply says about hashes."""

    #: algorithm -> its name for ``HASH``/``OPTS HASH``
    hash_names: dict[str, str] = field(default_factory=dict)
    #: the algorithm ``HASH`` uses before any ``OPTS HASH`` (the one FEAT marks with ``*``)
    selected: str | None = None
    #: algorithm -> the older command that computes it
    x_commands: dict[str, str] = field(default_factory=dict)

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Every algorithm offered either way, strongest first."""
        offered = self.hash_names.keys() | self.x_commands.keys()
        return tuple(name for name in HEX_LENGTHS if name in offered)


def hash_support(features: dict[str, str]) -> HashSupport:
    """Parse the hash-related features of :func:`~.session.parse_feat`'s result.

    Tolerant of case, spaces and unknown names (ignored): ``HASH sha-256 ; MD5*`` works.
    """
    names: dict[str, str] = {}
    selected = None
    for item in features.get("HASH", "").split(";"):
        star = item.strip().endswith("*")
        name = item.strip().rstrip("*").strip().upper()
        algorithm = _HASH_NAMES.get(name)
        if algorithm is None:
            continue
        names[algorithm] = name
        if star:
            selected = algorithm
    x_commands = {alg: cmd for cmd, alg in _X_COMMANDS.items() if cmd in features}
    return HashSupport(names, selected, x_commands)


def normalize_algorithm(algorithm: str) -> str:
    """``"SHA-256"``, ``"sha256"``, ``"SHA256"`` -> ``"sha256"``; unknown names unchanged."""
    return algorithm.strip().lower().replace("-", "").replace("_", "")


def _check_hex(text: str, algorithm: str, reply: str, what: str) -> str:
    length = HEX_LENGTHS[algorithm]
    if not _HEX.fullmatch(text) or len(text) != length:
        raise ProtocolError(
            f"{what}: the server's reply {reply!r} does not hold a {algorithm} digest "
            f"({length} hex digits); not trusted",
            reply_text=reply,
        )
    return text.lower()


def parse_hash_reply(reply: str, algorithm: str, name: str, what: str) -> str:
    """The digest of a ``HASH`` reply ``213 <name> <start>-<end> <hex> <path>``.

    The path (which may hold spaces) is not needed; the range must start at byte 0 (a range
    elsewhere would be the hash of part of the file). Drafts before -02 had no range; a reply
    without one is accepted.
    """
    parts = reply.split(" ", 4)
    if "\n" in reply or reply_code(reply) != 213 or len(parts) < 3:
        raise ProtocolError(f"{what}: unexpected reply {reply!r}", reply_text=reply)
    if parts[1].upper() != name:
        raise ProtocolError(
            f"{what}: asked for {name} but the server answered with {parts[1]!r}",
            reply_text=reply,
        )
    digest = parts[2]
    range_match = _RANGE.fullmatch(parts[2])
    if range_match is not None:
        if int(range_match.group(1)) != 0:
            raise ProtocolError(
                f"{what}: the server hashed from byte {range_match.group(1)}, not the whole file",
                reply_text=reply,
            )
        digest = parts[3] if len(parts) > 3 else ""
    return _check_hex(digest, algorithm, reply, what)


def parse_x_reply(reply: str, algorithm: str, what: str) -> str:
    """The digest of an ``XSHA256``/``XSHA1``/``XMD5``/``XCRC`` reply: ``250 <hex>`` or
    ``213 <hex>`` (servers differ), nothing but the digest's first word trusted."""
    words = reply.split()
    if "\n" in reply or reply_code(reply) not in (213, 250) or len(words) < 2:
        raise ProtocolError(f"{what}: unexpected reply {reply!r}", reply_text=reply)
    return _check_hex(words[1], algorithm, reply, what)


def server_hash(session: FtpSession, support: HashSupport, path: str, algorithm: str) -> str:
    """Ask the server for the digest of ``path``; ``algorithm`` must be offered (``support``).

    ``HASH`` is preferred (the draft the field converged on); ``OPTS HASH`` is sent only when
    another algorithm is currently selected on this session.
    """
    what = f"hash {path}"
    name = support.hash_names.get(algorithm)
    if name is not None:
        current = session.hash_selected or support.selected
        if current != algorithm:
            session.command(f"OPTS HASH {name}")
            session.hash_selected = algorithm
        return parse_hash_reply(session.command(f"HASH {path}"), algorithm, name, what)
    command = support.x_commands[algorithm]
    return parse_x_reply(session.command(f"{command} {path}"), algorithm, what)
