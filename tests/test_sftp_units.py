"""Pieces of the SFTP backend that need no server: error translation, host key names, key
files, the private event loop."""

from __future__ import annotations

import asyncio
import builtins
import socket
import subprocess
import threading
import time
from pathlib import Path

import asyncssh
import pytest

from ferryman.backends.sftp import loop
from ferryman.backends.sftp.auth import _is_encrypted
from ferryman.backends.sftp.hostkeys import Verdict, host_entry_name
from ferryman.backends.sftp.translate import translate
from ferryman.errors import (
    AuthenticationError,
    ConnectError,
    FerrymanError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RemoteError,
    TimeoutError,
    TransferError,
)


@pytest.mark.parametrize(
    ("raised", "expected", "retriable"),
    [
        (asyncssh.SFTPNoSuchFile("No such file"), NotFoundError, False),
        (asyncssh.SFTPNoSuchPath("gone"), NotFoundError, False),
        (asyncssh.SFTPPermissionDenied("Permission denied"), PermissionDeniedError, False),
        (asyncssh.SFTPFailure("Failure"), RemoteError, False),
        (asyncssh.SFTPFileAlreadyExists("exists"), RemoteError, False),
        (asyncssh.SFTPNoSpaceOnFilesystem("full"), TransferError, False),
        (asyncssh.SFTPConnectionLost("lost"), ConnectError, True),
        (asyncssh.SFTPOpUnsupported("no"), ProtocolError, False),
        (asyncssh.PermissionDenied("denied"), AuthenticationError, False),
        (asyncssh.ConnectionLost("reset"), ConnectError, True),
        (
            asyncssh.DisconnectError(asyncssh.DISC_ILLEGAL_USER_NAME, "bad user"),
            ConnectError,
            False,
        ),
        (builtins.TimeoutError(), TimeoutError, True),
        (ConnectionRefusedError(), ConnectError, True),
        (ConnectionResetError(), ConnectError, True),
        (socket.gaierror(socket.EAI_NONAME, "unknown"), ConnectError, False),
        (ValueError("odd"), ProtocolError, False),
    ],
)
def test_translation(raised: BaseException, expected: type[FerrymanError], retriable: bool) -> None:
    error = translate(raised, "STAT /x", "sftp://u@h:22")
    assert type(error) is expected
    assert error.retriable is retriable
    assert error.message.startswith("STAT /x")


def test_translation_mid_transfer_and_passthrough() -> None:
    lost = translate(asyncssh.SFTPConnectionLost("lost"), "read /x", "h", transfer=True)
    assert type(lost) is TransferError and lost.retriable
    refusal = translate(asyncssh.SFTPFailure("Failure"), "RMDIR /d", "h")
    assert refusal.reply_text == "Failure" and refusal.reply_code == asyncssh.FX_FAILURE
    assert "(FAILURE)" in refusal.message
    own = NotFoundError("mine")
    assert translate(own, "x", "h") is own


def test_known_hosts_names() -> None:
    assert host_entry_name("sftp.example", 22) == "sftp.example"
    assert host_entry_name("127.0.0.1", 2222) == "[127.0.0.1]:2222"
    assert host_entry_name("::1", 2222) == "[::1]:2222"
    trusted = {v for v in Verdict if v.trusted}
    assert trusted == {Verdict.PINNED, Verdict.KNOWN, Verdict.RECORDED, Verdict.INSECURE}


@pytest.mark.parametrize(
    ("options", "encrypted"),
    [
        (["-t", "ed25519", "-N", ""], False),
        (["-t", "ed25519", "-N", "phrase-123"], True),
        (["-t", "ecdsa", "-m", "PEM", "-N", ""], False),
        (["-t", "ecdsa", "-m", "PEM", "-N", "phrase-123"], True),
        (["-t", "ecdsa", "-m", "PKCS8", "-N", "phrase-123"], True),
    ],
)
def test_encrypted_key_files_are_recognised(
    tmp_path: Path, options: list[str], encrypted: bool
) -> None:
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", *options, "-f", str(key)], check=True, timeout=30)
    assert _is_encrypted(key) is encrypted


def test_loop_times_out_and_cancels_the_work() -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    started = time.monotonic()
    with pytest.raises(builtins.TimeoutError):
        loop.run(forever(), 0.2)
    assert time.monotonic() - started < 2
    assert cancelled.wait(2)


def test_loop_refuses_to_block_itself_and_serves_many_threads() -> None:
    async def inner() -> str:
        return "never"

    async def outer() -> None:
        loop.run(inner(), 1)

    with pytest.raises(RuntimeError, match="event loop itself"):
        loop.run(outer(), 1)

    async def echo(value: int) -> int:
        await asyncio.sleep(0.01)
        return value

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(loop.run(echo(n), 5))) for n in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == list(range(16))
