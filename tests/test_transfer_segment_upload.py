"""Segmented uploads (issue 19): one local file written in N ranges over N SSH connections
into one remote temporary, then checked and published whole.

Against OpenSSH sshd on loopback (with the server-side sha256 check where asked): the bytes
land exactly, the temporary is gone afterwards, a leftover temporary of a dead copy holding
more bytes is cut first, a segment whose connection is killed is written again and the copy
still verified, and a copy that gives up leaves no file with holes behind.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from ferryman.backends.base import Backend, Capabilities, Entry, EntryType
from ferryman.backends.ftp import FtpBackend
from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend
from ferryman.backends.sftp import SftpBackend
from ferryman.retry import RetryPolicy
from ferryman.transfer import PARTIAL_SUFFIX, IfExists, Status, Summary, TransferOptions, transfer
from ferryman.transfer.copy import partial_name, source_tag
from ferryman.transfer.segments import AUTO, AUTO_SEGMENTS, segment_count
from tests.conftest import ServerFactory
from tests.servers.sshd import SHELL_USER, Sshd
from tests.test_sftp_conformance import sshd_connection
from tests.test_transfer_segments import _kill_when_started, used_segments

pytestmark = pytest.mark.timeout(120)

BIG = 1_000_003  #: not a multiple of 2, 3 or 4
MIN_SIZE = 100_000


def send(local_dir: Path, dst: Backend, target: str, **options: object) -> Summary:
    settings: dict[str, object] = {"segment_min_size": MIN_SIZE, "if_exists": IfExists.OVERWRITE}
    settings.update(options)
    with LocalBackend() as local:
        chosen = TransferOptions(**settings)  # type: ignore[arg-type]
        return transfer(local, f"{local_dir}/", dst, f"{target}/", chosen, recursive=True)


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(PARTIAL_SUFFIX))


class _Ranges(MemoryBackend):
    """A destination that writes ranges and knows its round trip (as SFTP does)."""

    round_trip = 0.05

    def __init__(self) -> None:
        super().__init__()
        self.capabilities = Capabilities(write_ranges=True)


def test_which_uploads_are_segmented() -> None:
    big = Entry("f", EntryType.FILE, size=10 * MIN_SIZE)
    local = LocalBackend()
    assert segment_count(4, MIN_SIZE, local, _Ranges(), big) == 4
    assert segment_count(AUTO, MIN_SIZE, local, _Ranges(), big) == AUTO_SEGMENTS
    # a destination that cannot write ranges (FTP, memory): one stream
    assert segment_count(4, MIN_SIZE, local, MemoryBackend(), big) == 1
    # remote to remote: one stream, whatever either side can do
    assert segment_count(4, MIN_SIZE, MemoryBackend(), _Ranges(), big) == 1


def test_ftp_does_not_write_ranges(ftp_server: ServerFactory) -> None:
    with FtpBackend(ftp_server("none").connection()) as ftp:
        assert not ftp.capabilities.write_ranges


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_sftp_segmented_upload_is_byte_for_byte_and_hash_checked(
    sshd: Sshd, tmp_path: Path, caplog: pytest.LogCaptureFixture, count: int
) -> None:
    remote = sshd.workdir("segup", owner=SHELL_USER)
    big, small = os.urandom(BIG + count), os.urandom(5_000)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "small.bin").write_bytes(small)
    conn = sshd_connection(
        sshd, user=SHELL_USER, password=None, private_key=sshd.keys["plain"], exec_hash=True
    )
    caplog.set_level(logging.INFO, "ferryman.transfer")
    with SftpBackend(conn) as sftp:
        summary = send(tmp_path, sftp, remote.path, segments=count, parallel=1)
    assert summary.ok, [f.reason for f in summary.files]
    assert (remote.local / "big.bin").read_bytes() == big
    assert (remote.local / "small.bin").read_bytes() == small
    # the server's sha256 of what landed against the hash of the local file
    assert {f.verified for f in summary.files} == {"size+sha256"}
    assert list(used_segments(caplog).values()) == ([count] if count > 1 else [])
    assert temporaries(remote.local) == []


def test_a_dead_copys_longer_temporary_is_cut_first(sshd: Sshd, tmp_path: Path) -> None:
    remote = sshd.workdir("segleft")
    payload = os.urandom(BIG)
    (tmp_path / "big.bin").write_bytes(payload)
    with SftpBackend(sshd_connection(sshd)) as sftp:
        tag = source_tag(LocalBackend(), str(tmp_path / "big.bin"), BIG)
        leftover = partial_name("big.bin", f"{tag}-segments")
        remote.write(leftover, b"x" * (BIG + 5000))  # more bytes than the file: not ours
        summary = send(tmp_path, sftp, remote.path, segments=3)
    assert summary.ok, [f.reason for f in summary.files]
    assert (remote.local / "big.bin").read_bytes() == payload
    assert temporaries(remote.local) == []


def test_a_killed_segment_is_written_again_and_the_copy_verified(
    sshd: Sshd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = sshd.workdir("segupkill")
    payload = os.urandom(6_000_000)
    (tmp_path / "big.bin").write_bytes(payload)
    conn = sshd_connection(sshd, retries=3, retry_delay=0.1, requests_in_flight=1)
    caplog.set_level(logging.INFO, "ferryman.transfer")
    watcher = _kill_when_started(sshd, remote.local, 600_000)
    with SftpBackend(conn) as sftp:
        # slowed down (5 MB/s for the file), so the kill lands mid-way
        summary = send(
            tmp_path,
            sftp,
            remote.path,
            segments=3,
            bwlimit_per_file=5_000_000,
            retry=RetryPolicy(retries=3, delay=0.1),
        )
    watcher.join(5)
    [outcome] = summary.files
    assert outcome.status is Status.COPIED, outcome.reason
    assert outcome.retries >= 1
    assert "retry 1 of 3 of a segment" in caplog.text
    assert (remote.local / "big.bin").read_bytes() == payload
    assert temporaries(remote.local) == []


def test_a_copy_that_gives_up_leaves_no_file_with_holes(sshd: Sshd, tmp_path: Path) -> None:
    remote = sshd.workdir("segupgive")
    payload = os.urandom(6_000_000)
    (tmp_path / "big.bin").write_bytes(payload)
    watcher = _kill_when_started(sshd, remote.local, 600_000)
    with SftpBackend(sshd_connection(sshd, requests_in_flight=1)) as sftp:
        summary = send(
            tmp_path,
            sftp,
            remote.path,
            segments=3,
            bwlimit_per_file=5_000_000,
            if_exists=IfExists.RESUME,  # even so: a segmented temporary is never kept
            retry=RetryPolicy(retries=0),
        )
    watcher.join(5)
    [outcome] = summary.files
    assert outcome.status is Status.FAILED
    assert "big.bin" not in os.listdir(remote.local)
    assert temporaries(remote.local) == []


def test_auto_segments_are_the_servers_backends_choice(sshd: Sshd) -> None:
    """SFTP reads use 4 segments (one thread decrypts them all), its writes 8."""
    big = Entry("f", EntryType.FILE, size=10 * MIN_SIZE)
    sftp, local = SftpBackend(sshd_connection(sshd)), LocalBackend()
    sftp.round_trip = 0.05  # as measured over a long link
    assert segment_count(AUTO, MIN_SIZE, sftp, local, big) == 4
    assert segment_count(AUTO, MIN_SIZE, local, sftp, big) == 8
    sftp.round_trip = 0.001  # a short round trip: one stream fills the link
    assert segment_count(AUTO, MIN_SIZE, local, sftp, big) == 1
