"""A reusable conformance suite for :class:`ferryman.backends.base.Backend` implementations.

Use it by subclassing :class:`BackendConformance` in a ``test_*.py`` module and providing a
fixture named ``backend_and_root``::

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def backend_and_root(self, tmp_path):
            backend = MyBackend(...)       # connected, ready to use
            yield backend, "/some/empty/dir"
            backend.close()                # teardown must not need the backend to be open

The fixture contract:

- it returns (or yields) ``(backend, root)``: a connected backend, and ``root``, an existing,
  **empty**, writable directory on it, spelled as the backend spells paths;
- it is fresh for every test (function scope); the suite creates everything below ``root``
  and never touches anything else;
- it owns cleanup. Tests may call ``backend.close()`` themselves (twice, even), so the
  teardown must close again safely and must not rely on the backend for removing files.

The suite uses only the Backend interface. It reads ``backend.capabilities`` and skips or
relaxes what a backend does not promise: reads and writes at an offset (``resume_read``,
``resume_write``), rename over an existing target (``atomic_rename_replace``), timestamps
(``mtime_precision``), ``set_mtime`` and server-side ``hashes``. Errors are checked against
the error tree: missing paths must raise ``NotFoundError``; other refusals any ``RemoteError``.
Errors of a stream may come from ``open_*``, from reading/writing or from ``close`` (FTP
servers report some only at the end of the transfer); the suite accepts all three.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

import pytest

from ferryman.backends.base import Backend, EntryType, NotSupportedError
from ferryman.errors import FerrymanError, NotFoundError, RemoteError
from ferryman.paths import join_remote

__all__ = ["BackendConformance", "make_data", "read_file", "write_file"]

BackendAndRoot = tuple[Backend, str]
CHUNK = 64 * 1024
SIZES = [0, 1, 4095, 65_536, (1 << 20) + 17, 3 * (1 << 20) + 5]
UNICODE_NAMES = [
    "with space.txt",
    "two  spaces.csv",
    "ünïcödé €.csv",
    "日本語 データ.dat",
    "emoji 🚚.bin",
]


def make_data(size: int, seed: int = 0) -> bytes:
    """``size`` reproducible pseudo-random bytes."""
    return random.Random(size * 7919 + seed).randbytes(size)


def write_file(
    backend: Backend, path: str, data: bytes, *, offset: int = 0, chunk: int = CHUNK
) -> None:
    """Write ``data`` to ``path`` (from ``offset``) in ``chunk``-sized memoryview slices."""
    view = memoryview(data)
    with backend.open_write(path, offset) as stream:
        for start in range(0, len(view), chunk):
            stream.write(view[start : start + chunk])
        assert stream.bytes_transferred == len(data)


def read_file(backend: Backend, path: str, *, offset: int = 0, buffer_size: int = CHUNK) -> bytes:
    """Everything from ``offset`` to the end of ``path``, read with ``readinto``."""
    result = bytearray()
    buffer = memoryview(bytearray(buffer_size))
    with backend.open_read(path, offset) as stream:
        while count := stream.readinto(buffer):
            assert 0 < count <= buffer_size
            result += buffer[:count]
        assert stream.readinto(buffer) == 0, "readinto must keep returning 0 after the end"
        assert stream.bytes_transferred == len(result)
    return bytes(result)


def _read_fails(backend: Backend, path: str, error: type[FerrymanError]) -> None:
    with pytest.raises(error), backend.open_read(path) as stream:
        while stream.read(CHUNK):
            pass


def _write_fails(backend: Backend, path: str, error: type[FerrymanError]) -> None:
    with pytest.raises(error), backend.open_write(path) as stream:
        stream.write(b"data")


def _names(backend: Backend, path: str) -> set[str]:
    return {entry.name for entry in backend.list(path)}


def _precision(backend: Backend, *entry_precisions: int | None) -> timedelta:
    worst = max([backend.capabilities.mtime_precision, *(p or 1 for p in entry_precisions)])
    return timedelta(seconds=worst)


class _Boom(Exception):
    """An error of the caller's code inside a ``with`` block of a stream."""


