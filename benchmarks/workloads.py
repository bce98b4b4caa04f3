"""The workloads: what is moved, over which protocols, by which tools, and how it is checked.

Each workload runs once per protocol it lists; every variant of it runs once per round, the
variants alternating (the order rotates each round). Ratios are ``variant seconds /
reference seconds`` of the same round, the reference being a ferryman variant: above 1
means ferryman was faster.

``csv-load`` (1 M-row CSV into SQLite) is not registered: ferryman's ``load`` command does not
exist yet (issue 5).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.environment import MIB, BenchDirs, Endpoint, Protocol, Sizes, count_tree
from benchmarks.fsspec_peers import FsspecClient
from benchmarks.peers import (
    Curl,
    Ferryman,
    Ftplib,
    Invocation,
    Kind,
    Lftp,
    OpensshSftp,
    Task,
    Variant,
)

__all__ = ["WORKLOADS", "PreparedRun", "Workload", "prepare_run", "workload_names"]

#: ``one``: a single 4 KiB file of the small set (time to first byte)
Dataset = Literal["big", "small", "many", "one"]


@dataclass(frozen=True)
class Workload:
    name: str
    kind: Kind
    protocols: tuple[Protocol, ...]
    dataset: Dataset
    variants: tuple[Variant, ...]
    reference: str
    measures: str
    #: runs only behind the latency relay (``run.py --latency``), never on plain loopback
    latency: bool = False
    #: the relay's per-connection cap for this workload (bytes/s), if any
    rate: float | None = None

    @property
    def unit(self) -> str:
        return {"big": "MiB/s", "small": "files/s", "many": "entries/s", "one": "files/s"}[
            self.dataset
        ]

    @property
    def data_set(self) -> str:
        """The data set on the server it needs (``one`` is a file of ``small``)."""
        return "small" if self.dataset == "one" else self.dataset

    def files(self, sizes: Sizes) -> int:
        """Files one run moves (for round trips per file)."""
        return self.expected(sizes)[0]

    def amount(self, sizes: Sizes) -> float:
        """What one run moves, in the unit's numerator (MiB, files or entries)."""
        if self.dataset == "big":
            return sizes.big_bytes / MIB
        if self.dataset == "one":
            return 1.0
        return float(sizes.small_count if self.dataset == "small" else sizes.listing_count)

    def expected(self, sizes: Sizes) -> tuple[int, int]:
        """Files and bytes a transfer must leave at its destination."""
        if self.dataset == "one":
            return 1, sizes.small_bytes
        if self.dataset == "big":
            return 1, sizes.big_bytes
        if self.dataset == "small":
            return sizes.small_count, sizes.small_count * sizes.small_bytes
        return sizes.listing_count, 0


@dataclass
class PreparedRun:
    """A task ready to run: ``check`` says what is wrong afterwards (``None``: correct);
    ``cleanup`` removes what the run left."""

    task: Task
    check: Callable[[Invocation, Path], str | None]
    cleanup: Callable[[], None]


def _tree_check(directory: Path, files: int, size: int) -> Callable[[Invocation, Path], str | None]:
    def check(_invocation: Invocation, _stdout: Path) -> str | None:
        found = count_tree(directory)
        if found != (files, size):
            return f"expected {files} file(s), {size} bytes; found {found[0]}, {found[1]} bytes"
        return None

    return check


def _listing_check(entries: int) -> Callable[[Invocation, Path], str | None]:
    def check(invocation: Invocation, stdout: Path) -> str | None:
        text = stdout.read_text(errors="replace")
        if invocation.listing == "json":
            try:
                found = len(json.loads(text)["entries"])
            except (ValueError, KeyError, TypeError) as exc:
                return f"unreadable JSON listing: {exc}"
        else:
            found = sum(1 for line in text.splitlines() if line.strip())
        return None if found == entries else f"listed {found} entries, expected {entries}"

    return check


def _sample_hashes(path: Path, sample: int = MIB) -> tuple[str, str]:
    """SHA-256 of the first and the last ``sample`` bytes of ``path`` (fsspec_client.py
    prints the same two of what it read)."""
    with path.open("rb") as source:
        head = source.read(sample)
        source.seek(max(0, path.stat().st_size - sample))
        tail = source.read(sample)
    return hashlib.sha256(head).hexdigest(), hashlib.sha256(tail).hexdigest()


