"""What every real-server fixture (vsftpd, ProFTPD, sshd) needs: a free loopback port, and
stopping the server's process group by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess

__all__ = ["HOST", "free_port", "stop_group"]

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
