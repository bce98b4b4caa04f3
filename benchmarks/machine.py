"""What the benchmark ran on: CPU, cores, memory, kernel, and the version of every tool."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import tempfile
from pathlib import Path

__all__ = ["machine_info"]


def _first_line(argv: list[str], *, from_stdin_fd: bool = False) -> str:
    """The first line a ``--version`` style command prints ("not installed" if absent).

    vsftpd prints its version to file descriptor 0, hence ``from_stdin_fd``."""
    try:
        if from_stdin_fd:
            with tempfile.TemporaryFile("w+b") as sink:
                subprocess.run(argv, stdin=sink, capture_output=True, timeout=10, check=False)
                sink.seek(0)
                text = sink.read().decode(errors="replace")
        else:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            text = done.stdout or done.stderr
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return text.strip().splitlines()[0] if text.strip() else "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, object]:
    return {
        "cpu": _cpu_model(),
        "nproc": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "tools": {
            "ferryman": _version("ferryman"),
            "curl": _first_line(["curl", "--version"]),
            "lftp": _first_line(["lftp", "--version"]),
            "openssh": _first_line(["ssh", "-V"]),
            "vsftpd": _first_line(["/usr/sbin/vsftpd", "-v"], from_stdin_fd=True),
            **{name: _version(name) for name in ("fsspec", "sshfs", "asyncssh", "paramiko")},
        },
    }
