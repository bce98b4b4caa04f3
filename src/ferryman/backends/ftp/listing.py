"""Parse FTP directory listings: MLSD/MLST fact lines (RFC 3659) and LIST output.

MLSD is machine-readable and preferred. LIST output is not standardised (RFC 959 leaves its
format to the server); the two layouts met in practice are UNIX ``ls -l`` and DOS/IIS. LIST
times are in the server's local time zone, which FTP offers no way to learn, so they are
taken as UTC; ``Entry.mtime_precision`` tells callers how coarse they are, not the zone.

Server output never makes these functions raise: a line they cannot read gives ``None``.
Names decoded with ``errors="surrogateescape"`` pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ..base import Entry, EntryType

__all__ = ["parse_list", "parse_list_line", "parse_mlsd", "parse_mlsd_line"]

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
#: how far past ``now`` an ``ls -l`` date without a year may lie (clock skew, time zones)
_FUTURE_SLACK = timedelta(days=1)
_SKIPPED_NAMES = frozenset({".", ".."})

# --- MLSD / MLST (RFC 3659 section 7) ---------------------------------------------------

_MODIFY = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?")
_SLINK = re.compile(r"os\.unix=(?:slink|symlink)(?::(?P<target>.*))?", re.IGNORECASE | re.DOTALL)
_FACTS_START = re.compile(r"[^\s;=]+=[^\s;]*;")
_OCTAL_MODE = re.compile(r"[0-7]{1,6}")


def parse_mlsd_line(line: str) -> Entry | None:
    """One ``fact=value;...; name`` line as an Entry; None for ``.``/``..`` or bad lines."""
    line = _strip_mlst_indent(line.rstrip("\r\n"))
    facts_part, space, name = line.partition(" ")  # RFC 3659 7.2: the name is all after SP
    if not space or not name or name in _SKIPPED_NAMES:
        return None
    facts = _parse_facts(facts_part)
    if facts is None:
        return None
    kind, target = _mlsd_type(facts.get("type", ""))
    if kind is None:
        return None
    mtime = _parse_modify(facts.get("modify", ""))
    return Entry(
        name=name,
        type=kind,
        # "sizd" (directory size) is a non-RFC fact from ProFTPD/Pure-FTPd
        size=_to_int(facts.get("size", facts.get("sizd", ""))),
        mtime=mtime,
        mtime_precision=1 if mtime is not None else None,
        permissions=_mode_to_symbolic(facts.get("unix.mode", "")),
        link_target=target,
        facts=facts,
    )


def parse_mlsd(lines: Iterable[str]) -> list[Entry]:
    """The entries of an MLSD reply, without ``.``, ``..`` and unreadable lines."""
    return [entry for entry in map(parse_mlsd_line, lines) if entry is not None]


def _strip_mlst_indent(line: str) -> str:
    # RFC 3659 7.2: an MLST reply indents its fact line with one space (empty facts otherwise)
    if line.startswith(" ") and _FACTS_START.match(line, 1):
        return line[1:]
    return line


def _parse_facts(part: str) -> dict[str, str] | None:
    facts: dict[str, str] = {}
    for item in part.split(";"):  # some servers omit the final ";" the RFC requires
        if not item:
            continue
        key, equals, value = item.partition("=")
        if not equals or not key:
            return None
        facts[key.lower()] = value  # RFC 3659 7.1: fact names are case-insensitive
    return facts


def _mlsd_type(value: str) -> tuple[EntryType | None, str | None]:
    """The entry type and link target; type None means "skip" (cdir/pdir)."""
    lowered = value.lower()  # RFC 3659 7.5.1: type values are case-insensitive
    if lowered in ("cdir", "pdir"):
        return None, None
    if lowered == "file":
        return EntryType.FILE, None
    if lowered == "dir":
        return EntryType.DIR, None
    # "OS.unix=slink:target" (RFC 3659 examples, vsftpd/ProFTPD); "symlink" from Pure-FTPd
    link = _SLINK.fullmatch(value)
    if link:
        return EntryType.LINK, link.group("target") or None
    return EntryType.OTHER, None


def _parse_modify(value: str) -> datetime | None:
    match = _MODIFY.fullmatch(value)  # RFC 3659 2.3: YYYYMMDDHHMMSS[.sss], always UTC
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micro = int((match.group(7) or "").ljust(6, "0")[:6])
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:
        return None


def _mode_to_symbolic(value: str) -> str | None:
    """``unix.mode`` (octal, e.g. ``0644``) as ``ls -l`` spells it: ``rw-r--r--``."""
    if not _OCTAL_MODE.fullmatch(value):
        return None
    mode = int(value, 8)
    chars = [c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx")]
    for index, bit, lower in ((2, 0o4000, "s"), (5, 0o2000, "s"), (8, 0o1000, "t")):
        if mode & bit:
            chars[index] = lower if chars[index] == "x" else lower.upper()
    return "".join(chars)


def _to_int(value: str) -> int | None:
    # str.isdigit() also accepts non-ASCII digits that int() may refuse
    return int(value) if value.isascii() and value.isdigit() else None


# --- LIST (no standard; RFC 959 4.1.3 leaves the format to the server) -------------------

_UNIX = re.compile(
    r"(?P<mode>[a-zA-Z-][rwxsStTlL-]{9})"
    r"[+@.]?\s+"  # ACL / extended-attribute / SELinux-context marker after the mode
    r"\d+\s+(?P<owner>\S+)\s+(?:(?P<group>\S+)\s+)?"  # some servers omit the group column
    r"(?:(?P<size>\d+)|\d+,\s*\d+)\s+"  # device files show "major, minor" instead of a size
    r"(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+"
    r"(?:(?P<hour>\d{1,2}):(?P<minute>\d{2})|(?P<year>\d{4}))"
    r" (?P<name>.+)"  # exactly one separator: the name keeps its leading/double spaces
)
_DOS = re.compile(
    r"(?P<month>\d{2})-(?P<day>\d{2})-(?P<year>\d{4}|\d{2})\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?: ?(?P<ampm>[AP]M))?\s+"  # IIS: "05:06PM"
    r"(?:(?P<dir><DIR>)\s+|(?P<size>\d+) )(?P<name>.+)",
    re.IGNORECASE,
)


def parse_list_line(line: str, now: datetime) -> Entry | None:
    """One LIST line (UNIX ``ls -l`` or DOS/IIS style) as an Entry; None if unreadable.

    ``now`` (naive means UTC) dates ``ls -l`` lines that show a time but no year. Listed
    times are the server's local time, unknown to FTP, and are taken as UTC.
    """
    line = line.rstrip("\r\n")
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    unix = _UNIX.fullmatch(line)
    if unix is not None:
        return _unix_entry(unix, now)
    dos = _DOS.fullmatch(line)
    if dos is not None:
        return _dos_entry(dos)
    return None  # includes "total 12" and server chatter


def parse_list(lines: Iterable[str], now: datetime | None = None) -> list[Entry]:
    """The entries of a LIST reply, without ``.``, ``..`` and unreadable lines."""
    when = now if now is not None else datetime.now(UTC)
    return [entry for line in lines if (entry := parse_list_line(line, when)) is not None]


def _unix_entry(match: re.Match[str], now: datetime) -> Entry | None:
    mode, name = match.group("mode"), match.group("name")
    kind = {"d": EntryType.DIR, "-": EntryType.FILE, "l": EntryType.LINK}.get(
        mode[0], EntryType.OTHER
    )
    target = None
    if kind is EntryType.LINK:
        name, arrow, rest = name.partition(" -> ")  # first arrow: targets may contain " -> "
        target = rest if arrow else None
    if name in _SKIPPED_NAMES or not name:
        return None
    mtime, precision = _unix_time(match, now)
    if mtime is None:
        return None
    facts = {"unix.owner": match.group("owner")}
    if match.group("group") is not None:
        facts["unix.group"] = match.group("group")
    size = match.group("size")
    return Entry(
        name=name,
        type=kind,
        size=int(size) if size is not None else None,
        mtime=mtime,
        mtime_precision=precision,
        permissions=mode[1:],
        link_target=target,
        facts=facts,
    )


def _unix_time(match: re.Match[str], now: datetime) -> tuple[datetime | None, int]:
    month = _MONTHS.get(match.group("month").lower())  # English names, any case
    day = int(match.group("day"))
    if month is None:
        return None, 0
    if match.group("year") is not None:  # ls shows the year for files older than ~6 months
        try:
            return datetime(int(match.group("year")), month, day, tzinfo=UTC), 86400
        except ValueError:
            return None, 0
    hour, minute = int(match.group("hour")), int(match.group("minute"))
    return _infer_year(month, day, hour, minute, now), 60


def _infer_year(month: int, day: int, hour: int, minute: int, now: datetime) -> datetime | None:
    """The latest such date not more than a day after ``now`` (ls omits the year if recent)."""
    # next year first: a server clock or zone ahead of ours at New Year; back 9 for Feb 29
    for year in range(now.year + 1, now.year - 9, -1):
        try:
            candidate = datetime(year, month, day, hour, minute, tzinfo=UTC)
        except ValueError:
            if not 0 <= hour < 24 or not 0 <= minute < 60 or day > 29:
                return None
            continue  # Feb 29 outside a leap year
        if candidate <= now + _FUTURE_SLACK:
            return candidate
    return None


def _dos_entry(match: re.Match[str]) -> Entry | None:
    name = match.group("name")
    if name in _SKIPPED_NAMES:
        return None
    year = int(match.group("year"))
    if len(match.group("year")) == 2:  # two-digit years pivot at 1970, as IIS and ls do
        year += 1900 if year >= 70 else 2000
    hour = _dos_hour(int(match.group("hour")), match.group("ampm"))
    if hour is None:
        return None
    try:
        mtime = datetime(
            year,
            int(match.group("month")),
            int(match.group("day")),
            hour,
            int(match.group("minute")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    size = match.group("size")
    return Entry(
        name=name,
        type=EntryType.DIR if match.group("dir") else EntryType.FILE,
        size=int(size) if size is not None else None,
        mtime=mtime,
        mtime_precision=60,
    )


def _dos_hour(hour: int, ampm: str | None) -> int | None:
    if ampm is None:  # IIS with 24-hour clock setting
        return hour
    if hour > 12:
        return None
    # 12AM is midnight, 12PM noon
    return hour % 12 + (12 if ampm.upper() == "PM" else 0)
