"""Local and in-memory backends, and the safe copy between any two backends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman.backends.base import Backend, EntryType
from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend
from ferryman.errors import (
    ConnectError,
    NotFoundError,
    RemoteError,
    TargetExistsError,
    TransferError,
)
from ferryman.transfer.copy import PARTIAL_SUFFIX, copy_file


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Backend, str]]:
    if request.param == "local":
        with LocalBackend() as backend:
            yield backend, str(tmp_path)
    else:
        memory = MemoryBackend()
        memory.makedirs("/base")
        with memory:
            yield memory, "/base"


def test_namespace_and_data_round_trip(store: tuple[Backend, str]) -> None:
    backend, base = store
    payload = os.urandom(2 * 1024 * 1024 + 5)
    backend.mkdir(f"{base}/d")
    with backend.open_write(f"{base}/d/f é.bin") as out:
        out.write(payload)
    assert backend.stat(f"{base}/d/f é.bin").size == len(payload)
    assert backend.stat(f"{base}/d").type is EntryType.DIR
    with backend.open_read(f"{base}/d/f é.bin", offset=100) as reader:
        data = bytearray()
        while chunk := reader.read(1 << 16):
            data += chunk
    assert bytes(data) == payload[100:]
    with backend.open_write(f"{base}/d/f é.bin", offset=10) as out:
        out.write(b"tail")
    assert backend.stat(f"{base}/d/f é.bin").size == 14
    with pytest.raises(RemoteError):
        backend.rmdir(f"{base}/d")  # not empty
    backend.rename(f"{base}/d/f é.bin", f"{base}/d/g")
    assert [e.name for e in backend.list(f"{base}/d")] == ["g"]
    backend.remove(f"{base}/d/g")
    backend.rmdir(f"{base}/d")
    for action in (backend.stat, backend.list, backend.remove, backend.open_read):
        with pytest.raises(NotFoundError):
            action(f"{base}/d")


def test_copy_publishes_only_verified_files(store: tuple[Backend, str]) -> None:
    backend, base = store
    source = MemoryBackend()
    source.put("/src.csv", b"a,b\n" * 1000)
    result = copy_file(source, "/src.csv", backend, f"{base}/dst.csv")
    assert result.bytes == 4000 and result.verified == "size+sha256"  # memory offers sha256
    with pytest.raises(TargetExistsError):
        copy_file(source, "/src.csv", backend, f"{base}/dst.csv")
    source.put("/src.csv", b"new")
    copy_file(source, "/src.csv", backend, f"{base}/dst.csv", replace=True)
    assert backend.stat(f"{base}/dst.csv").size == 3
    assert [e.name for e in backend.list(base)] == ["dst.csv"]


def test_copy_interrupted_midway_leaves_nothing_under_any_name() -> None:
    source, target = MemoryBackend(), MemoryBackend()
    source.put("/big.bin", os.urandom(1_000_000))
    source.truncate_reads_after("/big.bin", 300_000)
    with pytest.raises(TransferError) as info:
        copy_file(source, "/big.bin", target, "/big.bin", chunk_size=65536)
    assert info.value.retriable
    assert not target.exists("/big.bin")
    assert not any(PARTIAL_SUFFIX in path for path in target.snapshot())
    copy_file(source, "/big.bin", target, "/big.bin")  # the re-run converges
    assert target.get("/big.bin") == source.get("/big.bin")


def test_memory_fault_injection() -> None:
    memory = MemoryBackend()
    memory.fail_next("list", ConnectError("dropped"), times=2)
    for _ in range(2):
        with pytest.raises(ConnectError):
            memory.list("/")
    assert memory.list("/") == []
    assert memory.calls["list"] == 3


def test_local_disk_full_is_not_retriable(tmp_path: Path) -> None:
    with LocalBackend() as disk, pytest.raises(TransferError) as info:
        with disk.open_write("/dev/full") as out:
            out.write(b"x" * 1_000_000)
    assert not info.value.retriable
