"""The transfer layer's stream transform (``ferryman.transfer.transform``), with a plain
transform (upper-casing, in Python) on memory backends: targets renamed, the source's size
checked on the bytes read, a failing verdict publishing nothing, a dropped read retried from
byte 0, never resumed. gpg's transform is tested in ``test_pgp_transfer.py``."""

from __future__ import annotations

import pytest

from ferryman.backends.base import ReadStream
from ferryman.backends.memory import MemoryBackend
from ferryman.errors import SignatureError
from ferryman.retry import RetryPolicy
from ferryman.transfer import PARTIAL_SUFFIX, Status, TransferOptions, transfer
from ferryman.transfer.transform import StreamTransform, TransformedStream


class _Upper(TransformedStream):
    def __init__(self, reader: ReadStream, fail: bool) -> None:
        self.reader, self.fail = reader, fail

    def readinto(self, buffer: memoryview) -> int:
        n = self.reader.readinto(buffer)
        buffer[:n] = bytes(buffer[:n]).upper()
        self.source_bytes += n
        self.bytes_transferred += n
        return n

    def close(self) -> None:
        self.reader.close()
        if self.fail:
            raise SignatureError("the verdict is no")
        self.verified = "upper"

    def abort(self) -> None:
        self.reader.abort()


class Upper(StreamTransform):
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def wrap(self, reader: ReadStream, source: str) -> TransformedStream:
        return _Upper(reader, self.fail)

    def target_name(self, name: str) -> str:
        return name + ".up"


def options(transform: StreamTransform, **extra: object) -> TransferOptions:
    fields: dict[str, object] = {"retry": RetryPolicy(2, 0), **extra}
    return TransferOptions(transform=transform, **fields)  # type: ignore[arg-type]


def test_transformed_copies_renamed_and_verified() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.txt", b"hello " * 1000)
    src.put("/out/b.txt", b"world")
    summary = transfer(src, "/out/*.txt", dst, "/in/", options(Upper()))
    assert [f.status for f in summary.files] == [Status.COPIED, Status.COPIED]
    assert dst.get("/in/a.txt.up") == b"HELLO " * 1000
    assert dst.get("/in/b.txt.up") == b"WORLD"
    assert summary.files[0].verified == "size+sha256+upper"  # the destination hashed the output


def test_a_file_named_explicitly_keeps_its_name() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/a.txt", b"x")
    transfer(src, "/a.txt", dst, "/b.txt", options(Upper()))
    assert dst.get("/b.txt") == b"X"


def test_a_failing_verdict_publishes_nothing() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/out/a.txt", b"hello")
    summary = transfer(src, "/out/a.txt", dst, "/in/", options(Upper(fail=True)))
    assert summary.files[0].status == Status.FAILED
    assert isinstance(summary.files[0].error, SignatureError)
    assert summary.files[0].retries == 0  # not retriable: the same bytes fail the same way
    assert dst.snapshot() == {"/in": None}


def test_a_dropped_read_is_retried_from_the_start() -> None:
    src, dst = MemoryBackend(), MemoryBackend()
    data = bytes(range(256)) * 4096
    src.put("/a.bin", data)
    src.truncate_reads_after("/a.bin", 300_000)
    summary = transfer(src, "/a.bin", dst, "/in/", options(Upper(), chunk_size=65536))
    copied = summary.files[0]
    assert copied.status == Status.COPIED and copied.retries == 1
    assert copied.resumed_from == 0
    assert dst.get("/in/a.bin.up") == data.upper()
    assert not [p for p in dst.snapshot() if p.endswith(PARTIAL_SUFFIX)]


@pytest.mark.parametrize("extra", [b"", b"more"])
def test_the_source_size_is_checked_on_the_bytes_read(extra: bytes) -> None:
    class Short(Upper):
        def wrap(self, reader: ReadStream, source: str) -> TransformedStream:
            stream = _Upper(reader, False)
            stream.source_bytes -= 1 if not extra else -len(extra)  # read one short / more
            return stream

    src, dst = MemoryBackend(), MemoryBackend()
    src.put("/a.txt", b"hello")
    summary = transfer(src, "/a.txt", dst, "/in/", options(Short(), retry=RetryPolicy(0, 0)))
    assert summary.files[0].status == Status.FAILED
    assert "but the source has 5" in str(summary.files[0].error)
