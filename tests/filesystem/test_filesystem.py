"""The filesystem's own behaviour on real servers: protocol names, URLs and storage options,
secure defaults, errors as both kinds, writes published whole, ranged reads on one stream,
listings, the listings cache, server hashes, transactions and the bulk engine."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.registry import _registry as registry_internal
from fsspec.registry import known_implementations, registry

from ferryman.backends.base import ReadStream
from ferryman.backends.ftp import FtpBackend
from ferryman.errors import (
    CertificateError,
    ConfigError,
    HostKeyError,
    NotFoundError,
    TargetExistsError,
)
from ferryman.fsspec import (
    FerrymanFileSystem,
    FerrymanFtpFileSystem,
    FerrymanSftpFileSystem,
    FtpesFileSystem,
    FtpsFileSystem,
    register_standard_protocols,
)
from tests.conftest import PASSWORD, Served, ServerFactory
from tests.servers.sshd import SHELL_USER, Sshd

from .servers import COMMON, pyftpdlib_options, sshd_fs


@pytest.fixture
def served(ftp_server: ServerFactory) -> Served:
    served = ftp_server("explicit")
    (served.root / "work").mkdir()
    return served


@pytest.fixture
def fs(served: Served) -> Iterator[FerrymanFileSystem]:
    fs = FtpesFileSystem(
        **pyftpdlib_options(served),
        ca_file=str(served.server.pki.ca_cert),  # type: ignore[union-attr]
    )
    yield fs
    fs.pool.close()


# -- protocol names ------------------------------------------------------------------------


def test_the_entry_points_name_ferrymans_protocols_and_leave_ftp_and_sftp_to_fsspec() -> None:
    assert fsspec.get_filesystem_class("ftpes") is FtpesFileSystem
    assert fsspec.get_filesystem_class("ftps") is FtpsFileSystem
    assert fsspec.get_filesystem_class("ferryman+ftp") is FerrymanFtpFileSystem
    assert fsspec.get_filesystem_class("ferryman+sftp") is FerrymanSftpFileSystem
    # what fsspec would import for ftp:// and sftp:// (not imported here: fsspec's sftp needs
    # paramiko, which the tests do not install; sshfs, when installed, takes "sftp" too)
    for name in ("ftp", "sftp"):
        assert name not in registry or not issubclass(registry[name], FerrymanFileSystem)
        assert not known_implementations[name]["class"].startswith("ferryman.")


def test_the_standard_names_are_an_explicit_opt_in() -> None:
    saved = dict(registry_internal)
    try:
        register_standard_protocols()
        assert fsspec.get_filesystem_class("ftp") is FerrymanFtpFileSystem
        assert fsspec.get_filesystem_class("sftp") is FerrymanSftpFileSystem
    finally:
        registry_internal.clear()
        registry_internal.update(saved)
    assert "sftp" not in registry or registry["sftp"] is not FerrymanSftpFileSystem


def test_importing_ferryman_imports_no_fsspec() -> None:
    code = "import sys, ferryman, ferryman.cli, ferryman.transfer; print('fsspec' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- URLs and storage options --------------------------------------------------------------


def test_urls_read_as_the_cli_reads_them() -> None:
    url = "ftpes://orders%40acme:s3cr%2Ft@ftp.example.com:2121/~/outbound/a%20b.csv"
    assert FtpesFileSystem._strip_protocol(url) == "~/outbound/a b.csv"
    assert FtpesFileSystem._get_kwargs_from_urls(url) == {
        "host": "ftp.example.com",
        "port": 2121,
        "user": "orders@acme",
        "password": "s3cr/t",
    }
    assert FerrymanSftpFileSystem._strip_protocol("ferryman+sftp://h/data/x/") == "/data/x"
    assert FerrymanSftpFileSystem._strip_protocol("relative/x") == "~/relative/x"
    assert FerrymanSftpFileSystem._strip_protocol("/~") == "~"


def test_a_url_with_a_query_is_refused_with_what_to_do() -> None:
    with pytest.raises(ConfigError, match=r"percent-encode '\?'"):
        FtpesFileSystem._strip_protocol("ftpes://h/x?y")


def test_storage_options_are_validated_like_a_connections_file() -> None:
    with pytest.raises(ConfigError, match="no host"):
        FtpesFileSystem(skip_instance_cache=True)
    with pytest.raises(ConfigError, match="unknown setting"):
        FtpesFileSystem("h", colour="blue", skip_instance_cache=True)
    with pytest.raises(ConfigError, match="set by the protocol"):
        FtpesFileSystem("h", tls="none", skip_instance_cache=True)


def test_fsspecs_username_is_accepted_as_user(served: Served) -> None:
    options = pyftpdlib_options(served)
    options["username"] = options.pop("user")
    fs = FerrymanFtpFileSystem(**options)
    assert fs.connection.user == served.server.user


def test_a_named_connection_from_the_connections_file(served: Served, tmp_path: Path) -> None:
    server = served.server
    assert server.pki is not None
    file = tmp_path / "connections.yaml"
    file.write_text(
        "partner:\n"
        f"  host: {server.host}\n  port: {server.port}\n  user: {server.user}\n"
        f"  tls: explicit\n  ca_file: {server.pki.ca_cert}\n  password_env: PARTNER_PW\n"
        "  use_netrc: false\n  use_keyring: false\n"
    )
    os.environ["PARTNER_PW"] = PASSWORD
    try:
        fs = FtpesFileSystem(connection="partner", connections_file=file, skip_instance_cache=True)
        fs.pipe_file("/work/x.txt", b"named")
        assert (served.root / "work" / "x.txt").read_bytes() == b"named"
        with pytest.raises(ConfigError, match="is ftpes://, not ftps://"):
            FtpsFileSystem(connection="partner", connections_file=file, skip_instance_cache=True)
    finally:
        del os.environ["PARTNER_PW"]


def test_the_password_is_in_no_repr_and_no_error(served: Served) -> None:
    fs = FerrymanFtpFileSystem(**{**pyftpdlib_options(served), "password": "Wrong-Pw-123"})
    assert "Wrong-Pw-123" not in repr(fs) and "Wrong-Pw-123" not in str(fs)
    with pytest.raises(Exception) as caught:
        fs.ls("/")
    assert "Wrong-Pw-123" not in str(caught.value) and "Wrong-Pw-123" not in repr(caught.value)


# -- secure by default ---------------------------------------------------------------------


def test_an_untrusted_certificate_is_refused(served: Served) -> None:
    fs = FtpesFileSystem(**pyftpdlib_options(served))  # no ca_file: the test CA is unknown
    with pytest.raises(CertificateError) as caught:
        fs.ls("/")
    assert "--fingerprint" in (caught.value.hint or "")


def test_an_unknown_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    fs = sshd_fs(sshd, known_hosts=str(empty))
    with pytest.raises(HostKeyError):
        fs.ls("/")


# -- errors of both kinds --------------------------------------------------------------------


def test_errors_are_both_builtin_and_ferrymans(fs: FerrymanFileSystem, served: Served) -> None:
    with pytest.raises(FileNotFoundError) as missing:
        fs.info("/work/nothing")
    assert isinstance(missing.value, NotFoundError)
    with pytest.raises(FileNotFoundError):
        fs.cat_file("/work/nothing")
    with pytest.raises(IsADirectoryError):
        fs.open("/work", "rb")
    with pytest.raises(FileExistsError) as exists:
        fs.mkdir("/work")
    assert isinstance(exists.value, TargetExistsError)
    fs.pipe_file("/work/a", b"1")
    with pytest.raises(FileExistsError):
        fs.pipe_file("/work/a", b"2", mode="create")
    assert (served.root / "work" / "a").read_bytes() == b"1"


# -- writes published whole ------------------------------------------------------------------


def test_an_exception_inside_with_leaves_nothing(fs: FerrymanFileSystem, served: Served) -> None:
    work = served.root / "work"
    (work / "report.csv").write_bytes(b"old")
    with pytest.raises(RuntimeError), fs.open("/work/report.csv", "wb", block_size=1 << 16) as f:
        f.write(b"x" * (3 << 16))  # past the block size: bytes are on the server already
        raise RuntimeError("the producer failed")
    assert sorted(os.listdir(work)) == ["report.csv"]
    assert (work / "report.csv").read_bytes() == b"old"


def test_a_file_appears_under_its_name_only_when_closed(
    fs: FerrymanFileSystem, served: Served
) -> None:
    work = served.root / "work"
    with fs.open("/work/big.bin", "wb", block_size=1 << 16) as f:
        f.write(os.urandom(5 << 16))
        assert not (work / "big.bin").exists()
        assert [n for n in os.listdir(work) if n.endswith(".ferryman-part")]
    assert (work / "big.bin").stat().st_size == 5 << 16
    assert os.listdir(work) == ["big.bin"]


def test_a_transaction_publishes_at_its_end(fs: FerrymanFileSystem, served: Served) -> None:
    work = served.root / "work"
    with fs.transaction:
        fs.pipe_file("/work/t1", b"one")
        with fs.open("/work/t2", "wb") as f:
            f.write(b"two")
        assert not (work / "t1").exists() and not (work / "t2").exists()
    assert (work / "t1").read_bytes() == b"one" and (work / "t2").read_bytes() == b"two"


def test_writes_make_their_directory(fs: FerrymanFileSystem, served: Served) -> None:
    fs.pipe_file("/work/new/deeper/file.txt", b"data")
    assert (served.root / "work/new/deeper/file.txt").read_bytes() == b"data"


# -- reads -----------------------------------------------------------------------------------


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The offsets every FTP download is opened at, from now on."""
    offsets: list[int] = []
    original = FtpBackend.open_read

    def counting(self: FtpBackend, path: str, offset: int = 0) -> ReadStream:
        offsets.append(offset)
        return original(self, path, offset)

    monkeypatch.setattr(FtpBackend, "open_read", counting)
    return offsets


