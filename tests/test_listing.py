"""Tests for ferryman.backends.ftp.listing: MLSD fact lines and LIST (UNIX, DOS) output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ferryman.backends.base import Entry, EntryType
from ferryman.backends.ftp.listing import (
    parse_list,
    parse_list_line,
    parse_mlsd,
    parse_mlsd_line,
)

NOW = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)


def utc(*fields: int) -> datetime:
    """datetime(year, month, day[, hour, minute, second, microsecond]) in UTC."""
    return datetime(*fields).replace(tzinfo=UTC)  # type: ignore[arg-type]


def unix(line: str, now: datetime = NOW) -> Entry:
    entry = parse_list_line(line, now)
    assert entry is not None, line
    return entry


def mlsd(line: str) -> Entry:
    entry = parse_mlsd_line(line)
    assert entry is not None, line
    return entry


# --- MLSD ---------------------------------------------------------------------------------


def test_mlsd_file_basic() -> None:
    entry = mlsd("type=file;size=1234;modify=20251123050607;perm=adfrw; report.csv")
    assert entry.name == "report.csv"
    assert entry.type is EntryType.FILE
    assert entry.size == 1234
    assert entry.mtime == utc(2025, 11, 23, 5, 6, 7)
    assert entry.mtime_precision == 1
    assert entry.permissions is None
    assert entry.link_target is None
    assert entry.facts == {
        "type": "file",
        "size": "1234",
        "modify": "20251123050607",
        "perm": "adfrw",
    }


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("type=file;size=1; name with spaces.txt", "name with spaces.txt"),
        ("type=file;size=1; semi;colon;name", "semi;colon;name"),
        ("type=file;size=1; a=b; c", "a=b; c"),
        ("type=file;size=1;  leading space", " leading space"),
        ("type=file;size=1; trailing space ", "trailing space "),
        ("type=file;size=1; ; ", "; "),
    ],
)
def test_mlsd_name_is_everything_after_first_space(line: str, name: str) -> None:
    assert mlsd(line).name == name


def test_mlsd_fact_names_are_case_insensitive() -> None:
    entry = mlsd("Type=DIR;Modify=20240229235959;UNIX.mode=0755;Sizd=4096; Data")
    assert entry.type is EntryType.DIR
    assert entry.mtime == utc(2024, 2, 29, 23, 59, 59)
    assert entry.permissions == "rwxr-xr-x"
    assert entry.size == 4096
    assert set(entry.facts) == {"type", "modify", "unix.mode", "sizd"}
    assert entry.facts["type"] == "DIR"


@pytest.mark.parametrize(
    "line",
    [
        "type=cdir;modify=20251123050607; .",
        "type=pdir;modify=20251123050607; ..",
        "type=cdir; /home/user",
        "TYPE=CDir; /home/user",
        "type=dir; .",
        "type=dir; ..",
    ],
)
def test_mlsd_cdir_pdir_dropped(line: str) -> None:
    assert parse_mlsd_line(line) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20251123050607.123", utc(2025, 11, 23, 5, 6, 7, 123000)),
        ("20251123050607.5", utc(2025, 11, 23, 5, 6, 7, 500000)),
        ("20251123050607.123456789", utc(2025, 11, 23, 5, 6, 7, 123456)),
        ("19700101000000", utc(1970, 1, 1)),
    ],
)
def test_mlsd_modify_with_fraction(value: str, expected: datetime) -> None:
    entry = mlsd(f"type=file;modify={value}; f")
    assert entry.mtime == expected
    assert entry.mtime is not None and entry.mtime.tzinfo is UTC


@pytest.mark.parametrize("value", ["2025112305060", "20251323050607", "20250230000000", "x", ""])
def test_mlsd_bad_modify_keeps_entry_without_mtime(value: str) -> None:
    entry = mlsd(f"type=file;size=3;modify={value}; f")
    assert entry.mtime is None
    assert entry.mtime_precision is None
    assert entry.size == 3


@pytest.mark.parametrize(
    ("type_fact", "kind", "target"),
    [
        ("OS.unix=slink:/var/data/target", EntryType.LINK, "/var/data/target"),
        ("os.UNIX=SLINK:rel/a:b", EntryType.LINK, "rel/a:b"),
        ("OS.unix=slink", EntryType.LINK, None),
        ("OS.unix=symlink:t", EntryType.LINK, "t"),
        ("OS.unix=chr-dev", EntryType.OTHER, None),
        ("weird", EntryType.OTHER, None),
        ("FILE", EntryType.FILE, None),
    ],
)
def test_mlsd_types(type_fact: str, kind: EntryType, target: str | None) -> None:
    entry = mlsd(f"type={type_fact};size=1; thing")
    assert entry.type is kind
    assert entry.link_target == target


def test_mlsd_missing_type_is_other() -> None:
    entry = mlsd("size=5; thing")
    assert entry.type is EntryType.OTHER
    assert entry.size == 5


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("0644", "rw-r--r--"),
        ("755", "rwxr-xr-x"),
        ("04755", "rwsr-xr-x"),
        ("02750", "rwxr-s---"),
        ("01777", "rwxrwxrwt"),
        ("07000", "--S--S--T"),
        ("0", "---------"),
        ("abc", None),
        ("0999", None),
    ],
)
def test_mlsd_unix_mode(mode: str, expected: str | None) -> None:
    assert mlsd(f"type=file;unix.mode={mode}; f").permissions == expected


def test_mlsd_size_preferred_over_sizd_and_bad_size_is_none() -> None:
    assert mlsd("type=file;size=7;sizd=9; f").size == 7
    assert mlsd("type=file;size=-1; f").size is None
    assert mlsd("type=file;size=\u00b2; f").size is None


def test_mlsd_missing_final_semicolon_tolerated() -> None:
    entry = mlsd("type=file;size=10 name")
    assert (entry.name, entry.size) == ("name", 10)


def test_mlsd_mlst_indented_line() -> None:
    entry = mlsd(" type=file;size=10; /srv/data/a b.txt")
    assert entry.name == "/srv/data/a b.txt"
    assert entry.size == 10


def test_mlsd_empty_facts() -> None:
    entry = mlsd(" bare name")
    assert entry.name == "bare name"
    assert entry.type is EntryType.OTHER
    assert entry.facts == {}


def test_mlsd_crlf_stripped() -> None:
    assert mlsd("type=file;size=1; f.txt\r\n").name == "f.txt"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "nospace",
        "type=file;size=1;",
        "type=file; ",
        "garbage line here",
        "type=file;=x; f",
        "type=file;novalue; f",
        "250 End",
    ],
)
def test_mlsd_malformed_lines(line: str) -> None:
    assert parse_mlsd_line(line) is None


def test_mlsd_surrogateescape_name() -> None:
    raw = "type=file;size=3; caf\xe9 \xff.txt".encode("latin-1")
    line = raw.decode("utf-8", errors="surrogateescape")
    entry = mlsd(line)
    assert entry.name == "caf\udce9 \udcff.txt"
    assert entry.name.encode("utf-8", errors="surrogateescape") == b"caf\xe9 \xff.txt"


def test_parse_mlsd_skips_nones() -> None:
    lines = [
        "type=cdir;modify=20251123050607; .",
        "type=pdir;modify=20251123050607; ..",
        "type=dir;modify=20251123050607; sub",
        "garbage",
        "type=file;size=2;modify=20251123050607; a file",
    ]
    assert [e.name for e in parse_mlsd(lines)] == ["sub", "a file"]
    assert parse_mlsd(iter([])) == []


# --- LIST, UNIX ---------------------------------------------------------------------------


def test_unix_with_group() -> None:
    entry = unix("-rw-r--r--   1 owner group   1234 Nov 23 05:06 file name.csv")
    assert entry.name == "file name.csv"
    assert entry.type is EntryType.FILE
    assert entry.size == 1234
    assert entry.permissions == "rw-r--r--"
    assert entry.mtime == utc(2025, 11, 23, 5, 6)
    assert entry.mtime_precision == 60
    assert entry.facts == {"unix.owner": "owner", "unix.group": "group"}


def test_unix_without_group() -> None:
    entry = unix("-rw-r--r-- 1 owner 1234 Nov 23 2025 x")
    assert entry.name == "x"
    assert entry.size == 1234
    assert entry.mtime == utc(2025, 11, 23)
    assert entry.mtime_precision == 86400
    assert entry.facts == {"unix.owner": "owner"}


@pytest.mark.parametrize(
    ("line", "owner", "group"),
    [
        ("-rw-r--r--    1 1000     1000         42 Dec 01 12:00 n", "1000", "1000"),
        ("-rw-r--r--    1 1000         42 Dec 01 12:00 n", "1000", None),
    ],
)
def test_unix_numeric_owner(line: str, owner: str, group: str | None) -> None:
    entry = unix(line)
    assert entry.size == 42
    assert entry.facts.get("unix.owner") == owner
    assert entry.facts.get("unix.group") == group


def test_unix_directory() -> None:
    entry = unix("drwxr-xr-x    2 ftp      ftp          4096 Jan 01  2020 incoming")
    assert entry.type is EntryType.DIR
    assert entry.is_dir
    assert entry.name == "incoming"
    assert entry.mtime == utc(2020, 1, 1)


@pytest.mark.parametrize(
    ("line", "name", "target"),
    [
        ("lrwxrwxrwx 1 root root 7 Nov 23 05:06 bin -> usr/bin", "bin", "usr/bin"),
        ("lrwxrwxrwx 1 root root 7 Nov 23 05:06 a b -> c d", "a b", "c d"),
        ("lrwxrwxrwx 1 root root 7 Nov 23 05:06 a -> b -> c", "a", "b -> c"),
        ("lrwxrwxrwx 1 root root 7 Nov 23 05:06 noarrow", "noarrow", None),
    ],
)
def test_unix_symlink(line: str, name: str, target: str | None) -> None:
    entry = unix(line)
    assert entry.type is EntryType.LINK
    assert entry.name == name
    assert entry.link_target == target


def test_unix_arrow_in_regular_file_name_kept() -> None:
    entry = unix("-rw-r--r-- 1 u g 7 Nov 23 05:06 a -> b")
    assert entry.name == "a -> b"
    assert entry.link_target is None


@pytest.mark.parametrize(
    "name",
    [" leading", "  two leading", "double  space", "trailing ", "tab\there", "x"],
)
def test_unix_spaces_in_names_preserved(name: str) -> None:
    assert unix(f"-rw-r--r--   1 owner group   1234 Nov 23 05:06 {name}").name == name
    assert unix(f"-rw-r--r--   1 owner group   1234 Nov 23  2025 {name}").name == name


def test_unix_name_looking_like_columns() -> None:
    entry = unix("-rw-r--r-- 1 u g 5 Nov 23 05:06 1 u g 9 Dec 01 2020 z")
    assert entry.name == "1 u g 9 Dec 01 2020 z"
    assert entry.size == 5


@pytest.mark.parametrize(
    ("listed", "now", "expected"),
    [
        ("Dec 31 23:59", NOW, utc(2025, 12, 31, 23, 59)),
        ("Jan 02 10:00", NOW, utc(2026, 1, 2, 10, 0)),  # an hour ahead: within the slack
        ("Jan 03 08:59", NOW, utc(2026, 1, 3, 8, 59)),  # just within a day
        ("Jan 03 09:01", NOW, utc(2025, 1, 3, 9, 1)),  # just beyond a day
        ("Mar 01 10:00", NOW, utc(2025, 3, 1, 10, 0)),
        ("Jan  1 00:00", NOW, utc(2026, 1, 1, 0, 0)),
        # server clock/zone ahead at New Year: next year's date within the slack
        ("Jan 01 07:00", utc(2025, 12, 31, 23, 0), utc(2026, 1, 1, 7, 0)),
        # Feb 29 resolves to the latest leap year not in the future
        ("Feb 29 12:00", utc(2025, 1, 10), utc(2024, 2, 29, 12, 0)),
        ("Feb 29 12:00", utc(2028, 3, 1), utc(2028, 2, 29, 12, 0)),
    ],
)
def test_unix_year_inference(listed: str, now: datetime, expected: datetime) -> None:
    entry = unix(f"-rw-r--r-- 1 u g 1 {listed} f", now)
    assert entry.mtime == expected
    assert entry.mtime_precision == 60
    assert entry.mtime is not None and entry.mtime <= now + timedelta(days=1)


def test_unix_naive_and_non_utc_now() -> None:
    line = "-rw-r--r-- 1 u g 1 Jan 02 10:00 f"
    assert unix(line, datetime(2026, 1, 2, 9, 0)).mtime == utc(2026, 1, 2, 10, 0)
    plus_two = timezone(timedelta(hours=2))
    aware = datetime(2026, 1, 2, 11, 0, tzinfo=plus_two)  # 09:00 UTC
    assert unix(line, aware).mtime == utc(2026, 1, 2, 10, 0)


@pytest.mark.parametrize("month", ["nov", "NOV", "Nov", "nOv"])
def test_unix_month_case_insensitive(month: str) -> None:
    assert unix(f"-rw-r--r-- 1 u g 1 {month} 23 2025 f").mtime == utc(2025, 11, 23)


@pytest.mark.parametrize(
    ("line", "kind", "size"),
    [
        ("crw-rw-rw-   1 root     root       1,   3 Nov 23 05:06 null", EntryType.OTHER, None),
        ("brw-rw----   1 root     disk       8,0 Nov 23 05:06 sda", EntryType.OTHER, None),
        ("srwxrwxrwx   1 root     root          0 Nov 23 05:06 sock", EntryType.OTHER, 0),
        ("prw-r--r--   1 root     root          0 Nov 23 05:06 fifo", EntryType.OTHER, 0),
    ],
)
def test_unix_device_and_special_files(line: str, kind: EntryType, size: int | None) -> None:
    entry = unix(line)
    assert entry.type is kind
    assert entry.size == size


@pytest.mark.parametrize("marker", ["+", "@", "."])
def test_unix_acl_markers(marker: str) -> None:
    entry = unix(f"-rw-r--r--{marker} 1 owner group 10 Nov 23 05:06 acl file")
    assert entry.permissions == "rw-r--r--"
    assert entry.name == "acl file"


@pytest.mark.parametrize("mode", ["-rwsr-sr-t", "-rwSr-Sr-T", "drwxrwxrwt"])
def test_unix_special_mode_bits(mode: str) -> None:
    assert unix(f"{mode} 1 u g 1 Nov 23 05:06 f").permissions == mode[1:]


@pytest.mark.parametrize(
    "line",
    [
        "drwxr-xr-x 2 u g 4096 Nov 23 05:06 .",
        "drwxr-xr-x 2 u g 4096 Nov 23 05:06 ..",
        "total 12",
        "total 0",
    ],
)
def test_unix_skipped_lines(line: str) -> None:
    assert parse_list_line(line, NOW) is None


def test_unix_crlf_stripped() -> None:
    assert unix("-rw-r--r-- 1 u g 1 Nov 23 05:06 f\r\n").name == "f"


# --- LIST, DOS / IIS ----------------------------------------------------------------------


def test_dos_directory() -> None:
    entry = parse_list_line("11-23-26  05:06AM       <DIR>          name", NOW)
    assert entry is not None
    assert entry.type is EntryType.DIR
    assert entry.name == "name"
    assert entry.size is None
    assert entry.mtime == utc(2026, 11, 23, 5, 6)
    assert entry.mtime_precision == 60


def test_dos_file_with_spaces_four_digit_year() -> None:
    entry = parse_list_line("11-23-2026  05:06PM   1234 name with spaces.txt", NOW)
    assert entry is not None
    assert entry.type is EntryType.FILE
    assert entry.name == "name with spaces.txt"
    assert entry.size == 1234
    assert entry.mtime == utc(2026, 11, 23, 17, 6)


@pytest.mark.parametrize(
    ("date", "year"),
    [("11-23-26", 2026), ("11-23-69", 2069), ("11-23-70", 1970), ("11-23-99", 1999)],
)
def test_dos_two_digit_years(date: str, year: int) -> None:
    entry = parse_list_line(f"{date}  05:06AM   1 f", NOW)
    assert entry is not None and entry.mtime is not None
    assert entry.mtime.year == year


@pytest.mark.parametrize(
    ("clock", "hour", "minute"),
    [
        ("05:06AM", 5, 6),
        ("05:06 AM", 5, 6),
        ("05:06PM", 17, 6),
        ("05:06 PM", 17, 6),
        ("05:06pm", 17, 6),
        ("12:00AM", 0, 0),
        ("12:30AM", 0, 30),
        ("12:00PM", 12, 0),
        ("12:59 PM", 12, 59),
        ("01:00PM", 13, 0),
        ("11:59PM", 23, 59),
        ("23:10", 23, 10),
        ("00:05", 0, 5),
    ],
)
def test_dos_clock(clock: str, hour: int, minute: int) -> None:
    entry = parse_list_line(f"02-21-18  {clock}                  689 iisstart.htm", NOW)
    assert entry is not None
    assert entry.name == "iisstart.htm"
    assert entry.size == 689
    assert entry.mtime == utc(2018, 2, 21, hour, minute)


def test_dos_lowercase_dir_and_spaces_in_dir_name() -> None:
    entry = parse_list_line("01-01-2020  23:10       <dir>          My Documents", NOW)
    assert entry is not None
    assert entry.is_dir
    assert entry.name == "My Documents"


@pytest.mark.parametrize(
    "line",
    [
        "11-23-26  05:06AM       <DIR>          .",
        "11-23-26  05:06AM       <DIR>          ..",
        "11-23-26  13:06PM   1 invalid-hour",
        "13-23-26  05:06AM   1 invalid-month",
        "02-30-26  05:06AM   1 invalid-day",
        "11-23-26  24:00   1 invalid-24h",
        "11-23-26  05:06AM",
    ],
)
def test_dos_rejected(line: str) -> None:
    assert parse_list_line(line, NOW) is None


# --- LIST, general ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "",
        " ",
        "garbage",
        "226 Transfer complete",
        "-rw-r--r-- 1 u g 1 Foo 23 05:06 bad-month",
        "-rw-r--r-- 1 u g 1 Nov 31 05:06 bad-day",
        "-rw-r--r-- 1 u g 1 Nov 23 25:06 bad-hour",
        "-rw-r--r-- 1 u g 1 Nov 23 2025",
        "-rw-r--r-- 1 u g 1 Nov 23 05:06 ",
        "-rw-r--r-- u g 1 Nov 23 05:06 no-link-count",
        "-rw-r--r-- 1 u g x Nov 23 05:06 bad-size",
        "-rw-r--r-- 1 u g 1 Nov 23 5:6 bad-time",
        "\udcff\udcfe garbage",
    ],
)
def test_garbage_lines(line: str) -> None:
    assert parse_list_line(line, NOW) is None


@pytest.mark.parametrize(
    "line",
    [
        "-rw-r--r-- 1 u g 3 Nov 23 05:06 caf\udce9 \udcff.txt",
        "11-23-26  05:06AM   3 caf\udce9 \udcff.txt",
    ],
)
def test_list_surrogateescape_name(line: str) -> None:
    entry = parse_list_line(line, NOW)
    assert entry is not None
    assert entry.name == "caf\udce9 \udcff.txt"
    assert entry.name.encode("utf-8", errors="surrogateescape") == b"caf\xe9 \xff.txt"


def test_parse_list_mixed_and_skips() -> None:
    lines = [
        "total 8",
        "drwxr-xr-x 2 u g 4096 Nov 23 05:06 .",
        "drwxr-xr-x 2 u g 4096 Nov 23 05:06 ..",
        "drwxr-xr-x 2 u g 4096 Nov 23 05:06 sub",
        "-rw-r--r-- 1 u g 12 Nov 23 2024 old file",
        "what is this",
        "11-23-26  05:06AM   1234 dos.txt",
    ]
    entries = parse_list(lines, NOW)
    assert [e.name for e in entries] == ["sub", "old file", "dos.txt"]
    assert [e.type for e in entries] == [EntryType.DIR, EntryType.FILE, EntryType.FILE]


def test_parse_list_default_now_never_in_future() -> None:
    (entry,) = parse_list(["-rw-r--r-- 1 u g 1 Jan 01 00:00 f"])
    assert entry.mtime is not None
    assert entry.mtime <= datetime.now(UTC) + timedelta(days=1)
    assert parse_list([]) == []
