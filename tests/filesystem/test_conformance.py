"""fsspec's own conformance suite (``fsspec.tests.abstract``: copy, get, put, open, pipe)
against ferryman's filesystems on three real servers: vsftpd with explicit FTPS and
``require_ssl_reuse=YES``, OpenSSH sshd, and pyftpdlib with plain FTP. No test is marked or
skipped (docs/fsspec.md)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator

import pytest
from fsspec.tests.abstract import (
    AbstractCopyTests,
    AbstractFixtures,
    AbstractGetTests,
    AbstractOpenTests,
    AbstractPipeTests,
    AbstractPutTests,
)

from ferryman.fsspec import FerrymanFileSystem
from tests.conftest import ServerFactory
from tests.servers.sshd import RemoteDir
from tests.servers.vsftpd import Workdir

from .servers import pyftpdlib_fs


class _Fixtures(AbstractFixtures):  # type: ignore[misc]  # fsspec is untyped
    @pytest.fixture
    def fs_join(self) -> Callable[..., str]:
        return posixpath.join


class VsftpdFixtures(_Fixtures):
    @pytest.fixture
    def fs(self, vsftpd_filesystem: FerrymanFileSystem) -> FerrymanFileSystem:
        vsftpd_filesystem.invalidate_cache()
        return vsftpd_filesystem

    @pytest.fixture
    def fs_path(self, vsftpd_workdir: Workdir) -> str:
        return vsftpd_workdir.path


class SshdFixtures(_Fixtures):
    @pytest.fixture
    def fs(self, sshd_filesystem: FerrymanFileSystem) -> FerrymanFileSystem:
        sshd_filesystem.invalidate_cache()
        return sshd_filesystem

    @pytest.fixture
    def fs_path(self, sshd_workdir: RemoteDir) -> str:
        return sshd_workdir.path


class PyftpdlibFixtures(_Fixtures):
    @pytest.fixture
    def fs(self, ftp_server: ServerFactory) -> Iterator[FerrymanFileSystem]:
        served = ftp_server("none")
        (served.root / "work").mkdir()
        fs = pyftpdlib_fs(served)
        yield fs
        fs.pool.close()

    @pytest.fixture
    def fs_path(self) -> str:
        return "/work"


@pytest.mark.vsftpd
class TestVsftpdCopy(AbstractCopyTests, VsftpdFixtures):  # type: ignore[misc]
    pass


@pytest.mark.vsftpd
class TestVsftpdGet(AbstractGetTests, VsftpdFixtures):  # type: ignore[misc]
    pass


@pytest.mark.vsftpd
class TestVsftpdPut(AbstractPutTests, VsftpdFixtures):  # type: ignore[misc]
    pass


@pytest.mark.vsftpd
class TestVsftpdOpen(AbstractOpenTests, VsftpdFixtures):  # type: ignore[misc]
    pass


@pytest.mark.vsftpd
class TestVsftpdPipe(AbstractPipeTests, VsftpdFixtures):  # type: ignore[misc]
    pass


class TestSshdCopy(AbstractCopyTests, SshdFixtures):  # type: ignore[misc]
    pass


class TestSshdGet(AbstractGetTests, SshdFixtures):  # type: ignore[misc]
    pass


class TestSshdPut(AbstractPutTests, SshdFixtures):  # type: ignore[misc]
    pass


class TestSshdOpen(AbstractOpenTests, SshdFixtures):  # type: ignore[misc]
    pass


class TestSshdPipe(AbstractPipeTests, SshdFixtures):  # type: ignore[misc]
    pass


class TestPyftpdlibCopy(AbstractCopyTests, PyftpdlibFixtures):  # type: ignore[misc]
    pass


class TestPyftpdlibGet(AbstractGetTests, PyftpdlibFixtures):  # type: ignore[misc]
    pass


class TestPyftpdlibPut(AbstractPutTests, PyftpdlibFixtures):  # type: ignore[misc]
    pass


class TestPyftpdlibOpen(AbstractOpenTests, PyftpdlibFixtures):  # type: ignore[misc]
    pass


class TestPyftpdlibPipe(AbstractPipeTests, PyftpdlibFixtures):  # type: ignore[misc]
    pass
