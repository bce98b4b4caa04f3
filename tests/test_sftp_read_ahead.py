"""Many small SFTP files in flight per worker, their reads opened ahead (issue 19, second pass).

Against a real OpenSSH sshd: a worker takes a window of files, decides each, opens its read at
once and copies them in turn, each through ``copy_file``. What must hold whatever the window:
a refused file in the middle is reported as itself while its neighbours are copied; a
connection that drops mid-window is retried file by file on a fresh connection; Ctrl-C-like
stops close the reads opened ahead; and the landed size still catches a server that kept fewer
bytes than were sent (an in-process asyncssh server that silently drops the last write).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from ferryman.backends.local import LocalBackend
from ferryman.backends.sftp import SftpBackend
from ferryman.backends.sftp.reader import SftpReadStream
from ferryman.errors import PermissionDeniedError, VerificationError
from ferryman.retry import RetryPolicy
from ferryman.transfer import readahead
from ferryman.transfer.copy import PARTIAL_SUFFIX, copy_file
from ferryman.transfer.engine import Job, TransferOptions
from ferryman.transfer.operations import transfer
from ferryman.transfer.report import FileOutcome, Status
from tests.backend_conformance import make_data
from tests.servers.sftp_inprocess import InProcessSftpServer
from tests.servers.sshd import RemoteDir, Sshd
from tests.test_sftp_conformance import sshd_connection

FILES = 48


@pytest.fixture
def files(sshd_workdir: RemoteDir) -> dict[str, bytes]:
    data = {f"f{n:02d}.bin": make_data(3000 + 97 * n, seed=n) for n in range(FILES)}
    for name, content in data.items():
        sshd_workdir.write(f"src/{name}", content)
    return data


@pytest.fixture
def backend(sshd: Sshd) -> Iterator[SftpBackend]:
    backend = SftpBackend(sshd_connection(sshd)).connect()
    yield backend
    backend.close()


def _options(**overrides: Any) -> TransferOptions:
    fields: dict[str, Any] = {"parallel": 16, "retry": RetryPolicy(retries=3, delay=0.01)}
    fields.update(overrides)
    return TransferOptions(**fields)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(PARTIAL_SUFFIX))


def test_the_window_is_used_only_where_many_files_are_in_flight(backend: SftpBackend) -> None:
    assert backend.capabilities.read_ahead
    assert readahead.workers_and_window(16, backend, binary=True) == (4, 4)
    assert readahead.workers_and_window(128, backend, binary=True) == (8, 16)
    assert readahead.workers_and_window(4, backend, binary=True) == (4, 1)  # short round trip
    assert readahead.workers_and_window(64, backend, binary=False) == (64, 1)  # ascii, pgp
    assert readahead.workers_and_window(64, LocalBackend(), binary=True) == (64, 1)


def test_a_refused_file_in_the_middle_is_reported_as_itself(
    backend: SftpBackend,
    sshd_workdir: RemoteDir,
    files: dict[str, bytes],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ferryman")
    (sshd_workdir.local / "src" / "f20.bin").chmod(0)
    out = tmp_path / "out"
    summary = transfer(
        backend, sshd_workdir.remote("src"), LocalBackend(), str(out), _options(), recursive=True
    )
    by_name = {Path(f.source).name: f for f in summary.files}
    refused = by_name.pop("f20.bin")
    assert refused.status is Status.FAILED
    assert isinstance(refused.error, PermissionDeniedError), refused.error
    assert "f20.bin" in refused.error.message and refused.retries == 0  # not retriable
    assert all(f.status is Status.COPIED for f in by_name.values()), summary.files
    for name, content in files.items():
        if name != "f20.bin":
            assert (out / name).read_bytes() == content, name
    assert not (out / "f20.bin").exists()
    assert _leftovers(out) == []
    assert any("reads opened ahead" in line for line in caplog.messages), caplog.messages


def test_a_connection_dropped_mid_window_is_retried_file_by_file(
    sshd: Sshd,
    backend: SftpBackend,
    sshd_workdir: RemoteDir,
    files: dict[str, bytes],
    tmp_path: Path,
) -> None:
    """Every SSH connection is killed right after the 20th read was opened (ahead): that
    read and whatever else was in flight fail as retriable, each file is retried on a fresh
    connection, and every file lands whole; nothing waits for a time-out."""
    out = tmp_path / "out"
    real_open = SftpBackend.open_read_ahead
    calls: list[int] = []
    lock = threading.Lock()

    def open_then_kill(self: SftpBackend, path: str, size: int) -> SftpReadStream:
        stream = real_open(self, path, size)
        with lock:
            calls.append(1)
            if len(calls) == 20:
                assert sshd.kill_sessions()
        return stream

    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SftpBackend, "open_read_ahead", open_then_kill)
        summary = transfer(
            backend,
            sshd_workdir.remote("src"),
            LocalBackend(),
            str(out),
            _options(),
            recursive=True,
        )
    assert time.monotonic() - started < 8, "the loss is noticed at once, not by a time-out"
    assert [f for f in summary.files if f.status is not Status.COPIED] == []
    assert sum(f.retries for f in summary.files) >= 1  # the cut ones were copied again
    for name, content in files.items():
        assert (out / name).read_bytes() == content, name
    assert _leftovers(out) == []


def test_a_stopped_worker_closes_the_reads_it_opened_ahead(
    backend: SftpBackend, sshd_workdir: RemoteDir, files: dict[str, bytes], tmp_path: Path
) -> None:
    """A stop (Ctrl-C in the main thread) between two files of a window: the files not yet
    copied are not reported, and their reads are closed (no handle left open)."""
    opened: list[SftpReadStream] = []
    real_open = SftpBackend.open_read_ahead

    def tracking_open(self: SftpBackend, path: str, size: int) -> SftpReadStream:
        stream = real_open(self, path, size)
        opened.append(stream)
        return stream

    class Interrupt:
        def started(self, job: Job, offset: int) -> None:
            pass

        def advanced(self, job: Job, nbytes: int) -> None:
            pass

        def finished(self, outcome: FileOutcome) -> None:
            if threading.current_thread() is threading.main_thread():
                raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SftpBackend, "open_read_ahead", tracking_open)
        with pytest.raises(KeyboardInterrupt):
            transfer(
                backend,
                sshd_workdir.remote("src"),
                LocalBackend(),
                str(tmp_path / "out"),
                _options(),
                recursive=True,
                events=Interrupt(),
            )
    assert len(opened) > 4  # windows were opened ahead
    assert all(stream.closed for stream in opened)
    assert _leftovers(tmp_path / "out") == []


#: the offset from which _DroppingSftp answers WRITEs without writing them
_DROP_AT = 1 << 20


class _DroppingSftp(asyncssh.SFTPServer):
    """asyncssh's SFTP server, but a WRITE at or beyond :data:`_DROP_AT` is answered OK and
    not written: the bytes the client sent did not all land."""

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        if offset >= _DROP_AT:
            return len(data)
        return int(super().write(file_obj, offset, data))  # type: ignore[arg-type]


def test_the_landed_size_still_catches_a_write_the_server_dropped(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    data = make_data((1 << 20) + 5000, seed=7)
    (tmp_path / "up.bin").write_bytes(data)
    server = InProcessSftpServer(root, handler=_DroppingSftp).start()
    try:
        backend = SftpBackend(server.connection()).connect()
        try:
            with pytest.raises(VerificationError) as caught:
                copy_file(LocalBackend(), str(tmp_path / "up.bin"), backend, "/up.bin")
        finally:
            backend.close()
    finally:
        server.stop()
    assert f"holds {_DROP_AT} bytes, {len(data)} were sent" in caught.value.message
    assert not (root / "up.bin").exists()
    assert [p for p in os.listdir(root) if p.endswith(PARTIAL_SUFFIX)] == []


def _read_all(stream: SftpReadStream) -> bytes:
    data = bytearray()
    chunk = memoryview(bytearray(65536))
    with stream:
        while count := stream.readinto(chunk):
            data += chunk[:count]
    return bytes(data)


@pytest.mark.parametrize(
    ("listed", "now"),
    [(5000, 5000), (0, 0), (5000, 9000), (8192, 8192), (8192, 12000), (4096 * 5, 4096 * 5 + 1)],
)
def test_a_read_opened_with_the_listed_size_reads_the_file_as_it_is(
    sshd: Sshd, sshd_workdir: RemoteDir, listed: int, now: int
) -> None:
    """No FSTAT: the listing's size ends the read only when a short read confirms it; a
    file that grew since (also by exactly one request) is read whole."""
    backend = SftpBackend(sshd_connection(sshd, chunk_size=4096)).connect()
    try:
        data = make_data(now, seed=now)
        sshd_workdir.write("grown.bin", data)
        assert _read_all(backend.open_read_ahead(sshd_workdir.remote("grown.bin"), listed)) == data
    finally:
        backend.close()


def test_a_read_opened_with_a_listed_size_that_shrank_fails_the_copy(
    backend: SftpBackend, sshd_workdir: RemoteDir, tmp_path: Path
) -> None:
    sshd_workdir.write("shrunk.bin", make_data(3000))
    path = sshd_workdir.remote("shrunk.bin")
    entry = backend.stat(path)
    object.__setattr__(entry, "size", 5000)  # as an older listing said
    with pytest.raises(VerificationError) as caught:
        copy_file(
            backend,
            path,
            LocalBackend(),
            str(tmp_path / "shrunk.bin"),
            source_entry=entry,
            opened=backend.open_read_ahead(path, 5000),
        )
    assert "copied 3000 bytes, but the source has 5000" in caught.value.message
    assert not (tmp_path / "shrunk.bin").exists() and _leftovers(tmp_path) == []
