"""Segmented downloads (issue 19): one file in N ranges over N connections, published whole.

Against real servers on loopback: vsftpd with explicit FTPS and ``require_ssl_reuse`` (the
ranges stop early, so the FTP data connections are dropped mid-file and the control
connections must stay usable), OpenSSH sshd (with the server-side sha256 check, computed on
the bytes read back), and pyftpdlib. A segment whose connection is killed (sshd's
``kill_sessions``) continues from where it stopped; a copy that gives up leaves only its
contiguous beginning, under the name a resume continues.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from ferryman.backends.base import Backend, Entry, EntryType
from ferryman.backends.ftp import FtpBackend
from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend
from ferryman.backends.sftp import SftpBackend
from ferryman.errors import ConfigError
from ferryman.retry import RetryPolicy
from ferryman.transfer import PARTIAL_SUFFIX, IfExists, Status, Summary, TransferOptions, transfer
from ferryman.transfer.copy import partial_name, source_tag
from ferryman.transfer.segments import (
    AUTO,
    AUTO_SEGMENTS,
    copy_in_segments,
    parse_segments,
    segment_count,
    segment_ranges,
)
from tests.conftest import ServerFactory
from tests.servers.sshd import SHELL_USER, Sshd
from tests.servers.vsftpd import Vsftpd, Workdir
from tests.test_sftp_conformance import sshd_connection
from tests.test_vsftpd import connection as vsftpd_connection

pytestmark = pytest.mark.timeout(120)

BIG = 1_000_003  #: not a multiple of 2, 3 or 4
SMALL = 5_000  #: below the threshold the tests use
MIN_SIZE = 100_000


def used_segments(caplog: pytest.LogCaptureFixture) -> dict[str, int]:
    """Source path -> how many segments its download used, from the transfer log."""
    found = {}
    for record in caplog.records:
        if record.name == "ferryman.transfer" and "segments" in record.getMessage():
            path, _, rest = record.getMessage().partition(": ")
            found[path] = int(rest.split(" in ")[1].split()[0])
    return found


def fetch(src: Backend, source: str, dest: Path, **options: object) -> Summary:
    settings: dict[str, object] = {"segment_min_size": MIN_SIZE, "if_exists": IfExists.OVERWRITE}
    settings.update(options)
    with LocalBackend() as local:
        chosen = TransferOptions(**settings)  # type: ignore[arg-type]
        return transfer(src, source, local, f"{dest}/", chosen, recursive=True)


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(PARTIAL_SUFFIX))


# -- the decisions ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 7, 1000, BIG])
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_ranges_cover_the_file_exactly(size: int, count: int) -> None:
    ranges = segment_ranges(size, min(count, size))
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    lengths = [end - start for start, end in ranges]
    assert max(lengths) - min(lengths) <= 1 and min(lengths) >= 1


class _Far(MemoryBackend):
    round_trip = 0.05  #: what a backend that measures its round trip reports


def test_which_files_are_segmented() -> None:
    big = Entry("f", EntryType.FILE, size=10 * MIN_SIZE)
    small = Entry("f", EntryType.FILE, size=MIN_SIZE - 1)
    remote, local = MemoryBackend(), LocalBackend()
    assert segment_count(4, MIN_SIZE, remote, local, big) == 4
    assert segment_count(4, MIN_SIZE, remote, local, small) == 1  # below the threshold
    assert segment_count(4, MIN_SIZE, local, remote, big) == 1  # an upload: one stream
    assert segment_count(4, MIN_SIZE, remote, local, big, offset=5) == 1  # a resume
    assert segment_count(4, MIN_SIZE, remote, local, big, ascii=True) == 1
    assert segment_count(4, 1, remote, local, Entry("f", EntryType.FILE, size=3)) == 3
    # auto: only when the source knows its round trip and it is long
    assert segment_count(AUTO, MIN_SIZE, remote, local, big) == 1
    assert segment_count(AUTO, MIN_SIZE, _Far(), local, big) == AUTO_SEGMENTS


def test_segment_counts_are_parsed_with_clear_errors() -> None:
    assert parse_segments("auto") == AUTO and parse_segments("3") == 3 and parse_segments(1) == 1
    for bad in ("0", "17", "many", "-2", "2.5"):
        with pytest.raises(ConfigError) as caught:
            parse_segments(bad)
        assert "not a number of segments" in caught.value.message
        assert "1 (one stream) to 16, or auto" in (caught.value.hint or "")


# -- real servers ------------------------------------------------------------------------------


@pytest.mark.vsftpd
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_vsftpd_ftps_segmented_download_is_byte_for_byte(
    vsftpd_explicit: Vsftpd,
    vsftpd_workdir: Workdir,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    count: int,
) -> None:
    big, small = os.urandom(BIG + count), os.urandom(SMALL)
    vsftpd_workdir.write("d/big.bin", big)
    vsftpd_workdir.write("d/small.bin", small)
    caplog.set_level(logging.INFO, "ferryman.transfer")
    with FtpBackend(vsftpd_connection(vsftpd_explicit)) as ftp:
        summary = fetch(ftp, vsftpd_workdir.ftp_path("d"), tmp_path, segments=count, parallel=1)
        # the connection that read the last segment (and dropped no data connection) goes on
        assert ftp.stat(vsftpd_workdir.ftp_path("d/big.bin")).size == len(big)
    assert summary.ok and [f.status for f in summary.files] == [Status.COPIED] * 2
    assert (tmp_path / "big.bin").read_bytes() == big
    assert (tmp_path / "small.bin").read_bytes() == small
    segmented = used_segments(caplog)
    assert list(segmented.values()) == ([count] if count > 1 else [])
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("count", [2, 3])
def test_pyftpdlib_segmented_download_is_byte_for_byte(
    ftp_server: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture, count: int
) -> None:
    served = ftp_server("explicit")
    payload = os.urandom(BIG)
    (served.root / "big.bin").write_bytes(payload)
    caplog.set_level(logging.INFO, "ferryman.transfer")
    with FtpBackend(served.connection()) as ftp:
        summary = fetch(ftp, "/big.bin", tmp_path, segments=count)
    assert summary.ok, summary.files
    assert (tmp_path / "big.bin").read_bytes() == payload
    assert used_segments(caplog) == {"/big.bin": count}


def test_a_dead_copys_longer_temporary_is_cut_first(
    ftp_server: ServerFactory, tmp_path: Path
) -> None:
    """A segments temporary left by a copy that died, longer than the file: its bytes are
    not ours, and the copy must not publish them (the empty one a claim makes is not cut:
    ext4 would write it back at close)."""
    served = ftp_server("none")
    payload = os.urandom(BIG)
    (served.root / "big.bin").write_bytes(payload)
    with FtpBackend(served.connection()) as ftp:
        tag = source_tag(ftp, "/big.bin", BIG)
        leftover = tmp_path / partial_name("big.bin", f"{tag}-segments")
        leftover.write_bytes(b"x" * (BIG + 5000))
        summary = fetch(ftp, "/big.bin", tmp_path, segments=3, retry=RetryPolicy(retries=0))
    assert summary.ok, summary.files
    assert summary.files[0].retries == 0  # right the first time, not after a failed check
    assert (tmp_path / "big.bin").read_bytes() == payload
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_sftp_segmented_download_is_byte_for_byte_and_hash_checked(
    sshd: Sshd, tmp_path: Path, caplog: pytest.LogCaptureFixture, count: int
) -> None:
    remote = sshd.workdir("seg", owner=SHELL_USER)
    big, small = os.urandom(BIG + count), os.urandom(SMALL)
    remote.write("big.bin", big)
    remote.write("small.bin", small)
    conn = sshd_connection(
        sshd, user=SHELL_USER, password=None, private_key=sshd.keys["plain"], exec_hash=True
    )
    caplog.set_level(logging.INFO, "ferryman.transfer")
    with SftpBackend(conn) as sftp:
        summary = fetch(sftp, remote.path, tmp_path, segments=count, parallel=1)
    assert summary.ok, [f.reason for f in summary.files]
    assert (tmp_path / "big.bin").read_bytes() == big
    assert (tmp_path / "small.bin").read_bytes() == small
    # the server's sha256 of the source against the hash of the bytes that landed
    assert {f.verified for f in summary.files} == {"size+sha256"}
    assert list(used_segments(caplog).values()) == ([count] if count > 1 else [])
    assert temporaries(tmp_path) == []


def _kill_when_started(sshd: Sshd, directory: Path, at: int) -> threading.Thread:
    """Kill sshd's sessions once the segments' temporary holds ``at`` bytes."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            parts = [p for p in directory.glob(f"*-segments{PARTIAL_SUFFIX}")]
            if any(p.stat().st_blocks * 512 >= at for p in parts if p.exists()):
                sshd.kill_sessions()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_sftp_a_killed_segment_is_retried_and_the_copy_verified(
    sshd: Sshd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = sshd.workdir("segkill")
    payload = os.urandom(6_000_000)
    remote.write("big.bin", payload)
    # a short read-ahead, so that the kill finds reads in flight, not all data here
    conn = sshd_connection(sshd, retries=3, retry_delay=0.1, requests_in_flight=1)
    caplog.set_level(logging.INFO, "ferryman.transfer")
    watcher = _kill_when_started(sshd, tmp_path, 600_000)
    with SftpBackend(conn) as sftp:
        # slowed down (5 MB/s for the file), so the kill lands mid-way
        summary = fetch(
            sftp,
            f"{remote.path}/big.bin",
            tmp_path,
            segments=3,
            bwlimit_per_file=5_000_000,
            retry=RetryPolicy(retries=3, delay=0.1),
        )
    watcher.join(5)
    [outcome] = summary.files
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.retries >= 1  # at least one segment was cut and continued
    assert "retry 1 of 3 of a segment" in caplog.text
    assert (tmp_path / "big.bin").read_bytes() == payload
    assert temporaries(tmp_path) == []


def test_sftp_a_copy_that_gives_up_keeps_only_its_contiguous_beginning(
    sshd: Sshd, tmp_path: Path
) -> None:
    remote = sshd.workdir("seggive")
    payload = os.urandom(6_000_000)
    remote.write("big.bin", payload)
    source = f"{remote.path}/big.bin"
    watcher = _kill_when_started(sshd, tmp_path, 600_000)
    with SftpBackend(sshd_connection(sshd, requests_in_flight=1)) as sftp:
        options = {"segments": 3, "bwlimit_per_file": 5_000_000, "if_exists": IfExists.RESUME}
        summary = fetch(sftp, source, tmp_path, retry=RetryPolicy(retries=0), **options)
        watcher.join(5)
        assert summary.files[0].status is Status.FAILED
        # no file with holes is left: the segments' temporary became the resumable one,
        # holding exactly the source's first bytes
        tag = source_tag(sftp, source, len(payload))
        kept = tmp_path / partial_name("big.bin", tag)
        assert temporaries(tmp_path) == [kept.name]
        held = kept.read_bytes()
        assert 0 < len(held) < len(payload) and payload.startswith(held)
    with SftpBackend(sshd_connection(sshd)) as sftp:  # the next run continues it, one stream
        again = fetch(sftp, source, tmp_path, if_exists=IfExists.RESUME, segments=3)
    [outcome] = again.files
    assert outcome.status is Status.COPIED and outcome.resumed_from == len(held)
    assert (tmp_path / "big.bin").read_bytes() == payload
    assert temporaries(tmp_path) == []


def test_ctrl_c_removes_the_segments_temporary(ftp_server: ServerFactory, tmp_path: Path) -> None:
    """Ctrl-C (in the caller's thread, which reads the last segment) stops every segment
    and removes the temporary, as an interrupted single-stream copy does."""
    served = ftp_server("explicit")
    (served.root / "big.bin").write_bytes(os.urandom(BIG))
    caller, seen = threading.current_thread(), [0]
    dest = tmp_path / "dest"
    dest.mkdir()

    def progress(nbytes: int) -> None:
        if threading.current_thread() is caller:
            seen[0] += nbytes
            if seen[0] > 100_000:
                raise KeyboardInterrupt

    with FtpBackend(served.connection()) as ftp, pytest.raises(KeyboardInterrupt):
        copy_in_segments(
            ftp,
            "/big.bin",
            LocalBackend(),
            str(dest / "big.bin"),
            segments=3,
            segment_min_size=1,
            replace=True,
            cleanup=False,  # even so: an interrupted copy is not kept (as copy_file)
            progress=progress,
        )
    assert list(dest.iterdir()) == []
