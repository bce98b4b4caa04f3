"""How many files are in flight at once when the user does not say (issue 19).

On loopback or a LAN a file costs CPU, not waiting, and a few workers keep both cores busy
(4 was measured best there, docs/benchmarks.md). Over a long round trip a file is mostly
waiting: a download of a small file is a handful of round trips whatever the CPU, so the files
in flight must cover them: ``round trip x round trips per file / CPU per file`` (each backend
declares its round trips per file read and written: SFTP 2 and 3, FTPS 4 and 5). Each backend
says what one more file in flight costs (``Capabilities.shared_connections``: SFTP puts them on
shared channels of one SSH connection; FTP needs a control connection each, with its own
handshake and a server slot), big files need fewer (a few streams fill a link; each holds
buffers), and a server that refused connections before (``hostlimits``) is never asked for more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..backends.base import Backend
from . import hostlimits

__all__ = [
    "LOCAL_PARALLEL",
    "MAX_PARALLEL",
    "Choice",
    "choose_parallel",
    "file_wait",
    "host_key",
]

#: files in flight when every round trip is short (or unknown)
LOCAL_PARALLEL = 4
#: at most this many, whatever the round trip (threads, sockets and buffers cost too): 256
#: took an SFTP 2000-file download at 50 ms from 2.1 s to 1.5 s against 128 (issue 19)
MAX_PARALLEL = 256
#: at most this many for a backend that opens a connection per file in flight (FTP): 48
#: measured 1.3x faster than 32 at a 50 ms round trip (64: no better on 2 cores), and it stays
#: below the 50 sessions per address that Debian's vsftpd accepts (the 51st is refused)
MAX_CONNECTIONS = 48
#: a round trip shorter than this is "local": CPU-bound, :data:`LOCAL_PARALLEL`
LOCAL_ROUND_TRIP = 0.002
#: CPU seconds one small file costs the client (measured: 0.5-0.9 ms on loopback)
CPU_PER_FILE = 0.0005
#: bytes in flight that are enough to fill a link, whatever its round trip: big files need
#: only a few streams (each holding buffers), small ones many
BYTES_IN_FLIGHT = 256 * 1024 * 1024


@dataclass(frozen=True)
class Choice:
    parallel: int
    reason: str


def host_key(backend: Backend) -> str:
    """The key a server's remembered limit is filed under (no secrets: ``describe()``)."""
    return backend.describe()


def _cap(backend: Backend) -> int:
    if backend.capabilities.shared_connections:
        return MAX_PARALLEL
    limit = backend.capabilities.max_connections
    return min(MAX_CONNECTIONS, limit) if limit else MAX_CONNECTIONS


def file_wait(source: Backend, destination: Backend) -> float:
    """Seconds one small file waits on the network: each side's round trip times the round
    trips a file costs it (``Capabilities.read_round_trips`` / ``write_round_trips``). The
    files in flight must cover that wait for the CPU to be the limit (Little's law)."""
    return (source.round_trip or 0.0) * source.capabilities.read_round_trips + (
        destination.round_trip or 0.0
    ) * destination.capabilities.write_round_trips


def choose_parallel(
    explicit: int | None, files: int, total_bytes: int, source: Backend, destination: Backend
) -> Choice:
    """Files in flight for a run of ``files`` files of ``total_bytes`` bytes in all."""
    files = max(1, files)
    if explicit is not None:
        return Choice(max(1, min(explicit, files)), f"--parallel {explicit}")
    trips = [r for r in (source.round_trip, destination.round_trip) if r is not None]
    round_trip = max(trips, default=None)
    if round_trip is None or round_trip < LOCAL_ROUND_TRIP:
        wanted = LOCAL_PARALLEL
        why = "short round trip" if round_trip is not None else "round trip unknown"
    else:
        waits = file_wait(source, destination)
        wanted = max(LOCAL_PARALLEL, math.ceil(waits / CPU_PER_FILE))
        why = f"round trip {round_trip * 1000:.0f} ms, {waits * 1000:.0f} ms per file"
    average = max(1, total_bytes // files)
    wanted = min(wanted, max(LOCAL_PARALLEL, BYTES_IN_FLIGHT // average))
    wanted = min(wanted, _cap(source), _cap(destination), files)
    for side in (source, destination):
        known = hostlimits.limit_for(host_key(side))
        if known is not None and known < wanted:
            wanted = known
            why += f"; {side.describe()} accepted {known} connection(s) before"
    return Choice(max(1, wanted), why)