def test_a_sequential_read_is_one_stream_and_a_seek_opens_one_at_the_offset(
    fs: FerrymanFileSystem, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 << 20)
    (served.root / "work" / "blob").write_bytes(data)
    offsets = _count_opens(monkeypatch)
    with fs.open("/work/blob", "rb", block_size=1 << 18) as f:
        chunks = []
        while chunk := f.read(100_000):
            chunks.append(chunk)
        assert b"".join(chunks) == data
        assert offsets == [0]
        f.seek(2_000_000)
        assert f.read(10) == data[2_000_000:2_000_010]
        assert offsets == [0, 2_000_000]


def test_cat_file_ranges(fs: FerrymanFileSystem, served: Served) -> None:
    data = bytes(range(256)) * 100
    (served.root / "work" / "r").write_bytes(data)
    assert fs.cat_file("/work/r") == data
    assert fs.cat_file("/work/r", 10, 20) == data[10:20]
    assert fs.cat_file("/work/r", -5) == data[-5:]
    assert fs.cat_file("/work/r", 100, -100) == data[100:-100]
    assert fs.cat_file("/work/r", len(data) + 5) == b""


# -- listings and the cache --------------------------------------------------------------------


def test_listings_in_detail_and_the_operations_built_on_them(
    fs: FerrymanFileSystem, served: Served
) -> None:
    work = served.root / "work"
    (work / "d" / "e").mkdir(parents=True)
    (work / "d" / "one.csv").write_bytes(b"12345")
    (work / "d" / "e" / "two.csv").write_bytes(b"12")
    listing = {i["name"]: i for i in fs.ls("/work/d")}
    assert listing["/work/d/one.csv"]["type"] == "file"
    assert listing["/work/d/one.csv"]["size"] == 5
    assert listing["/work/d/one.csv"]["mtime"] is not None
    assert listing["/work/d/e"]["type"] == "directory"
    assert fs.ls("/work/d/one.csv", detail=False) == ["/work/d/one.csv"]
    assert fs.find("/work/d") == ["/work/d/e/two.csv", "/work/d/one.csv"]
    assert fs.glob("/work/d/**/*.csv") == ["/work/d/e/two.csv", "/work/d/one.csv"]
    assert fs.du("/work/d") == 7
    assert fs.exists("/work/d/e") and not fs.exists("/work/d/nope")
    assert fs.modified("/work/d/one.csv").tzinfo is not None
    fs.mv("/work/d/one.csv", "/work/d/e")  # into a directory, renamed on the server
    assert sorted(os.listdir(work / "d" / "e")) == ["one.csv", "two.csv"]
    fs.rm("/work/d", recursive=True)
    assert not (work / "d").exists()


