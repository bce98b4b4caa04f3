"""The workloads: what is moved, over which protocols, by which tools, and how it is checked.

Each workload runs once per protocol it lists; every variant of it runs once per round, the
variants alternating (the order rotates each round). Ratios are ``variant seconds /
reference seconds`` of the same round, the reference being a ferryman variant: above 1
means ferryman was faster.

``csv-load`` (1 M-row CSV into SQLite) is not registered: ferryman's ``load`` command does not
exist yet (issue 5).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from benchmarks.environment import MIB, BenchDirs, Endpoint, Protocol, Sizes, count_tree
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

Dataset = Literal["big", "small", "many"]


@dataclass(frozen=True)
class Workload:
    name: str
    kind: Kind
    protocols: tuple[Protocol, ...]
    dataset: Dataset
    variants: tuple[Variant, ...]
    reference: str
    measures: str

    @property
    def unit(self) -> str:
        return {"big": "MiB/s", "small": "files/s", "many": "entries/s"}[self.dataset]

    def amount(self, sizes: Sizes) -> float:
        """What one run moves, in the unit's numerator (MiB, files or entries)."""
        if self.dataset == "big":
            return sizes.big_bytes / MIB
        return float(sizes.small_count if self.dataset == "small" else sizes.listing_count)

    def expected(self, sizes: Sizes) -> tuple[int, int]:
        """Files and bytes a transfer must leave at its destination."""
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


def prepare_run(
    workload: Workload, endpoint: Endpoint, dirs: BenchDirs, sizes: Sizes, run_id: str
) -> PreparedRun:
    """Clean destination, the task, its check and its clean-up for one run."""
    files, size = workload.expected(sizes)
    source = {"big": "data/big.bin", "small": "data/small", "many": "data/many"}[workload.dataset]
    kind = workload.kind
    if kind in ("get-file", "get-dir"):
        destination = dirs.fresh_local(run_id)
        local = destination / "big.bin" if kind == "get-file" else destination
        task = Task(kind, endpoint, source, local, run_id)
        check = _tree_check(destination, files, size)
        return PreparedRun(task, check, lambda: dirs.remove(destination))
    if kind in ("put-file", "put-dir"):
        upload = dirs.fresh_upload(run_id)
        task = Task(kind, endpoint, upload, dirs.ftproot / source, run_id)
        check = _tree_check(dirs.ftproot / upload, files, size)
        return PreparedRun(task, check, lambda: dirs.remove(dirs.ftproot / upload))
    task = Task(kind, endpoint, source, dirs.local, run_id)
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
)


def workload_names() -> list[str]:
    return [w.name for w in WORKLOADS]
