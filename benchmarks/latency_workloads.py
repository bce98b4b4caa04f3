"""The ``lat-*`` workloads: what runs behind the latency relay (``run.py --latency MS...``).

Every peer runs at its default and at its best documented parallel setting:

- rclone: default (``--transfers 4 --checkers 8``) and ``--transfers 32 --checkers 32``
  (its manual: more transfers "if you have lots of bandwidth and a fast remote"; checkers
  parallelise the per-file checks, and both bound its connections); for one big file
  its default already downloads in 4 streams above ``--multi-thread-cutoff`` (250 MiB), so the
  capped workload also runs it with ``--multi-thread-cutoff 1M`` (the quick 64 MiB file);
- lftp: ``mirror --parallel=1`` (its default) and ``--parallel=16``; ``pget -n 4`` for one
  file in segments;
- sshfs (fsspec on asyncssh): ``fs.get/put(dir/*)`` at its default ``batch_size`` and at
  ``batch_size=32``; and at its real best, its async API with every file in flight at once
  (one ``_ls``, then ``asyncio.gather`` of ``_get_file``/``_put_file``: ``--gather``);
- OpenSSH sftp: ``-R 64`` (its default request count), one file after another;
- curl and stdlib ftplib for the single-file rows;
- ferryman at its defaults (the reference) and ``--parallel 32``; in the capped workload also
  ``--segments 4`` and ``--segments 1`` (one stream: what "a single stream" is measured by,
  now that the default segments a big file on a long round trip); in ``lat-big-get`` and
  ``lat-big-put`` also ``--segments 1`` and ``--segments 8`` (what segments add, and whether
  more than auto's 4 would).
"""

from __future__ import annotations

from benchmarks.environment import Protocol
from benchmarks.fsspec_peers import FsspecClient
from benchmarks.latency_peers import FerrymanSegments, LftpPget, Rclone
from benchmarks.peers import Curl, Ferryman, Ftplib, Kind, Lftp, OpensshSftp, Variant
from benchmarks.workloads import Dataset, Workload

__all__ = ["CAPPED_RATE", "LATENCY_WORKLOADS"]

#: the per-connection cap of lat-capped-get, bytes/s (the issue's 20 MB/s)
CAPPED_RATE = 20e6
DEFAULT = "ferryman (default)"
_SSH: frozenset[Protocol] = frozenset({"sftp"})
_RCLONE_WIDE = ("--transfers", "32", "--checkers", "32")


def _sshfs(label: str, kind: Kind, *call: str, gather: bool = False) -> FsspecClient:
    glob = kind in ("get-dir", "put-dir")
    return FsspecClient(
        label, "sshfs", _SSH, glob=glob, gather=gather, call_options=call, kinds=frozenset({kind})
    )


def _many(name: str, kind: Kind, measures: str) -> Workload:
    mirror = "lftp mirror -R" if kind == "put-dir" else "lftp mirror"
    variants: tuple[Variant, ...] = (
        Ferryman(DEFAULT),
        Ferryman("ferryman -P32", parallel=32),
        Ferryman("ferryman -P48", parallel=48),
        Ferryman("ferryman -P64", parallel=64),
        Rclone("rclone (default)"),
        Rclone("rclone --transfers 32 --checkers 32", *_RCLONE_WIDE),
        Lftp(f"{mirror} --parallel=1 (default)", parallel=1),
        Lftp(f"{mirror} --parallel=16", parallel=16),
        _sshfs("sshfs (default)", kind),
        _sshfs("sshfs batch_size=32", kind, "batch_size=32"),
        _sshfs("sshfs async gather (all in flight)", kind, gather=True),
        OpensshSftp("sftp -R 64 (default)", requests=64),
    )
    return _workload(name, kind, "small", variants, measures)


def _one_file(name: str, kind: Kind, dataset: Dataset, measures: str, *more: Variant) -> Workload:
    variants: tuple[Variant, ...] = (
        Ferryman(DEFAULT),
        *more,
        Curl("curl"),
        Lftp("lftp"),
        Ftplib("ftplib"),
        Rclone("rclone (default)"),
        _sshfs("sshfs (default)", kind),
        OpensshSftp("sftp -R 64 (default)", requests=64),
    )
    return _workload(name, kind, dataset, variants, measures)


def _workload(
    name: str,
    kind: Kind,
    dataset: Dataset,
    variants: tuple[Variant, ...],
    measures: str,
    rate: float | None = None,
) -> Workload:
    protocols: tuple[Protocol, ...] = ("ftp", "ftps", "sftp")
    return Workload(
        name, kind, protocols, dataset, variants, DEFAULT, measures, latency=True, rate=rate
    )


def _capped() -> Workload:
    variants: tuple[Variant, ...] = (
        Ferryman(DEFAULT),
        FerrymanSegments("ferryman --segments 4", segments=4),
        FerrymanSegments("ferryman --segments 1 (one stream)", segments=1),
        LftpPget("lftp pget -n 4", segments=4),
        Rclone("rclone (default)"),
        Rclone("rclone --multi-thread-cutoff 1M", "--multi-thread-cutoff", "1M"),
    )
    return Workload(
        "lat-capped-get",
        "get-file",
        ("ftps", "sftp"),
        "big",
        variants,
        DEFAULT,
        "one big file over a link capped at 20 MB/s per connection",
        latency=True,
        rate=CAPPED_RATE,
    )


#: what segments add beside the default's choice (auto), and whether more than 4 would help
_SEGMENTED: tuple[Variant, ...] = (
    FerrymanSegments("ferryman --segments 1 (one stream)", segments=1),
    FerrymanSegments("ferryman --segments 8", segments=8),
)

LATENCY_WORKLOADS: tuple[Workload, ...] = (
    _many("lat-small-get", "get-dir", "a directory of 4 KiB files to the local disk"),
    _many("lat-small-put", "put-dir", "a directory of 4 KiB files to the server"),
    _one_file("lat-big-get", "get-file", "big", "one big file to the local disk", *_SEGMENTED),
    _one_file("lat-big-put", "put-file", "big", "one big file to the server", *_SEGMENTED),
    _capped(),
    _one_file("lat-ttfb", "get-file", "one", "one 4 KiB file: the whole command's wall time"),
)
