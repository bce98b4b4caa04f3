"""The servers behind a slow link: vsftpd and sshd on 127.0.0.1, the relay on 127.0.0.2.

``run.py --latency MS`` starts, per one-way delay (and per rate cap, for the capped
workload), a fresh set: vsftpd plain and explicit FTPS (``require_ssl_reuse=YES``), each with
``pasv_address=127.0.0.2`` and a PASV port range of its own, OpenSSH sshd, and one relay
process (benchmarks/relay.py) listening on 127.0.0.2 at every server's port and every PASV
port, forwarding to 127.0.0.1. EPSV replies carry only a port, which clients connect to on the
control connection's host: the relay again. The tools are handed the relay's endpoints; the
FTPS certificate names 127.0.0.2 and the known-hosts file has ``[127.0.0.2]:PORT`` lines.

:class:`RelayProcess` measures the relay per tool run: its CPU seconds (``/proc/PID/stat``,
utime + stime) and its counts (connections, turns, bytes) before and after, by SIGUSR1.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.servers.vsftpd import Vsftpd

from benchmarks.environment import BenchDirs, Endpoint, Protocol

if TYPE_CHECKING:
    from ferryman.certs import PkiFiles

__all__ = [
    "RELAY_HOST",
    "Link",
    "RelayCounts",
    "RelayProcess",
    "free_port_range",
    "latency_servers",
]

RELAY_HOST = "127.0.0.2"
SERVER_HOST = "127.0.0.1"
#: PASV ports per vsftpd: enough for 32 sessions each holding a listener at once
PASV_PORTS = 128
_ROOT = Path(__file__).resolve().parent.parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Link:
    """What the relay puts between tools and servers: a one-way delay and an optional cap."""

    delay_ms: float
    rate: float | None = None  #: bytes/s per connection and direction

    @property
    def label(self) -> str:
        cap = f", {self.rate / 1e6:g} MB/s per connection" if self.rate else ""
        return f"{self.delay_ms:g} ms one-way{cap}"


@dataclass(frozen=True)
class RelayCounts:
    connections: int = 0
    turns: int = 0
    c2s_bytes: int = 0
    s2c_bytes: int = 0
    cpu_seconds: float = 0.0

    def __sub__(self, other: RelayCounts) -> RelayCounts:
        return RelayCounts(
            self.connections - other.connections,
            self.turns - other.turns,
            self.c2s_bytes - other.c2s_bytes,
            self.s2c_bytes - other.s2c_bytes,
            self.cpu_seconds - other.cpu_seconds,
        )


def _bindable(host: str, port: int) -> bool:
    """Whether a listener can bind ``host:port`` as vsftpd and the relay do: with
    SO_REUSEADDR, so that connections of earlier runs in TIME-WAIT do not count."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def free_port_range(count: int, avoid: set[int] | None = None, attempts: int = 500) -> int:
    """The first port of ``count`` consecutive ports bindable on both 127.0.0.1 and
    127.0.0.2, below the ephemeral range (where outgoing connections take their ports)."""
    avoid = avoid or set()
    high = _ephemeral_low() - count
    for _ in range(attempts):
        base = random.randrange(20000, high)  # noqa: S311 (a port, not a secret)
        ports = range(base, base + count)
        if avoid.isdisjoint(ports) and all(
            _bindable(host, port) for port in ports for host in (SERVER_HOST, RELAY_HOST)
        ):
            return base
    raise RuntimeError(f"no {count} consecutive free ports on {SERVER_HOST} and {RELAY_HOST}")


