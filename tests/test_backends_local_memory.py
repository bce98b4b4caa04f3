"""LocalBackend and MemoryBackend: the conformance suite, then what is special to each."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ferryman.backends.base import Capabilities, EntryType, NotSupportedError
from ferryman.backends.local import LocalBackend, translate_os_error
from ferryman.backends.memory import OPERATIONS, MemoryBackend
from ferryman.errors import (
    ConfigError,
    ConnectError,
    NotFoundError,
    PermissionDeniedError,
    RemoteError,
    TransferError,
)

from .backend_conformance import BackendAndRoot, BackendConformance, read_file, write_file

WHEN = datetime(2022, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

# -- the conformance suite ---------------------------------------------------------------------


class TestLocalConformance(BackendConformance):
    @pytest.fixture
    def backend_and_root(self, tmp_path: Path) -> Iterator[BackendAndRoot]:
        (tmp_path / "root").mkdir()
        with LocalBackend() as backend:
            yield backend, str(tmp_path / "root")


class TestLocalRelativePathsConformance(BackendConformance):
    @pytest.fixture
    def backend_and_root(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[BackendAndRoot]:
        monkeypatch.chdir(tmp_path)
        Path("relative root").mkdir()
        with LocalBackend(fsync=True) as backend:
            yield backend, "relative root"


class TestMemoryConformance(BackendConformance):
    @pytest.fixture
    def backend_and_root(self) -> Iterator[BackendAndRoot]:
        with MemoryBackend() as backend:
            backend.makedirs("/srv/conformance")
            yield backend, "/srv/conformance"


class TestMinimalMemoryConformance(BackendConformance):
    """A backend that promises little: the suite must skip or relax, not fail."""

    @pytest.fixture
    def backend_and_root(self) -> Iterator[BackendAndRoot]:
        minimal = Capabilities(resume_read=False, resume_write=False, mtime_precision=60)
        with MemoryBackend(capabilities=minimal) as backend:
            yield backend, "/"


# -- LocalBackend ------------------------------------------------------------------------------


@pytest.fixture
def local() -> Iterator[LocalBackend]:
    with LocalBackend() as backend:
        yield backend


def test_local_describe_and_capabilities(local: LocalBackend) -> None:
    assert local.describe() == "local"
    caps = local.capabilities
    assert caps.atomic_rename_replace and caps.set_mtime and caps.hashes == ()
    assert caps.mtime_precision == 1


def test_local_symlinks_are_listed_as_links_not_followed(
    local: LocalBackend, tmp_path: Path
) -> None:
    (tmp_path / "real.txt").write_bytes(b"12345")
    (tmp_path / "dir").mkdir()
    (tmp_path / "to-file").symlink_to("real.txt")
    (tmp_path / "to-dir").symlink_to("dir")
    (tmp_path / "dangling").symlink_to("nowhere")
    entries = {entry.name: entry for entry in local.list(str(tmp_path))}
    assert sorted(entries) == ["dangling", "dir", "real.txt", "to-dir", "to-file"]
    for name, target in (("to-file", "real.txt"), ("to-dir", "dir"), ("dangling", "nowhere")):
        assert (entries[name].type, entries[name].link_target) == (EntryType.LINK, target)
        assert local.stat(str(tmp_path / name)).type is EntryType.LINK
    assert entries["real.txt"].type is EntryType.FILE and entries["real.txt"].size == 5
    assert entries["dir"].type is EntryType.DIR and entries["dir"].size is None
    assert entries["real.txt"].permissions is not None
    assert entries["real.txt"].permissions.startswith("-")
    local.remove(str(tmp_path / "to-dir"))  # removes the link, not the directory
    assert (tmp_path / "dir").is_dir()


def test_local_disk_full_is_a_permanent_transfer_error(local: LocalBackend) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full (which answers every write with ENOSPC) is not available")
    with pytest.raises(TransferError) as info, local.open_write("/dev/full") as stream:
        stream.write(b"x" * 100_000)
    assert not info.value.retriable
    assert "no space left" in info.value.message and "/dev/full" in info.value.message
    assert info.value.hint is not None and info.value.hint.startswith("free space on")
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root ignores permission bits, so a read-only directory cannot deny access",
)
def test_local_permission_denied(local: LocalBackend, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionDeniedError, match="permission denied"):
            local.open_write(str(locked / "f"))
        with pytest.raises(PermissionDeniedError):
            local.mkdir(str(locked / "d"))
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (errno.ENOENT, NotFoundError, "no such file"),
        (errno.EACCES, PermissionDeniedError, "permission denied"),
        (errno.EPERM, PermissionDeniedError, "permission denied"),
        (errno.EROFS, PermissionDeniedError, "read-only"),
        (errno.EDQUOT, TransferError, "quota"),
        (errno.EIO, TransferError, "input/output"),
        (errno.EISDIR, RemoteError, "is a directory"),
        (errno.ENOTDIR, RemoteError, "not a directory"),
        (errno.EEXIST, RemoteError, "already exists"),
        (errno.ENOTEMPTY, RemoteError, "not empty"),
        (errno.EXDEV, RemoteError, "different file systems"),
        (errno.EBUSY, RemoteError, os.strerror(errno.EBUSY)),
    ],
)
def test_local_error_translation(code: int, error: type[RemoteError], words: str) -> None:
    translated = translate_os_error(OSError(code, os.strerror(code)), "rename", "/a", target="/b")
    assert type(translated) is error
    assert translated.message.startswith("cannot rename '/a' to '/b': ")
    assert words in translated.message
    assert translated.hint
    assert not translated.retriable


def test_local_errors_name_the_path(local: LocalBackend, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x")
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: local.mkdir(str(tmp_path / "d")), "already exists"),
        (lambda: local.rmdir(str(tmp_path / "d")), "not empty"),
        (lambda: local.remove(str(tmp_path / "d")), "is a directory"),
        (lambda: local.list(str(tmp_path / "d" / "f")), "not a directory"),
        (lambda: local.open_write(str(tmp_path / "d")), "is a directory"),
    ]
    for action, words in cases:
        with pytest.raises(RemoteError) as info:
            action()
        assert words in info.value.message and str(tmp_path / "d") in info.value.message


def test_local_resume_write_truncates_to_the_offset(local: LocalBackend, tmp_path: Path) -> None:
    path = tmp_path / "partial"
    path.write_bytes(b"0123456789stale")
    write_file(local, str(path), b"ABC", offset=10)
    assert path.read_bytes() == b"0123456789ABC"
    with pytest.raises(RemoteError, match="has only 13 bytes"):
        local.open_write(str(path), offset=14)
    with pytest.raises(NotFoundError):
        local.open_write(str(tmp_path / "missing"), offset=1)
    with pytest.raises(RemoteError, match="has only 13 bytes"):
        local.open_read(str(path), offset=14)
    with pytest.raises(ValueError, match="offset"):
        local.open_read(str(path), offset=-1)


def test_local_set_mtime_is_exact_and_needs_an_aware_time(
    local: LocalBackend, tmp_path: Path
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    local.set_mtime(str(path), WHEN)
    assert local.stat(str(path)).mtime == WHEN
    local.set_mtime(str(path), WHEN.astimezone(timezone(timedelta(hours=9))))
    assert local.stat(str(path)).mtime == WHEN
    with pytest.raises(ValueError, match="timezone-aware"):
        local.set_mtime(str(path), WHEN.replace(tzinfo=None))
    with pytest.raises(NotFoundError):
        local.set_mtime(str(tmp_path / "missing"), WHEN)


def test_local_rejects_nul_and_offers_no_hashes(local: LocalBackend, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NUL"):
        local.stat("a\0b")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(NotSupportedError):
        local.hash(str(tmp_path / "f"), "sha256")


def test_local_rename_replaces_atomically(local: LocalBackend, tmp_path: Path) -> None:
    (tmp_path / "new").write_bytes(b"new")
    (tmp_path / "old").write_bytes(b"old")
    with local.open_read(str(tmp_path / "old")) as reader:
        local.rename(str(tmp_path / "new"), str(tmp_path / "old"))
        assert reader.read() == b"old"  # an open reader keeps the replaced file
    assert (tmp_path / "old").read_bytes() == b"new"


# -- MemoryBackend -----------------------------------------------------------------------------


def test_memory_fail_next_counts_times_and_filters_paths() -> None:
    memory = MemoryBackend()
    memory.put("/a", b"a")
    memory.put("/b", b"b")
    memory.fail_next("stat", ConnectError("dropped"), times=2, path="/a")
    memory.stat("/b")
    for _ in range(2):
        with pytest.raises(ConnectError, match="dropped") as info:
            memory.stat("a")  # relative paths are relative to /
        assert info.value.retriable
    assert memory.stat("/a").size == 1
    assert memory.calls["stat"] == 4
    with pytest.raises(ValueError, match="unknown operation"):
        memory.fail_next("chmod", ConnectError("x"))
    assert "close_write" in OPERATIONS


def test_memory_fault_on_stream_operations() -> None:
    memory = MemoryBackend()
    memory.fail_next("write", TransferError("426 aborted"))
    with pytest.raises(TransferError, match="426"), memory.open_write("/f") as stream:
        stream.write(b"lost")
    memory.fail_next("close_write", TransferError("451 local error"))
    with pytest.raises(TransferError, match="451"):
        write_file(memory, "/f", b"data")
    assert memory.get("/f") == b"data"  # the bytes arrived; only the final reply failed
    memory.fail_next("read", TransferError("timeout"))
    with pytest.raises(TransferError, match="timeout"):
        read_file(memory, "/f")
    assert read_file(memory, "/f") == b"data"


def test_memory_truncated_read_then_resume() -> None:
    memory = MemoryBackend()
    data = os.urandom(250_000)
    memory.put("/big", data)
    memory.truncate_reads_after("/big", 100_000)
    received = bytearray()
    with pytest.raises(TransferError) as info, memory.open_read("/big") as stream:
        while chunk := stream.read(32_768):
            received += chunk
    assert info.value.retriable and "after 100000 bytes" in info.value.message
    assert bytes(received) == data[:100_000]
    received += read_file(memory, "/big", offset=len(received))
    assert bytes(received) == data


def test_memory_truncated_reads_every_time_and_writes() -> None:
    memory = MemoryBackend()
    memory.put("/f", b"x" * 100)
    memory.truncate_reads_after("/f", 10, times=None)
    for _ in range(3):
        with pytest.raises(TransferError):
            read_file(memory, "/f")
    memory.clear_faults()
    assert read_file(memory, "/f") == b"x" * 100
    memory.truncate_writes_after("/up", 5)
    with pytest.raises(TransferError, match="writing"):
        write_file(memory, "/up", b"0123456789", chunk=3)
    assert memory.get("/up") == b"01234"  # what arrived before the drop stays
    write_file(memory, "/up", b"56789", offset=5)
    assert memory.get("/up") == b"0123456789"


def test_memory_hashes_and_mtimes() -> None:
    ticks = iter(datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=n) for n in range(100))
    memory = MemoryBackend(clock=lambda: next(ticks))
    memory.put("/f", b"hash me")
    assert memory.hash("/f", "md5") == hashlib.md5(b"hash me").hexdigest()  # noqa: S324
    assert memory.hash("/f", "sha256") == hashlib.sha256(b"hash me").hexdigest()
    with pytest.raises(NotSupportedError):
        memory.hash("/f", "sha1")
    assert memory.stat("/f").mtime == datetime(2020, 1, 1, 0, 0, 1, tzinfo=UTC)
    memory.set_mtime("/f", WHEN)
    assert memory.stat("/f").mtime == WHEN.replace(microsecond=0)  # precision 1 s
    coarse = MemoryBackend(capabilities=Capabilities(mtime_precision=60))
    coarse.put("/f", b"", mtime=WHEN)
    [entry] = coarse.list("/")
    assert (entry.mtime, entry.mtime_precision) == (WHEN.replace(second=0, microsecond=0), 60)
    with pytest.raises(NotSupportedError):
        coarse.set_mtime("/f", WHEN)
    with pytest.raises(NotSupportedError):
        coarse.hash("/f", "sha256")


def test_memory_capabilities_are_enforced() -> None:
    memory = MemoryBackend(capabilities=Capabilities(resume_read=False, resume_write=False))
    memory.put("/a", b"a")
    memory.put("/b", b"b")
    with pytest.raises(NotSupportedError):
        memory.open_read("/a", offset=1)
    with pytest.raises(NotSupportedError):
        memory.open_write("/a", offset=1)
    with pytest.raises(RemoteError, match="already exists"):
        memory.rename("/a", "/b")  # no atomic_rename_replace: refuse, as some servers do
    assert memory.snapshot() == {"/a": b"a", "/b": b"b"}


def test_memory_semantics_match_local() -> None:
    memory = MemoryBackend()
    memory.put("/d/sub/f", b"x")
    assert memory.snapshot() == {"/d": None, "/d/sub": None, "/d/sub/f": b"x"}
    assert memory.exists("/d/sub") and not memory.exists("/nope")
    with pytest.raises(RemoteError, match="not a directory"):
        memory.stat("/d/sub/f/deeper")
    with pytest.raises(RemoteError, match=r"(?i)invalid argument"):
        memory.rename("/d", "/d/sub/inside")
    with pytest.raises(RemoteError, match="is a directory"):
        memory.rename("/d/sub/f", "/d")
    with pytest.raises(RemoteError, match="not empty"):
        memory.rename("/d/sub", "/d")
    memory.rename("/d/sub/f", "/d/sub/f")  # same path: nothing happens
    with pytest.raises(ConfigError):
        memory.put("/a\0b", b"")
    assert memory.describe() == "memory"


def test_memory_is_thread_safe() -> None:
    memory = MemoryBackend()
    memory.mkdir("/t")
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            data = bytes([number]) * 200_000
            for round_ in range(5):
                path = f"/t/{number}-{round_}"
                write_file(memory, path, data, chunk=4096)
                assert read_file(memory, path, buffer_size=4096) == data
                memory.rename(path, path + ".done")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(memory.list("/t")) == 40
