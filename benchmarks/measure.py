"""Run one command and measure it: wall-clock seconds, CPU seconds and peak RSS of its tree.

Peak memory is ``ru_maxrss`` of the reaped command: the largest peak resident set of any
single process of its tree (Linux, KiB; a child's figure covers its descendants that it
waited for). A process's high-water mark survives ``exec``, so a command forked straight
from this (large) Python process would inherit our RSS as its floor. Every command therefore
runs under a tiny wrapper that forks, execs and reports its child's resource usage: GNU
``/usr/bin/time -f '%U %S %M'`` (floor about 1 MiB), else a ``python -S`` one-liner (floor
about 8 MiB). :func:`rss_floor_kib` measures the floor (``true`` under the wrapper). The same
report gives the tree's CPU time (user + system of the processes waited for).

The command runs in its own session (process group). A time-out kills that group; it is
signalled only while its leader is not yet reaped (``waitid(WNOWAIT)`` first), so a recycled
process id can never be hit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "Measurement",
    "ServerCpu",
    "Status",
    "rss_floor_kib",
    "run_measured",
    "tail",
    "wrapper_name",
]

GNU_TIME = Path("/usr/bin/time")
_PY_WRAPPER = """\
import os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
with open(out, "w") as handle:
    handle.write(f"{usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss}\\n")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def _gnu_time() -> bool:
    try:
        done = subprocess.run(
            [str(GNU_TIME), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "GNU" in done.stdout + done.stderr


_USE_GNU_TIME = _gnu_time()


def wrapper_name() -> str:
    return "GNU time (%U %S %M)" if _USE_GNU_TIME else "python -S fork/wait4 wrapper"


def _wrapped(argv: Sequence[str], rss_file: Path) -> list[str]:
    if _USE_GNU_TIME:
        return [str(GNU_TIME), "-f", "%U %S %M", "-o", str(rss_file), *argv]
    return [sys.executable, "-S", "-c", _PY_WRAPPER, str(rss_file), *argv]


def _read_usage(rss_file: Path) -> tuple[float, int]:
    """CPU seconds and peak RSS (KiB) from the wrapper's report: its last line, ``user
    system maxrss`` (GNU time may write a status line first)."""
    try:
        fields = rss_file.read_text().strip().splitlines()[-1].split()
        return float(fields[0]) + float(fields[1]), int(fields[2])
    except (OSError, ValueError, IndexError):
        return 0.0, 0


Status = Literal["ok", "failed", "timeout", "wrong", "unavailable"]


@dataclass
class Measurement:
    """The outcome of one tool run.

    ``status``: ``ok``; ``failed`` (non-zero exit); ``timeout``; ``wrong`` (exit 0, but the
    correctness check after the run failed); ``unavailable`` (the tool is not installed).
    """

    status: Status
    seconds: float
    max_rss_kib: int
    exit_code: int | None
    detail: str = ""
    cpu_seconds: float = 0.0  # user + system time of the tool's process tree
    server_cpu_seconds: float | None = None  # the server's processes during the run
    #: behind the latency relay (run.py --latency): its CPU seconds during the run, and the
    #: connections and turns (request/response exchanges) it relayed
    relay_cpu_seconds: float | None = None
    relay_connections: int | None = None
    relay_turns: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "seconds": round(self.seconds, 4),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "server_cpu_seconds": (
                None if self.server_cpu_seconds is None else round(self.server_cpu_seconds, 3)
            ),
            "max_rss_mib": round(self.max_rss_kib / 1024, 1),
            **(
                {}
                if self.relay_cpu_seconds is None
                else {
                    "relay_cpu_seconds": round(self.relay_cpu_seconds, 3),
                    "relay_connections": self.relay_connections,
                    "relay_turns": self.relay_turns,
                }
            ),
            "exit_code": self.exit_code,
            "detail": self.detail,
        }


def tail(path: Path, limit: int = 600) -> str:
    """The last ``limit`` characters of a text file (empty if it cannot be read)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return ""


class _Deadline:
    """Kills a process group when its time is up, unless the run has ended first."""

    def __init__(self, pid: int, seconds: float) -> None:
        self.pid = pid
        self.expired = False
        self._ended = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._ended:
                return
            self.expired = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)

    def end(self) -> None:
        """Call after the process exited (still unreaped): no kill can follow."""
        with self._lock:
            self._ended = True
        self._timer.cancel()


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdout_path: Path,
    stderr_path: Path,
    timeout: float,
) -> Measurement:
    """Run ``argv`` to completion; stdout and stderr go to files (nothing through a pipe)."""
    rss_file = stdout_path.with_suffix(".rss")
    rss_file.unlink(missing_ok=True)
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                _wrapped(argv, rss_file),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            return Measurement("failed", 0.0, 0, None, f"cannot start {argv[0]}: {exc}")
        deadline = _Deadline(proc.pid, timeout)
        try:
            # wait for the exit without reaping, so the deadline can never signal a reused id
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        except BaseException:  # Ctrl-C: the command (still unreaped) goes down with us
            deadline.end()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        seconds = time.perf_counter() - started
        deadline.end()
        proc.wait()
    code = proc.returncode
    cpu, rss = _read_usage(rss_file)
    if deadline.expired:
        return Measurement("timeout", seconds, rss, code, f"killed after {timeout} s", cpu)
    if code != 0:
        detail = tail(stderr_path) or tail(stdout_path) or "(no output)"
        return Measurement("failed", seconds, rss, code, detail, cpu)
    return Measurement("ok", seconds, rss, code, cpu_seconds=cpu)


def rss_floor_kib(scratch: Path) -> int:
    """What the wrapper reports for ``true``: the floor under every figure."""
    result = run_measured(
        ["true"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd=scratch,
        stdout_path=scratch / "rss-floor.out",
        stderr_path=scratch / "rss-floor.err",
        timeout=30,
    )
    return result.max_rss_kib


class ServerCpu:
    """The CPU time of a server and every process it starts (sessions, privilege-separated
    children), counted by a cgroup (v1 ``cpuacct``) that the server is moved into before the
    first run: exact, whether or not the server reaps its children. Needs root and a
    ``cpuacct`` hierarchy; :meth:`attach` returns None where there is none."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, group: Path, pid: int) -> None:
        self.group, self.pid = group, pid

    @classmethod
    def attach(cls, pid: int) -> ServerCpu | None:
        group = cls.ROOT / f"ferryman-bench-{pid}"
        try:
            group.mkdir(exist_ok=True)
            (group / "cgroup.procs").write_text(str(pid))
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
            return None
        return cls(group, pid)

    def seconds(self, settle: float = 3.0) -> float | None:
        """CPU seconds so far, once the sessions of the last run have ended (``settle``
        seconds at most: a session still running is counted as far as it got)."""
        deadline = time.monotonic() + settle
        try:
            while time.monotonic() < deadline:
                if len((self.group / "cgroup.procs").read_text().split()) <= 1:
                    break
                time.sleep(0.02)
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def detach(self) -> None:
        """Move what is left back to the root group and remove the group; never raises."""
        with contextlib.suppress(OSError):
            for pid in (self.group / "cgroup.procs").read_text().split():
                (self.ROOT / "cgroup.procs").write_text(pid)
            self.group.rmdir()