class RelayProcess:
    """benchmarks/relay.py as a child process, in its own session, stopped by pid."""

    def __init__(self, link: Link, maps: list[str], workdir: Path) -> None:
        self.link = link
        self.stats_path = workdir / "relay-stats.json"
        self.log_path = workdir / "relay.log"
        argv = [sys.executable, "-m", "benchmarks.relay", "--delay-ms", f"{link.delay_ms:g}"]
        if link.rate:
            argv += ["--rate-per-conn", str(int(link.rate))]
        argv += ["--stats", str(self.stats_path)]
        for item in maps:
            argv += ["--map", item]
        self.stats_path.unlink(missing_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while not self.stats_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_text = self.log_path.read_text(errors="replace").strip()
                raise RuntimeError(f"the relay did not start: {log_text[-800:] or '(no output)'}")
            time.sleep(0.02)
        self._seq = self._read()["seq"]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> dict[str, int]:
        document: dict[str, int] = json.loads(self.stats_path.read_text())
        return document

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime

    def counts(self, timeout: float = 10.0) -> RelayCounts:
        """The relay's totals now (SIGUSR1, then its stats file's next version)."""
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, ValueError):
                found = self._read()
                if found["seq"] > self._seq:
                    self._seq = found["seq"]
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the relay did not report its counts (SIGUSR1)")
            time.sleep(0.005)
        return RelayCounts(
            found["connections"],
            found["turns"],
            found["c2s_bytes"],
            found["s2c_bytes"],
            self.cpu_seconds(),
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _pki(base: Path) -> PkiFiles:
    from ferryman.certs import make_test_pki  # noqa: PLC0415 (the servers' side only)

    return make_test_pki(base / "pki", hosts=(SERVER_HOST, RELAY_HOST, "localhost"))


@contextmanager
def latency_servers(
    dirs: BenchDirs, protocols: set[Protocol], problems: dict[str, str], link: Link
) -> Iterator[tuple[dict[str, Endpoint], RelayProcess]]:
    """Servers for ``protocols`` (ftp, ftps, sftp) behind a relay with ``link``; yields the
    relay's endpoints by protocol and the relay."""
    endpoints: dict[str, Endpoint] = {}
    maps: list[str] = []
    taken: set[int] = set()
    work = Path(tempfile.mkdtemp(prefix="ferryman-relay-", dir=dirs.base))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        pki = _pki(work) if "ftps" in protocols else None
        for protocol in ("ftp", "ftps"):
            if protocol not in protocols:
                continue
            low = free_port_range(PASV_PORTS, taken)
            high = low + PASV_PORTS - 1
            taken.update(range(low, high + 1))
            config = {
                "pasv_address": RELAY_HOST,
                "pasv_addr_resolve": "NO",
                "pasv_min_port": str(low),
                "pasv_max_port": str(high),
                # the relay connects from 127.0.0.1, like the control connection: no change
                # to pasv_promiscuous (vsftpd checks the data connection's peer address)
                # Debian's vsftpd refuses the 51st session from one address (421, a compiled-in
                # max_per_ip of 50, not the documented 0): rclone --transfers 32 --checkers 32
                # opens more, and would measure its retry back-off, not the link
                "max_per_ip": "0",
                "max_clients": "0",
            }
            server = stack.enter_context(
                Vsftpd(
                    "none" if protocol == "ftp" else "explicit",
                    root=dirs.ftproot,
                    pki=pki if protocol == "ftps" else None,
                    extra_config=config,
                )
            )
            maps += [
                f"{RELAY_HOST}:{server.port}={SERVER_HOST}:{server.port}",
                f"{RELAY_HOST}:{low}-{high}={SERVER_HOST}:{low}-{high}",
            ]
            endpoints[protocol] = Endpoint(
                protocol,
                RELAY_HOST,
                server.port,
                server.user,
                "",
                ca_file=server.pki.ca_cert if protocol == "ftps" and server.pki else None,
                server_pid=server.pid,
            )
        if "sftp" in protocols:
            from tests.servers.sshd import Sshd  # noqa: PLC0415

            try:
                sshd = stack.enter_context(Sshd())
            except RuntimeError as exc:
                problems["sftp"] = f"sshd unavailable: {exc}"
            else:
                known_hosts = work / "known_hosts"
                known_hosts.write_text(
                    "".join(
                        f"[{RELAY_HOST}]:{sshd.port} {line}\n"
                        for line in sshd.host_key_lines.values()
                    )
                )
                maps.append(f"{RELAY_HOST}:{sshd.port}={SERVER_HOST}:{sshd.port}")
                endpoints["sftp"] = Endpoint(
                    "sftp",
                    RELAY_HOST,
                    sshd.port,
                    sshd.user,
                    str(dirs.ftproot),
                    key_file=sshd.keys["plain"],
                    known_hosts=known_hosts,
                    server_pid=sshd.pid,
                )
        relay = RelayProcess(link, maps, work)
        stack.callback(relay.stop)
        yield endpoints, relay
