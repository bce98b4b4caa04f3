"""Benchmark: encrypt + upload of one big file over SFTP, streamed through gpg by ferryman
(``put --encrypt-to``) against the usual two steps, ``gpg --encrypt`` to a file and then
OpenSSH ``sftp put`` of it.

Both sides use the same gpg, the same recipient key (ed25519/cv25519, made for the run in a
temporary key ring), gpg's default compression and cipher, and the same loopback OpenSSH
``sshd`` (``tests/servers/sshd.py``; needs root and ``scripts/install-test-servers.sh``). The
file is base64 text of random bytes (like the CSV and fixed-width files banks exchange, it
compresses somewhat, to about 3/4). The cases run alternately for ROUNDS rounds; the median
seconds, MB/s of plaintext and the peak RSS of each process tree (``wait4``: the process and
the children it waited for: gpg) are printed, and the ratio to the streamed upload. The
floor is printed too: gpg alone, its output discarded (the encryption's own time, which a
streamed upload cannot beat). The first round's streamed upload is decrypted again and
compared by SHA-256 (a wrong result fails).

Run:  python benchmarks/pgp_sftp.py [--size-mib 1024] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.servers.sshd import Sshd

from benchmarks.measure import run_measured

MIB = 1 << 20


def _timed(argv: list[str], scratch: Path) -> tuple[float, float, float]:
    """(seconds, peak RSS in MiB, CPU seconds) of a process tree (gpg included), under the
    benchmarks' small wrapper (``measure.run_measured``): a fork of this process would
    otherwise count its size."""
    done = run_measured(
        argv,
        env=os.environ,
        cwd=scratch,
        stdout_path=scratch / "cmd.out",
        stderr_path=scratch / "cmd.err",
        timeout=3600,
    )
    if done.status != "ok":
        sys.exit(f"{argv[0]} failed ({done.status}): {done.detail}")
    return done.seconds, done.max_rss_kib / 1024, done.cpu_seconds or 0.0


def _make_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        written = 0
        while written < size:
            line = base64.b64encode(os.urandom(3 * MIB // 4))[: min(MIB, size - written)]
            out.write(line)
            written += len(line)


def _key(home: Path) -> str:
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home), "--passphrase", "", "--quick-gen-key"]
    subprocess.run(
        [*gpg, "Bench <bench@example.org>", "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "-k"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.decode()
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--homedir",
            str(home),
            "--passphrase",
            "",
            "--quick-add-key",
            fpr,
            "cv25519",
            "encr",
            "never",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return fpr


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


class _Results:
    """Per case: seconds, peak RSS (MiB) and CPU seconds of each round."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[float, float, float]]] = {}

    def add(self, case: str, *measured: tuple[float, float, float]) -> float:
        """Record one round of ``case`` (several commands: their sums, the largest RSS)."""
        total = (
            sum(m[0] for m in measured),
            max(m[1] for m in measured),
            sum(m[2] for m in measured),
        )
        self.rows.setdefault(case, []).append(total)
        return total[0]

    def print(self, size: int, streamed: str) -> None:
        base = statistics.median(r[0] for r in self.rows[streamed])
        for case, rows in self.rows.items():
            seconds = statistics.median(r[0] for r in rows)
            cpu = statistics.median(r[2] for r in rows)
            peak = max(r[1] for r in rows)
            print(
                f"  {case:34} {seconds:7.2f} s  {size / MIB / seconds:6.1f} MiB/s  "
                f"CPU {cpu:6.2f} s  peak RSS {peak:6.1f} MiB  ratio {seconds / base:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--compress-algo", default=None, help="gpg's compression for both (none, zlib ...)"
    )
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ferryman-pgp-bench-", dir=args.dir))
    base.chmod(0o755)
    home = base / "gnupg"
    fpr = _key(home)
    data = base / "payroll.txt"
    _make_file(data, args.size_mib * MIB)
    ferryman = [str(Path(sys.executable).with_name("ferryman"))]
    if not Path(ferryman[0]).is_file():
        ferryman = [sys.executable, "-m", "ferryman"]
    algo = ["--compress-algo", args.compress_algo] if args.compress_algo else []
    gpg = ["gpg", "--batch", "--homedir", str(home), "--trust-model", "always", "-r", fpr, *algo]
    streamed, two_step, floor = (
        "ferryman put --encrypt-to",
        "gpg to a file, then sftp put",
        "(floor: gpg alone, to /dev/null)",
    )
    results = _Results()
    with Sshd() as sshd:
        ssh = [f"-oUserKnownHostsFile={sshd.known_hosts}", "-oGlobalKnownHostsFile=/dev/null"]
        ssh += ["-oStrictHostKeyChecking=yes", "-oBatchMode=yes", "-oIdentitiesOnly=yes"]
        ssh += ["-i", str(sshd.keys["plain"]), "-P", str(sshd.port)]
        for round_ in range(args.rounds):
            remote = sshd.workdir(f"round{round_}")
            url = f"sftp://{sshd.user}@{sshd.host}:{sshd.port}{remote.path}/"
            put = [*ferryman, "put", str(data), url, "--encrypt-to", fpr, *algo]
            put += ["--gnupg-home", str(home), "--private-key", str(sshd.keys["plain"])]
            put += ["--known-hosts", str(sshd.known_hosts)]
            ours = results.add(streamed, _timed(put, base))
            uploaded = remote.local / (data.name + ".gpg")
            if round_ == 0:  # the streamed upload decrypts to the original
                back = base / "check.txt"
                subprocess.run(
                    [*gpg, "-o", str(back), "-d", str(uploaded)],
                    check=True,
                    capture_output=True,
                    timeout=3600,
                )
                if _sha256(back) != _sha256(data):
                    sys.exit("the streamed upload does not decrypt to the original")
                back.unlink()
            uploaded.unlink()

            sealed = base / (data.name + ".gpg")
            batch = base / "put.batch"
            batch.write_text(f"put {sealed} {remote.path}/{sealed.name}\n")
            theirs = results.add(
                two_step,
                _timed([*gpg, "-o", str(sealed), "-e", str(data)], base),
                _timed(
                    [
                        "sftp",
                        "-q",
                        "-F",
                        "/dev/null",
                        "-b",
                        str(batch),
                        *ssh,
                        f"{sshd.user}@{sshd.host}",
                    ],
                    base,
                ),
            )
            sealed.unlink()
            (remote.local / sealed.name).unlink()
            alone = results.add(
                floor, _timed([*gpg, "--yes", "-o", "/dev/null", "-e", str(data)], base)
            )
            print(
                f"round {round_ + 1}: ferryman {ours:.2f} s; gpg then sftp {theirs:.2f} s; "
                f"gpg alone {alone:.2f} s",
                flush=True,
            )
    print(
        f"\n{data.stat().st_size / MIB:.0f} MiB, gpg compression "
        f"{args.compress_algo or 'default'}, {args.rounds} rounds, medians:"
    )
    results.print(data.stat().st_size, streamed)
    data.unlink()
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False, timeout=30
    )


if __name__ == "__main__":
    main()
