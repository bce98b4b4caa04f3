"""The SFTP backend against a real OpenSSH sshd: authentication, host keys, failures, speed.

Every connection verifies the host key (against the fixture's known_hosts, a pin, or a file
the test writes); none touches the real ~/.ssh (HOME points into tmp_path where it matters).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import socket
import stat
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ferryman.backends.base import EntryType
from ferryman.backends.local import LocalBackend
from ferryman.backends.sftp import SftpBackend
from ferryman.backends.sftp.group import BACKENDS_PER_CHANNEL, CHANNELS_PER_CONNECTION
from ferryman.connection import SftpConnection
from ferryman.errors import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    ExitCode,
    FerrymanError,
    HostKeyError,
    NotFoundError,
    PermissionDeniedError,
    TimeoutError,
    TransferError,
)
from ferryman.transfer.copy import copy_file, partial_name, source_tag
from tests.backend_conformance import make_data, read_file, write_file
from tests.servers.sshd import KEY_PASSPHRASE, SHELL_USER, RemoteDir, Sshd
from tests.test_sftp_conformance import sshd_connection

HAS_BCRYPT = importlib.util.find_spec("bcrypt") is not None


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME: no default keys, no known_hosts but the ones a test writes."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


@pytest.fixture
def backend(sshd: Sshd) -> Iterator[SftpBackend]:
    backend = SftpBackend(sshd_connection(sshd)).connect()
    yield backend
    backend.close()


def fails_with(error: type[FerrymanError], conn: SftpConnection) -> FerrymanError:
    backend = SftpBackend(conn)
    with pytest.raises(error) as caught:
        backend.connect()
    backend.close()
    return caught.value


class _Records(logging.Handler):
    """Every log record, unmasked (the masking filter is not on this handler)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def records() -> Iterator[_Records]:
    """The transcript (``ferryman.wire`` at DEBUG) and everything else that is logged."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("ferryman", "ferryman.wire", "")]
    saved = [logger.level for logger in loggers]
    for logger in loggers[:2]:
        logger.setLevel(logging.DEBUG)
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger, level in zip(loggers, saved, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


# --- authentication --------------------------------------------------------------------------


def test_password_login_and_the_transcript(sshd: Sshd, records: _Records) -> None:
    with SftpBackend(sshd_connection(sshd)).connect() as backend:
        assert backend.describe() == f"sftp://{sshd.user}@{sshd.host}:{sshd.port}"
        assert backend.list(sshd.workdir("pw").path) == []
    text = records.text
    assert "SSH-2.0-OpenSSH" in text
    assert "kex " in text and "cipher aes128-gcm@openssh.com" in text and "MAC (implicit)" in text
    assert f"host key ssh-ed25519 {sshd.fingerprints['ssh-ed25519']} found in known_hosts" in text
    assert f"authenticated as {sshd.user} by password" in text
    assert "sftp channel opened: SFTP v3" in text and "posix-rename@openssh.com" in text
    assert "> READDIR " in text and "< 0 entries" in text
    assert sshd.password not in text


def test_key_login_without_passphrase(sshd: Sshd, records: _Records) -> None:
    conn = sshd_connection(sshd, password=None, private_key=sshd.keys["plain"])
    with SftpBackend(conn).connect() as backend:
        backend.stat(str(sshd.root))
    assert f"authenticated as {sshd.user} by publickey" in records.text


@pytest.mark.parametrize("source", ["env", "file"])
def test_key_login_with_passphrase(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: _Records, source: str
) -> None:
    settings: dict[str, object] = {"password": None, "private_key": sshd.keys["pem"]}
    if source == "env":
        monkeypatch.setenv("FM_KEY_PHRASE", KEY_PASSPHRASE)
        settings["private_key_passphrase_env"] = "FM_KEY_PHRASE"
    else:
        phrase_file = tmp_path / "phrase"
        phrase_file.write_text(KEY_PASSPHRASE + "\n")
        settings["private_key_passphrase_file"] = phrase_file
    with SftpBackend(sshd_connection(sshd, **settings)).connect() as backend:
        backend.stat(str(sshd.root))
    assert "by publickey" in records.text
    assert KEY_PASSPHRASE not in records.text


def test_encrypted_key_without_passphrase_is_a_config_error(sshd: Sshd) -> None:
    key = sshd.keys["pem"]
    err = fails_with(ConfigError, sshd_connection(sshd, password=None, private_key=key))
    assert str(key) in err.message and "passphrase" in err.message
    assert "private_key_passphrase_env" in (err.hint or "")
    assert err.exit_code == ExitCode.USAGE


def test_wrong_passphrase_is_a_config_error_naming_the_file(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FM_KEY_PHRASE", "not-the-passphrase")
    conn = sshd_connection(
        sshd,
        password=None,
        private_key=sshd.keys["pem"],
        private_key_passphrase_env="FM_KEY_PHRASE",
    )
    err = fails_with(ConfigError, conn)
    assert str(sshd.keys["pem"]) in err.message and "wrong passphrase" in err.message
    assert "FM_KEY_PHRASE" in err.message
    assert "not-the-passphrase" not in f"{err} {err!r}"


def test_unreadable_key_file_is_a_config_error(sshd: Sshd, tmp_path: Path) -> None:
    public_only = Path(f"{sshd.keys['plain']}.pub")
    err = fails_with(ConfigError, sshd_connection(sshd, private_key=public_only))
    assert str(public_only) in err.message and ".pub" in (err.hint or "")
    missing = tmp_path / "no-such-key"
    err = fails_with(ConfigError, sshd_connection(sshd, private_key=missing))
    assert str(missing) in err.message


def test_openssh_format_key_with_passphrase(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> None:
    """Needs the bcrypt package; without it the error says so and what to do."""
    monkeypatch.setenv("FM_KEY_PHRASE", KEY_PASSPHRASE)
    conn = sshd_connection(
        sshd,
        password=None,
        private_key=sshd.keys["openssh"],
        private_key_passphrase_env="FM_KEY_PHRASE",
    )
    if HAS_BCRYPT:
        with SftpBackend(conn).connect() as backend:
            backend.stat(str(sshd.root))
    else:
        err = fails_with(ConfigError, conn)
        assert "bcrypt" in err.message and "asyncssh[bcrypt]" in (err.hint or "")


def test_wrong_password_is_refused_with_the_offered_methods(sshd: Sshd) -> None:
    wrong = "wrong-password-for-test"
    err = fails_with(AuthenticationError, sshd_connection(sshd, password=wrong))
    assert err.exit_code == ExitCode.AUTHENTICATION == 4
    assert not err.retriable
    assert "the server offers publickey,password" in err.message
    assert "password (password)" in err.message  # what was offered, by source, not value
    for text in (err.message, str(err), repr(err), err.hint or ""):
        assert wrong not in text and sshd.password not in text


def test_no_credentials_at_all_says_a_password_is_missing(sshd: Sshd) -> None:
    err = fails_with(AuthenticationError, sshd_connection(sshd, password=None))
    assert "no password was given" in (err.hint or "")


# --- host keys -------------------------------------------------------------------------------


def test_known_hosts_with_only_the_ecdsa_key_selects_that_key(sshd: Sshd, tmp_path: Path) -> None:
    """The server has ed25519 and ECDSA keys: ferryman asks for the type on file."""
    known = tmp_path / "known_hosts"
    line = sshd.host_key_lines["ecdsa-sha2-nistp256"]
    known.write_text(f"[{sshd.host}]:{sshd.port} {line}\n")
    with SftpBackend(sshd_connection(sshd, known_hosts=known)).connect() as backend:
        assert backend.ssh is not None
        assert backend.ssh.info.host_key.startswith("ecdsa-sha2-nistp256 ")


def test_hashed_known_hosts_entries_are_read(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(sshd.known_hosts.read_text())
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    assert known.read_text().startswith("|1|")
    with SftpBackend(sshd_connection(sshd, known_hosts=known)).connect() as backend:
        backend.stat(str(sshd.root))


def test_unknown_host_key_is_refused_with_its_fingerprint(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    err = fails_with(HostKeyError, sshd_connection(sshd, known_hosts=empty))
    fingerprint = sshd.fingerprints["ssh-ed25519"]
    assert isinstance(err, HostKeyError) and err.fingerprint == fingerprint
    assert err.exit_code == ExitCode.TLS and not err.retriable
    assert f"ssh-ed25519 key {fingerprint}" in err.message
    assert f"--fingerprint {fingerprint}" in (err.hint or "")
    assert "accept_new_host_key: true" in (err.hint or "")
    assert "fingerprint: in a connections file" in (err.hint or "")
    assert not empty.exists()  # nothing recorded without accept_new_host_key


def test_changed_host_key_is_refused_even_with_accept_new(sshd: Sshd, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
        check=True,
        capture_output=True,
    )
    known = tmp_path / "known_hosts"
    old = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    known.write_text(f"[{sshd.host}]:{sshd.port} {old}\n")
    before = known.read_text()
    for accept_new in (False, True):
        conn = sshd_connection(sshd, known_hosts=known, accept_new_host_key=accept_new)
        err = fails_with(HostKeyError, conn)
        assert err.message.startswith("HOST KEY CHANGED")
        assert sshd.fingerprints["ssh-ed25519"] in err.message
        assert "man-in-the-middle" in err.message
        assert "ssh-keygen -R" in (err.hint or "")
    assert known.read_text() == before


def test_pinned_fingerprint_is_accepted_and_a_wrong_pin_refused(sshd: Sshd, tmp_path: Path) -> None:
    nowhere = tmp_path / "absent_known_hosts"
    pin = sshd.fingerprints["ssh-ed25519"]
    with SftpBackend(sshd_connection(sshd, known_hosts=nowhere, fingerprint=pin)) as backend:
        backend.connect().stat(str(sshd.root))
    wrong = "SHA256:" + "A" * 43
    err = fails_with(HostKeyError, sshd_connection(sshd, fingerprint=wrong))
    assert "does not match the pinned fingerprint" in err.message
    assert pin in err.message and wrong in err.message
    assert isinstance(err, HostKeyError) and err.fingerprint == pin


def test_accept_new_host_key_records_it(sshd: Sshd, _home: Path) -> None:
    conn = sshd_connection(sshd, known_hosts=None, accept_new_host_key=True)
    with SftpBackend(conn).connect() as backend:
        backend.stat(str(sshd.root))
    known = _home / ".ssh" / "known_hosts"
    assert stat.S_IMODE(known.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    name = f"[{sshd.host}]:{sshd.port}"
    assert known.read_text() == f"{name} {sshd.host_key_lines['ssh-ed25519']}\n"
    found = subprocess.run(
        ["ssh-keygen", "-F", name, "-f", str(known)], capture_output=True, text=True, check=False
    )
    assert found.returncode == 0, "OpenSSH must find the recorded entry"
    with SftpBackend(sshd_connection(sshd, known_hosts=None)).connect() as backend:
        backend.stat(str(sshd.root))  # trusted from the file now, without accept_new
    assert known.read_text().count("\n") == 1


def test_insecure_accepts_any_key_with_a_warning(sshd: Sshd, tmp_path: Path) -> None:
    handler = _Records()
    wire = logging.getLogger("ferryman.wire")
    wire.addHandler(handler)
    try:
        for _ in range(2):
            conn = sshd_connection(sshd, known_hosts=tmp_path / "none", insecure=True)
            with SftpBackend(conn).connect() as backend:
                backend.stat(str(sshd.root))
    finally:
        wire.removeHandler(handler)
    warnings = [line for line in handler.lines if "verification is OFF" in line]
    assert len(warnings) == 2  # on every connection


# --- refusals and failures -------------------------------------------------------------------


def test_permission_denied(backend: SftpBackend, sshd_workdir: RemoteDir) -> None:
    secret = sshd_workdir.local / "root-only.txt"
    secret.write_text("root only")
    secret.chmod(0o600)  # owned by root, not the SFTP user
    with pytest.raises(PermissionDeniedError) as caught:
        read_file(backend, sshd_workdir.remote("root-only.txt"))
    assert caught.value.exit_code == ExitCode.TRANSFER and not caught.value.retriable
    locked = sshd_workdir.local / "locked"
    locked.mkdir(mode=0o755)  # root's directory: the user may not write in it
    with pytest.raises(PermissionDeniedError):
        write_file(backend, sshd_workdir.remote("locked/new.txt"), b"x")
    assert backend.list(sshd_workdir.path)  # the session survives refusals


def test_missing_file(backend: SftpBackend, sshd_workdir: RemoteDir) -> None:
    path = sshd_workdir.remote("nope.csv")
    actions = [backend.stat, backend.remove, backend.list, lambda p: read_file(backend, p)]
    for action in actions:
        with pytest.raises(NotFoundError) as caught:
            action(path)
        assert "nope.csv" in caught.value.message and caught.value.exit_code == ExitCode.NOT_FOUND
        assert not caught.value.retriable


def test_explained_failures(backend: SftpBackend, sshd_workdir: RemoteDir) -> None:
    """SFTP v3 says only 'Failure'; the backend finds out why."""
    sshd_workdir.write("full/keep.txt", b"k")
    with pytest.raises(FerrymanError, match="already exists"):
        backend.mkdir(sshd_workdir.remote("full"))
    with pytest.raises(FerrymanError, match="not empty"):
        backend.rmdir(sshd_workdir.remote("full"))
    with pytest.raises(FerrymanError, match="is a directory"):
        backend.remove(sshd_workdir.remote("full"))


def test_symbolic_links_are_not_followed(backend: SftpBackend, sshd_workdir: RemoteDir) -> None:
    sshd_workdir.write("target.txt", b"data")
    (sshd_workdir.local / "link").symlink_to("target.txt")
    entry = backend.stat(sshd_workdir.remote("link"))
    assert (entry.type, entry.link_target) == (EntryType.LINK, "target.txt")
    listed = {e.name: e for e in backend.list(sshd_workdir.path)}
    assert listed["link"].type is EntryType.LINK and listed["link"].link_target == "target.txt"
    assert listed["target.txt"].permissions == "rw-r--r--"


def test_hash_quotes_hostile_names(sshd: Sshd) -> None:
    workdir = sshd.workdir("hash", owner=SHELL_USER)
    name = "it's $(touch pwned) `x`; a b.txt"
    data = make_data(10_000)
    workdir.write(name, data)
    conn = sshd_connection(
        sshd, user=SHELL_USER, password=None, private_key=sshd.keys["plain"], exec_hash=True
    )
    with SftpBackend(conn).connect() as backend:
        assert backend.hash(workdir.remote(name), "sha256") == hashlib.sha256(data).hexdigest()
        with pytest.raises(NotFoundError):
            backend.hash(workdir.remote("missing"), "sha256")
    assert not (workdir.local / "pwned").exists()


def test_connection_refused_and_silent_server_are_retriable(sshd: Sshd) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    err = fails_with(ConnectError, sshd_connection(sshd, port=closed_port))
    assert err.retriable and err.exit_code == ExitCode.CONNECTION
    with socket.socket() as silent:  # accepts, never sends a banner
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        conn = sshd_connection(sshd, port=silent.getsockname()[1], timeout=1)
        err = fails_with(TimeoutError, conn)
        assert time.monotonic() - started < 5
    assert err.retriable


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_server_killed_mid_transfer_is_retriable(
    sshd: Sshd, sshd_workdir: RemoteDir, direction: str
) -> None:
    size = 64 << 20  # more than the read-ahead and write-behind windows
    data = make_data(1 << 20) * 64
    if direction == "download":
        sshd_workdir.write("big.bin", data)
    conn = sshd_connection(sshd, timeout=10)
    backend = SftpBackend(conn).connect()
    before = set(sshd.session_pids())
    started = time.monotonic()
    with pytest.raises((TransferError, ConnectError)) as caught:
        if direction == "download":
            with backend.open_read(sshd_workdir.remote("big.bin")) as reader:
                assert reader.read(1 << 16)
                assert sshd.kill_sessions() and before
                while reader.read(1 << 20):
                    pass
        else:
            view = memoryview(data)
            with backend.open_write(sshd_workdir.remote("up.bin")) as writer:
                writer.write(view[: 1 << 20])
                assert sshd.kill_sessions() and before
                for start in range(1 << 20, size, 1 << 20):
                    writer.write(view[start : start + (1 << 20)])
    assert caught.value.retriable
    assert time.monotonic() - started < 8, "no hang: the loss is noticed at once"
    # the next operation opens a fresh connection
    assert backend.list(sshd_workdir.path) is not None
    backend.close()


# --- siblings, size, memory -----------------------------------------------------------------


def test_sibling_channels_share_one_connection_in_parallel_threads(
    backend: SftpBackend, sshd_workdir: RemoteDir
) -> None:
    siblings = [backend.sibling().connect() for _ in range(3)]
    assert backend.group.open_connections == 1
    errors: list[BaseException] = []

    def work(number: int, sib: SftpBackend) -> None:
        try:
            for round_ in range(5):
                path = sshd_workdir.remote(f"t{number}-{round_}.bin")
                data = make_data(300_000, seed=number * 10 + round_)
                write_file(sib, path, data)
                assert read_file(sib, path) == data
        except BaseException as err:
            errors.append(err)

    threads = [
        threading.Thread(target=work, args=(n, sib)) for n, sib in enumerate([backend, *siblings])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert len(backend.list(sshd_workdir.path)) == 20
    connection = backend.ssh
    assert connection is not None and connection.users == 4
    for sib in siblings:
        sib.close()
    assert connection.alive and connection.users == 1  # still the parent's
    backend.close()
    assert not connection.alive  # the last user closed it
    assert backend.group.open_connections == 0


def test_siblings_spread_over_channels_then_share_them(
    backend: SftpBackend, sshd_workdir: RemoteDir
) -> None:
    """A few channels first (one sftp-server process each), then many files in flight on each
    channel (issue 19), then a second connection."""
    per_connection = CHANNELS_PER_CONNECTION * BACKENDS_PER_CHANNEL
    siblings = [backend.sibling().connect() for _ in range(per_connection - 1)]
    assert backend.group.open_connections == 1
    connection = backend.ssh
    assert connection is not None and len(connection.channels) == CHANNELS_PER_CONNECTION
    assert sorted(s.users for s in connection.channels) == [BACKENDS_PER_CHANNEL] * 4
    # requests of many backends interleave on the shared channels
    data = {n: make_data(5000 + n, seed=n) for n in range(64)}
    paths = {n: sshd_workdir.remote(f"s{n}.bin") for n in data}

    def roundtrip(n: int) -> bytes:
        write_file(siblings[n], paths[n], data[n])
        return read_file(siblings[n], paths[n])

    with ThreadPoolExecutor(32) as pool:
        assert list(pool.map(roundtrip, data)) == [data[n] for n in data]
    extra = backend.sibling().connect()
    assert backend.group.open_connections == 2
    extra.close()
    for sib in siblings:
        sib.close()
    assert backend.group.open_connections == 1
    assert len(connection.channels) == 1 and connection.channels[0].users == 1
    backend.close()
    assert not connection.alive


def test_large_file_round_trip_with_flat_memory(
    backend: SftpBackend, sshd_workdir: RemoteDir
) -> None:
    data = make_data(1 << 20, seed=7) * 64  # 64 MiB
    path = sshd_workdir.remote("big.bin")
    write_file(backend, path, data, chunk=256 * 1024)
    assert backend.stat(path).size == len(data)
    digest = hashlib.sha256()
    buffer = memoryview(bytearray(256 * 1024))
    tracemalloc.start()
    try:
        with backend.open_read(path) as reader:
            while count := reader.readinto(buffer):
                digest.update(buffer[:count])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    window = backend.conn.requests_in_flight * 261120
    assert peak < 2 * window + (8 << 20), f"peak {peak >> 20} MiB: the read-ahead is not bounded"


def test_upload_learns_the_landed_size_without_a_round_trip_of_its_own(
    records: _Records, backend: SftpBackend, sshd_workdir: RemoteDir, tmp_path: Path
) -> None:
    """The FSTAT goes out between the last WRITE and the CLOSE; copy_file checks its answer
    instead of asking again after the CLOSE (one round trip per uploaded file less)."""
    data = make_data(300_000, seed=3)
    with backend.open_write(sshd_workdir.remote("w.bin")) as writer:
        writer.write(data[:1000])
        writer.write(data[1000:])
    assert writer.landed_size == len(data) == (sshd_workdir.local / "w.bin").stat().st_size
    with backend.open_write(sshd_workdir.remote("w.bin"), offset=len(data)) as writer:
        writer.write(b"tail")
    assert writer.landed_size == len(data) + 4  # the whole file, not just this stream's bytes

    (tmp_path / "up.bin").write_bytes(data)
    records.lines.clear()
    result = copy_file(
        LocalBackend(), str(tmp_path / "up.bin"), backend, sshd_workdir.remote("up.bin")
    )
    assert result.verified == "size" and result.size == len(data)
    assert (sshd_workdir.local / "up.bin").read_bytes() == data
    text = records.text
    assert f"FSTAT before CLOSE: size={len(data)}" in text
    tag = source_tag(LocalBackend(), str(tmp_path / "up.bin"), len(data))
    temporary = partial_name(sshd_workdir.remote("up.bin"), tag)
    assert temporary in text  # the name the transcript shows (opened, renamed)
    assert f"STAT {temporary}" not in text


def test_no_ignore_packet_precedes_the_others(
    backend: SftpBackend, sshd_workdir: RemoteDir
) -> None:
    """asyncssh asks to send an SSH_MSG_IGNORE before each packet (a CBC countermeasure);
    none of them reaches the wire, every other packet does (transport.drop_ignore_packets)."""
    assert backend.ssh is not None
    ssh = backend.ssh.ssh
    asked: list[int] = []
    sent: list[bytes] = []
    dropping, send = ssh.send_packet, ssh._send

    def count_asked(pkttype: int, *args: bytes, **kwargs: object) -> None:
        asked.append(pkttype)
        dropping(pkttype, *args, **kwargs)

    def count_sent(data: bytes) -> None:
        sent.append(data)
        send(data)

    ssh.send_packet, ssh._send = count_asked, count_sent  # type: ignore[method-assign]
    try:
        write_file(backend, sshd_workdir.remote("i.bin"), make_data(200_000, seed=5))
    finally:
        ssh.send_packet, ssh._send = dropping, send  # type: ignore[method-assign]
    ignores = asked.count(2)  # MSG_IGNORE
    assert ignores > 10  # asyncssh still asks for them: the workaround is still needed
    assert len(sent) == len(asked) - ignores
    assert (sshd_workdir.local / "i.bin").stat().st_size == 200_000


def test_secrets_never_reach_a_log_record(
    sshd: Sshd, records: _Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SftpBackend(sshd_connection(sshd)).connect() as backend:
        write_file(backend, sshd.workdir("s").remote("f"), b"payload")
    monkeypatch.setenv("FM_KEY_PHRASE", KEY_PASSPHRASE)
    conn = sshd_connection(
        sshd,
        password=None,
        private_key=sshd.keys["pem"],
        private_key_passphrase_env="FM_KEY_PHRASE",
    )
    with SftpBackend(conn).connect() as backend:
        backend.stat(str(sshd.root))
    fails_with(AuthenticationError, sshd_connection(sshd, password="wrong-secret-pw"))
    text = records.text
    assert "authenticated as" in text
    key_body = max(sshd.keys["pem"].read_text().splitlines(), key=len)
    for secret in (sshd.password, KEY_PASSPHRASE, "wrong-secret-pw", key_body):
        assert secret not in text
    assert os.environ.get("FM_KEY_PHRASE") == KEY_PASSPHRASE


@pytest.mark.parametrize("count", [0, 99, 450, 1234])
def test_big_directories_are_listed_whole_with_readdir_pipelined(
    backend: SftpBackend, sshd_workdir: RemoteDir, count: int
) -> None:
    """OpenSSH answers a READDIR with about 100 names: 1234 files need more batches than the
    requests first sent (8), 450 fewer; every name comes once (issue 19)."""
    directory = f"big{count}"
    sshd_workdir.write(f"{directory}/.keep", b"")
    for index in range(count):
        sshd_workdir.write(f"{directory}/n{index:05d}", b"")
    names = [e.name for e in backend.list(sshd_workdir.remote(directory))]
    assert names == sorted([".keep", *(f"n{i:05d}" for i in range(count))])
    # the handle was closed and the channel is in step: more requests work at once
    assert backend.stat(sshd_workdir.remote(f"{directory}/.keep")).size == 0


def test_a_sibling_with_its_own_connection_is_its_own_tcp_flow(backend: SftpBackend) -> None:
    """The segments of one big file each get an SSH connection of their own (issue 19)."""
    backend.connect()
    own = backend.sibling_with_own_connection().connect()
    try:
        assert own.group is not backend.group
        assert own.ssh is not None and backend.ssh is not None
        assert own.ssh.ssh is not backend.ssh.ssh
        mine = own.ssh.ssh.get_extra_info("sockname")
        theirs = backend.ssh.ssh.get_extra_info("sockname")
        assert mine != theirs  # another local port: another TCP connection
    finally:
        own.close()
