"""One filesystem per real server for the whole session (connecting is most of a small
test's time); each test starts with its listings cache empty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferryman.fsspec import FerrymanFileSystem
from tests.servers.sshd import Sshd
from tests.servers.vsftpd import Vsftpd

from .servers import sshd_fs, vsftpd_fs


@pytest.fixture(scope="session")
def vsftpd_filesystem(vsftpd_explicit: Vsftpd) -> Iterator[FerrymanFileSystem]:
    fs = vsftpd_fs(vsftpd_explicit)
    yield fs
    fs.pool.close()


@pytest.fixture(scope="session")
def sshd_filesystem(sshd: Sshd) -> Iterator[FerrymanFileSystem]:
    fs = sshd_fs(sshd)
    yield fs
    fs.pool.close()
