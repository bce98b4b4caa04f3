"""Segmented download against a per-connection bandwidth cap, and --bwlimit (issue 19).

vsftpd (explicit FTPS, ``require_ssl_reuse``) caps every session at ``local_max_rate``: the
"one TCP flow is capped" case that ``--segments`` is for. One file is downloaded with 1, 2 and
4 segments, each setting alternately for several rounds; the medians and the ratio to one
stream are printed. Then ``--bwlimit`` on an uncapped server: the achieved rate against the
limit. Needs root and vsftpd (``scripts/install-test-servers.sh``).

    python benchmarks/segments_cap.py                    # 32 MB at a 4 MB/s cap, 3 rounds
    python benchmarks/segments_cap.py --size 64 --cap 20 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ferryman.backends.ftp import FtpBackend  # noqa: I001 - after the sys.path line
from ferryman.backends.local import LocalBackend
from ferryman.certs import make_test_pki
from ferryman.transfer import IfExists, TransferOptions, transfer
from tests.servers.vsftpd import Vsftpd, make_ftp_root
from tests.test_vsftpd import connection

__all__: list[str] = []


def _get(server: Vsftpd, dest: Path, **options: object) -> float:
    chosen = TransferOptions(if_exists=IfExists.OVERWRITE, segment_min_size=1, **options)  # type: ignore[arg-type]
    started = time.monotonic()
    with FtpBackend(connection(server)) as ftp, LocalBackend() as local:
        summary = transfer(ftp, "/big.bin", local, f"{dest}/", chosen)
    seconds = time.monotonic() - started
    if not summary.ok:
        raise SystemExit(f"the download failed: {summary.files}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="file size in MB (default 32)")
    parser.add_argument("--cap", type=float, default=4, help="per-session cap, MB/s (default 4)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ferryman-bench-segments-"))
    base.chmod(0o755)
    try:
        root = make_ftp_root(base / "root")
        payload = os.urandom(args.size * 1_000_000)
        (root / "big.bin").write_bytes(payload)
        pki = make_test_pki(base / "pki")
        dest = base / "dest"
        dest.mkdir()
        rate = str(int(args.cap * 1_000_000))
        counts = (1, 2, 4)
        with Vsftpd(
            "explicit", root=root, pki=pki, extra_config={"local_max_rate": rate}
        ) as capped:
            times: dict[int, list[float]] = {n: [] for n in counts}
            for _ in range(args.rounds):
                for n in counts:
                    times[n].append(_get(capped, dest, segments=n))
                    if (dest / "big.bin").read_bytes() != payload:
                        raise SystemExit("the downloaded file differs from the source")
        one = statistics.median(times[1])
        print(
            f"{args.size} MB over explicit FTPS, vsftpd local_max_rate "
            f"{args.cap:g} MB/s per session"
        )
        for n in counts:
            median = statistics.median(times[n])
            print(
                f"  --segments {n}: median {median:6.2f} s  {args.size / median:6.1f} MB/s  "
                f"x{one / median:4.2f} of one stream   rounds {[round(t, 2) for t in times[n]]}"
            )
        with Vsftpd("explicit", root=root, pki=pki) as free:
            for limit in (5e6, 20e6):
                seconds = _get(free, dest, bwlimit=limit)
                print(
                    f"  --bwlimit {limit / 1e6:g}M (uncapped server): {seconds:5.2f} s, "
                    f"{args.size / seconds:5.2f} MB/s achieved"
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