class BackendConformance:
    """Tests every backend must pass; subclasses provide the ``backend_and_root`` fixture."""

    # -- directories ---------------------------------------------------------------------------

    def test_root_is_an_empty_directory(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        assert backend.stat(root).type is EntryType.DIR
        assert backend.list(root) == []
        assert isinstance(backend.describe(), str)
        assert backend.describe()

    def test_mkdir_then_stat_and_list(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        sub = join_remote(root, "sub")
        backend.mkdir(sub)
        backend.mkdir(join_remote(sub, "inner"))
        entry = backend.stat(sub)
        assert (entry.name, entry.type, entry.is_dir) == ("sub", EntryType.DIR, True)
        [listed] = backend.list(root)
        assert (listed.name, listed.type) == ("sub", EntryType.DIR)
        assert [(e.name, e.type) for e in backend.list(sub)] == [("inner", EntryType.DIR)]
        assert backend.list(join_remote(sub, "inner")) == []

    def test_mkdir_of_an_existing_entry_fails(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        backend.mkdir(join_remote(root, "d"))
        write_file(backend, join_remote(root, "f"), b"x")
        for name in ("d", "f"):
            with pytest.raises(RemoteError):
                backend.mkdir(join_remote(root, name))
        assert backend.stat(join_remote(root, "f")).type is EntryType.FILE

    def test_mkdir_without_parent_fails(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        with pytest.raises(RemoteError):
            backend.mkdir(join_remote(root, "missing/child"))

    def test_rmdir(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "empty")
        backend.mkdir(path)
        backend.rmdir(path)
        assert backend.list(root) == []
        with pytest.raises(NotFoundError):
            backend.stat(path)
        with pytest.raises(RemoteError):
            backend.rmdir(path)

    def test_rmdir_of_a_non_empty_directory_fails(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "full")
        backend.mkdir(path)
        write_file(backend, join_remote(path, "keep.txt"), b"keep")
        with pytest.raises(RemoteError):
            backend.rmdir(path)
        assert read_file(backend, join_remote(path, "keep.txt")) == b"keep"

    def test_rmdir_of_a_file_fails(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "file")
        write_file(backend, path, b"content")
        with pytest.raises(RemoteError):
            backend.rmdir(path)
        assert read_file(backend, path) == b"content"

    # -- files -----------------------------------------------------------------------------------

    @pytest.mark.parametrize("size", SIZES)
    def test_write_then_read_back(self, backend_and_root: BackendAndRoot, size: int) -> None:
        backend, root = backend_and_root
        path = join_remote(root, f"file-{size}.bin")
        data = make_data(size)
        write_file(backend, path, data)
        entry = backend.stat(path)
        assert (entry.name, entry.type, entry.is_file) == (f"file-{size}.bin", EntryType.FILE, True)
        assert entry.size in (None, size)
        [listed] = backend.list(root)
        assert (listed.name, listed.type) == (entry.name, entry.type)
        assert listed.size in (None, size)
        assert read_file(backend, path) == data

    def test_one_large_write_and_small_reads(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "large.bin")
        data = make_data((1 << 20) + 3, seed=1)
        with backend.open_write(path) as stream:
            stream.write(data)
        assert read_file(backend, path, buffer_size=1000) == data
        with backend.open_read(path) as stream:
            first = stream.read(10)
            assert first == data[: len(first)]
            assert 0 < len(first) <= 10

    def test_write_accepts_bytes_and_memoryview(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "mixed")
        with backend.open_write(path) as stream:
            stream.write(b"abc")
            stream.write(memoryview(b"xdefx")[1:4])
            stream.write(b"")
            assert stream.bytes_transferred == 6
        assert read_file(backend, path) == b"abcdef"

    def test_write_at_offset_zero_replaces_the_content(
        self, backend_and_root: BackendAndRoot
    ) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "replaced.txt")
        write_file(backend, path, make_data(10_000))
        write_file(backend, path, b"short")
        assert read_file(backend, path) == b"short"
        assert backend.stat(path).size in (None, 5)

    def test_fresh_file_has_a_plausible_utc_mtime(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "fresh")
        write_file(backend, path, b"x")
        for entry in (backend.stat(path), *backend.list(root)):
            if entry.mtime is None:
                continue
            assert entry.mtime.utcoffset() == timedelta(0), "mtime must be aware UTC"
            slack = timedelta(days=1) + _precision(backend, entry.mtime_precision)
            assert abs(entry.mtime - datetime.now(UTC)) <= slack

    def test_remove(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "gone.txt")
        write_file(backend, path, b"bye")
        write_file(backend, join_remote(root, "stays.txt"), b"hi")
        backend.remove(path)
        assert _names(backend, root) == {"stays.txt"}
        with pytest.raises(NotFoundError):
            backend.stat(path)

    def test_remove_of_a_directory_fails(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "dir")
        backend.mkdir(path)
        with pytest.raises(RemoteError):
            backend.remove(path)
        assert backend.stat(path).type is EntryType.DIR

    def test_read_of_a_directory_fails(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        backend.mkdir(join_remote(root, "dir"))
        _read_fails(backend, join_remote(root, "dir"), RemoteError)

    def test_write_without_parent_fails(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        _write_fails(backend, join_remote(root, "missing/file.txt"), RemoteError)

    # -- offsets (resume) --------------------------------------------------------------------------

    @pytest.mark.parametrize("offset", [0, 1, 65_536, 199_999, 200_003])
    def test_read_at_offset(self, backend_and_root: BackendAndRoot, offset: int) -> None:
        backend, root = backend_and_root
        if not backend.capabilities.resume_read and offset:
            pytest.skip("the backend does not read from an offset")
        path = join_remote(root, "offsets.bin")
        data = make_data(200_003)
        write_file(backend, path, data)
        assert read_file(backend, path, offset=offset) == data[offset:]

    def test_write_at_offset_continues_a_partial_file(
        self, backend_and_root: BackendAndRoot
    ) -> None:
        backend, root = backend_and_root
        if not backend.capabilities.resume_write:
            pytest.skip("the backend does not write at an offset")
        path = join_remote(root, "resumed.bin")
        data = make_data(1_500_000, seed=2)
        write_file(backend, path, data[:700_001])
        assert backend.stat(path).size in (None, 700_001)
        write_file(backend, path, data[700_001:], offset=700_001)
        assert backend.stat(path).size in (None, len(data))
        assert read_file(backend, path) == data

    # -- rename ------------------------------------------------------------------------------------

    def test_rename_a_file(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        source, target = join_remote(root, "a.part"), join_remote(root, "a.csv")
        write_file(backend, source, b"payload")
        backend.rename(source, target)
        assert _names(backend, root) == {"a.csv"}
        assert read_file(backend, target) == b"payload"
        with pytest.raises(NotFoundError):
            backend.stat(source)

    def test_rename_into_another_directory(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        backend.mkdir(join_remote(root, "out"))
        write_file(backend, join_remote(root, "f"), b"1")
        backend.rename(join_remote(root, "f"), join_remote(root, "out/g"))
        assert _names(backend, root) == {"out"}
        assert read_file(backend, join_remote(root, "out/g")) == b"1"

    def test_rename_a_directory_with_content(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        backend.mkdir(join_remote(root, "d1"))
        write_file(backend, join_remote(root, "d1/f"), b"inside")
        backend.rename(join_remote(root, "d1"), join_remote(root, "d2"))
        assert _names(backend, root) == {"d2"}
        assert read_file(backend, join_remote(root, "d2/f")) == b"inside"

    def test_rename_over_an_existing_file(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        if not backend.capabilities.atomic_rename_replace:
            pytest.skip("the backend does not promise that rename replaces a target")
        source, target = join_remote(root, "new"), join_remote(root, "current")
        write_file(backend, source, b"new")
        write_file(backend, target, b"old content")
        backend.rename(source, target)
        assert _names(backend, root) == {"current"}
        assert read_file(backend, target) == b"new"

    def test_rename_of_a_missing_source_fails(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        with pytest.raises(RemoteError):
            backend.rename(join_remote(root, "nope"), join_remote(root, "other"))
        assert backend.list(root) == []

    # -- missing paths -----------------------------------------------------------------------------

    def test_missing_paths_raise_not_found(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        for path in (join_remote(root, "missing"), join_remote(root, "no/such/file")):
            with pytest.raises(NotFoundError):
                backend.stat(path)
            _read_fails(backend, path, NotFoundError)
            with pytest.raises(NotFoundError):
                backend.remove(path)
            with pytest.raises(NotFoundError):
                backend.list(path)

    # -- names ---------------------------------------------------------------------------------

    def test_names_with_spaces_and_unicode(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        directory = join_remote(root, "dir with spaces ñ")
        backend.mkdir(directory)
        for number, name in enumerate(UNICODE_NAMES):
            write_file(backend, join_remote(directory, name), name.encode() * (number + 1))
        assert _names(backend, root) == {"dir with spaces ñ"}
        assert _names(backend, directory) == set(UNICODE_NAMES)
        for number, name in enumerate(UNICODE_NAMES):
            path = join_remote(directory, name)
            assert backend.stat(path).name == name
            assert read_file(backend, path) == name.encode() * (number + 1)
        renamed = join_remote(directory, "renamed ✓.txt")
        backend.rename(join_remote(directory, UNICODE_NAMES[2]), renamed)
        backend.remove(join_remote(directory, UNICODE_NAMES[3]))
        expected = set(UNICODE_NAMES) - set(UNICODE_NAMES[2:4]) | {"renamed ✓.txt"}
        assert _names(backend, directory) == expected

    # -- life cycle of streams and backend -------------------------------------------------------

    def test_exception_in_read_block_aborts(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "big.bin")
        data = make_data(2 * (1 << 20))
        write_file(backend, path, data)
        with pytest.raises(_Boom), backend.open_read(path) as stream:
            stream.read(CHUNK)
            raise _Boom
        assert read_file(backend, path) == data  # the backend is still usable

    def test_exception_in_write_block_aborts(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "aborted.bin")
        with pytest.raises(_Boom), backend.open_write(path) as stream:
            stream.write(make_data(CHUNK))
            raise _Boom
        assert _names(backend, root) <= {"aborted.bin"}  # a partial file may stay
        write_file(backend, path, b"complete")
        assert read_file(backend, path) == b"complete"

    def test_abort_never_raises(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "f")
        writer = backend.open_write(path)
        writer.write(b"some")
        writer.abort()
        writer.abort()
        write_file(backend, path, b"data")
        reader = backend.open_read(path)
        reader.abort()
        reader.abort()
        reader = backend.open_read(path)
        assert reader.read(4) in (b"d", b"da", b"dat", b"data")
        reader.close()
        reader.abort()
        assert read_file(backend, path) == b"data"

    def test_close_twice_is_safe(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "twice")
        writer = backend.open_write(path)
        writer.write(b"once")
        writer.close()
        writer.close()
        reader = backend.open_read(path)
        assert reader.read(100) + reader.read(100) == b"once"
        reader.close()
        reader.close()
        backend.close()
        backend.close()

    # -- optional abilities --------------------------------------------------------------------

    def test_set_mtime(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "dated.csv")
        write_file(backend, path, b"x")
        when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
        if not backend.capabilities.set_mtime:
            with pytest.raises(NotSupportedError):
                backend.set_mtime(path, when)
            return
        backend.set_mtime(path, when)
        for entry in (backend.stat(path), *backend.list(root)):
            assert entry.mtime is not None
            assert abs(entry.mtime - when) <= _precision(backend, entry.mtime_precision)

    def test_hashes(self, backend_and_root: BackendAndRoot) -> None:
        backend, root = backend_and_root
        path = join_remote(root, "hashed.bin")
        data = make_data(300_000)
        write_file(backend, path, data)
        for algorithm in backend.capabilities.hashes:
            expected = hashlib.new(algorithm, data).hexdigest()
            assert backend.hash(path, algorithm).lower() == expected
        if "sha3_512" not in backend.capabilities.hashes:
            with pytest.raises(NotSupportedError):
                backend.hash(path, "sha3_512")
