"""What every real-server fixture (vsftpd, ProFTPD, sshd) needs: a free loopback port, a
readiness probe's wait, and stopping the server's process group by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable

__all__ = ["HOST", "first_line", "free_port", "stop_group", "wait_until_ready"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound as 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL, to the process group ``proc`` leads (a server's per-session
    children too), while ``proc`` is unreaped so that the group id cannot have been reused."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    proc.wait(5)


def first_line(sock: socket.socket) -> bytes | None:
    """What the peer sends up to its first line end (a banner), or None if it closes first."""
    banner = b""
    while b"\n" not in banner:
        chunk = sock.recv(1024)
        if not chunk:
            return None
        banner += chunk
    return banner


def wait_until_ready(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str],
    probe: Callable[[], bool],
    timeout: float,
    what: str,
    diagnostics: Callable[[], str],
    error: type[Exception],
) -> None:
    """Poll ``probe`` until it passes; ``error`` (with ``diagnostics()``) when the server
    exits first or ``timeout`` seconds pass. ``what`` names it: "vsftpd on 127.0.0.1:2121"."""
    deadline = time.monotonic() + timeout
    while True:
        code = proc.poll()
        if code is not None:
            raise error(f"{what} exited with status {code} at start:\n" + diagnostics())
        if probe():
            return
        if time.monotonic() > deadline:
            raise error(f"{what} sent no banner within {timeout} s:\n" + diagnostics())
        time.sleep(0.05)