def test_writes_invalidate_the_listings_cache(fs: FerrymanFileSystem) -> None:
    assert fs.ls("/work") == []
    fs.pipe_file("/work/new.txt", b"x")
    assert fs.ls("/work", detail=False) == ["/work/new.txt"]
    fs.rm("/work/new.txt")
    assert fs.ls("/work") == []


def test_the_login_directory_as_in_the_cli(sshd: Sshd) -> None:
    fs = sshd_fs(sshd)
    name = f"fsspec-login-{os.getpid()}.txt"
    url = f"ferryman+sftp://{sshd.user}@{sshd.host}:{sshd.port}/~/{name}"
    options = {k: v for k, v in sshd_options_without_target(sshd).items()}
    try:
        with fsspec.open(url, "wb", **options) as f:
            f.write(b"home")
        assert fs.cat_file(f"~/{name}") == b"home"
        assert f"~/{name}" in fs.ls("~", detail=False)
    finally:
        fs.rm_file(f"~/{name}")


def sshd_options_without_target(sshd: Sshd) -> dict[str, object]:
    return {
        "password": sshd.password,
        "known_hosts": str(sshd.known_hosts),
        "use_agent": False,
        **COMMON,
    }


# -- server hashes -----------------------------------------------------------------------------


def test_checksum_and_ukey_from_the_servers_hash(
    sshd: Sshd, request: pytest.FixtureRequest
) -> None:
    workdir = sshd.workdir(request.node.name, owner=SHELL_USER)  # a user with a shell
    fs = sshd_fs(
        sshd, user=SHELL_USER, password=None, private_key=str(sshd.keys["plain"]), exec_hash=True
    )
    data = os.urandom(10_000)
    fs.pipe_file(f"{workdir.path}/h.bin", data)  # verified by the server's SHA-256 too
    digest = hashlib.sha256(data).hexdigest()
    assert fs.ukey(f"{workdir.path}/h.bin") == f"sha256:{digest}"
    assert fs.checksum(f"{workdir.path}/h.bin") == int(digest[:32], 16)


def test_without_server_hashes_checksum_follows_the_listing(fs: FerrymanFileSystem) -> None:
    fs.pipe_file("/work/c", b"one")
    first = fs.checksum("/work/c")
    fs.pipe_file("/work/c", b"three")
    assert fs.checksum("/work/c") != first


# -- bulk, on the transfer engine ----------------------------------------------------------------


def test_get_and_put_many_files_on_the_engine(fs: FerrymanFileSystem, tmp_path: Path) -> None:
    assert fs.parallel is None  # auto: chosen from the round trip, as the CLI's default
    source = tmp_path / "up"
    for i in range(30):
        (source / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (source / f"d{i % 3}" / f"f{i}.txt").write_bytes(os.urandom(1000 + i))
    fs.put(str(source), "/work/up", recursive=True)
    down = tmp_path / "down"
    fs.get("/work/up", str(down), recursive=True)
    for path in source.rglob("*.txt"):
        assert (down / path.relative_to(source)).read_bytes() == path.read_bytes()
    assert not [p for p in down.rglob("*") if p.name.endswith(".ferryman-part")]
    assert len(fs.pool._idle) > 1  # the engine's extra connections went back to the pool