def _read_check(source: Path) -> Callable[[Invocation, Path], str | None]:
    size = source.stat().st_size
    head, tail = _sample_hashes(source)

    def check(_invocation: Invocation, stdout: Path) -> str | None:
        text = stdout.read_text(errors="replace").strip()
        try:
            found = json.loads(text.splitlines()[-1])
        except (ValueError, IndexError) as exc:
            return f"unreadable result {text[-200:]!r}: {exc}"
        if found.get("bytes") != size:
            return f"read {found.get('bytes')} bytes, expected {size}"
        if (found.get("head_sha256"), found.get("tail_sha256")) != (head, tail):
            return "the first or last MiB read differs from the file's"
        return None

    return check


def prepare_run(
    workload: Workload, endpoint: Endpoint, dirs: BenchDirs, sizes: Sizes, run_id: str
) -> PreparedRun:
    """Clean destination, the task, its check and its clean-up for one run."""
    files, size = workload.expected(sizes)
    source = {
        "big": "data/big.bin",
        "small": "data/small",
        "many": "data/many",
        "one": "data/small/f000000.bin",
    }[workload.dataset]
    kind = workload.kind
    if kind in ("get-file", "get-dir"):
        destination = dirs.fresh_local(run_id)
        local = destination / Path(source).name if kind == "get-file" else destination
        task = Task(kind, endpoint, source, local, run_id)
        check = _tree_check(destination, files, size)
        return PreparedRun(task, check, lambda: dirs.remove(destination))
    if kind in ("put-file", "put-dir"):
        upload = dirs.fresh_upload(run_id)
        task = Task(kind, endpoint, upload, dirs.ftproot / source, run_id)
        check = _tree_check(dirs.ftproot / upload, files, size)
        return PreparedRun(task, check, lambda: dirs.remove(dirs.ftproot / upload))
    task = Task(kind, endpoint, source, dirs.local, run_id)
    if kind == "read-file":
        return PreparedRun(task, _read_check(dirs.ftproot / source), lambda: None)
    return PreparedRun(task, _listing_check(files), lambda: None)


FTP: tuple[Protocol, ...] = ("ftp", "ftps")
#: ferryman as a user runs it, without --parallel (4 connections): the reference of the
#: many-file workloads, so the issue's targets are judged on the default
DEFAULT_PARALLEL = "ferryman (default -P4)"


def _big(name: str, kind: Kind, measures: str) -> Workload:
    variants = (Ferryman("ferryman"), Curl("curl"), Lftp("lftp"), Ftplib("ftplib"))
    return Workload(name, kind, FTP, "big", variants, "ferryman", measures)


def _small(name: str, kind: Kind, measures: str) -> Workload:
    mirror = "lftp mirror -R" if kind == "put-dir" else "lftp mirror"
    variants = (
        Ferryman("ferryman -P1", parallel=1),
        Ferryman("ferryman -P2", parallel=2),
        Ferryman(DEFAULT_PARALLEL),
        Ferryman("ferryman -P8", parallel=8),
        Lftp(f"{mirror} --parallel=1", parallel=1),
        Lftp(f"{mirror} --parallel=8", parallel=8),
        Ftplib("ftplib loop"),
    )
    return Workload(name, kind, FTP, "small", variants, DEFAULT_PARALLEL, measures)


def _sftp_big(name: str, kind: Kind, measures: str) -> Workload:
    variants = (Ferryman("ferryman"), OpensshSftp("sftp -R 64", requests=64))
    return Workload(name, kind, ("sftp",), "big", variants, "ferryman", measures)


def _sftp_small(name: str, kind: Kind, measures: str) -> Workload:
    variants = (
        Ferryman("ferryman -P1", parallel=1),
        Ferryman(DEFAULT_PARALLEL),
        Ferryman("ferryman -P8", parallel=8),
        OpensshSftp("sftp -b -R 64", requests=64),
    )
    return Workload(name, kind, ("sftp",), "small", variants, DEFAULT_PARALLEL, measures)


