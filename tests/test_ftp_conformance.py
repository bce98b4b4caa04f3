"""The backend conformance suite against real FTP servers: pyftpdlib (FTPS) and vsftpd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferryman.backends.ftp import FtpBackend
from tests.backend_conformance import BackendAndRoot, BackendConformance
from tests.servers.vsftpd import Vsftpd, Workdir
from tests.test_vsftpd import connection as vsftpd_connection

from .conftest import ServerFactory


class TestPyftpdlibConformance(BackendConformance):
    @pytest.fixture
    def backend_and_root(self, ftp_server: ServerFactory) -> Iterator[BackendAndRoot]:
        served = ftp_server("explicit")
        (served.root / "work").mkdir()
        backend = FtpBackend(served.connection())
        yield backend, "/work"
        backend.close()


@pytest.mark.vsftpd
class TestVsftpdConformance(BackendConformance):
    @pytest.fixture
    def backend_and_root(
        self, vsftpd_explicit: Vsftpd, vsftpd_workdir: Workdir
    ) -> Iterator[BackendAndRoot]:
        backend = FtpBackend(vsftpd_connection(vsftpd_explicit))
        yield backend, vsftpd_workdir.path
        backend.close()