#: the fsspec workloads' protocols: ftps-noreuse is explicit FTPS from a vsftpd that lets data
#: connections start new TLS sessions, which fsspec's FTPFileSystem needs (environment.py)
FS_PROTOCOLS: tuple[Protocol, ...] = ("ftp", "ftps", "ftps-noreuse", "sftp")
_ALL: frozenset[Protocol] = frozenset(FS_PROTOCOLS)
_SFTP: frozenset[Protocol] = frozenset({"sftp"})
_FTPS: frozenset[Protocol] = frozenset({"ftp", "ftps", "ftps-noreuse"})
#: ferryman's filesystem as a program makes it, without options: the reference
FS_GET_REFERENCE = "ferryman fs (default parallel=4)"
FS_READ_REFERENCE = "ferryman fs (default)"


def _fs_small_get() -> Workload:
    variants = (
        FsspecClient(FS_GET_REFERENCE, "ferryman", _ALL),
        FsspecClient("ferryman fs parallel=1", "ferryman", _ALL, fs_options=("parallel=1",)),
        FsspecClient("ferryman fs parallel=2", "ferryman", _ALL, fs_options=("parallel=2",)),
        FsspecClient("ferryman fs parallel=8", "ferryman", _ALL, fs_options=("parallel=8",)),
        # sshfs's recursive get hands the directory itself to _get_file, which fails ("... is
        # a directory"): measured with a glob instead, the failing form kept to show it
        FsspecClient("sshfs get(recursive=True)", "sshfs", _SFTP),
        FsspecClient("sshfs get(dir/*) (default)", "sshfs", _SFTP, glob=True),
        FsspecClient(
            "sshfs get(dir/*) batch_size=32",
            "sshfs",
            _SFTP,
            glob=True,
            call_options=("batch_size=32",),
        ),
        FsspecClient("fsspec sftp (paramiko)", "paramiko", _SFTP),
        FsspecClient("fsspec ftp", "fsspec-ftp", _FTPS),
    )
    return Workload(
        "fs-small-get",
        "get-dir",
        FS_PROTOCOLS,
        "small",
        variants,
        FS_GET_REFERENCE,
        "fs.get(dir + '/', local, recursive=True) of 4 KiB files",
    )


def _fs_big_read() -> Workload:
    variants = (
        FsspecClient(FS_READ_REFERENCE, "ferryman", _ALL),
        FsspecClient("sshfs (default)", "sshfs", _SFTP),
        FsspecClient("fsspec sftp (paramiko)", "paramiko", _SFTP),
        FsspecClient("fsspec sftp (paramiko) prefetch()", "paramiko", _SFTP, prefetch=True),
        FsspecClient("fsspec ftp", "fsspec-ftp", _FTPS),
        FsspecClient(
            "fsspec ftp block_size=4 MiB", "fsspec-ftp", _FTPS, fs_options=("block_size=4194304",)
        ),
    )
    return Workload(
        "fs-big-read",
        "read-file",
        FS_PROTOCOLS,
        "big",
        variants,
        FS_READ_REFERENCE,
        "fs.open(big file, 'rb') read to the end in 4 MiB pieces",
    )


WORKLOADS: tuple[Workload, ...] = (
    _big("big-download", "get-file", "one big file from the server to the local disk"),
    _big("big-upload", "put-file", "one big file from the local disk to the server"),
    _small("small-download", "get-dir", "a directory of 4 KiB files to the local disk"),
    _small("small-upload", "put-dir", "a directory of 4 KiB files to the server"),
    Workload(
        "big-listing",
        "list",
        FTP,
        "many",
        (
            Ferryman("ferryman ls"),
            Ferryman("ferryman ls --json", json=True),
            Lftp("lftp cls -1"),
            Curl("curl --list-only"),
        ),
        "ferryman ls",
        "listing one directory of many entries (time and memory)",
    ),
    _sftp_big("sftp-big-download", "get-file", "one big file over SFTP to the local disk"),
    _sftp_big("sftp-big-upload", "put-file", "one big file over SFTP to the server"),
    _sftp_small("sftp-small-download", "get-dir", "4 KiB files over SFTP to the local disk"),
    _sftp_small("sftp-small-upload", "put-dir", "4 KiB files over SFTP to the server"),
    _fs_small_get(),
    _fs_big_read(),
)


def workload_names() -> list[str]:
    return [w.name for w in WORKLOADS]
