"""Bandwidth limits (issue 19): ``--bwlimit`` for a whole run, ``--bwlimit-per-file`` for each
transfer, and the rates they take.

The timed checks are lower bounds only (a limit that holds cannot be beaten; how close a run
comes to it is a matter for benchmarks/): 2 MiB at 1 MiB/s takes at least ~1.5 s, through
pyftpdlib (FTPS) and OpenSSH sshd, in get, put and sync, and a total limit holds for four
files in flight at once.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferryman.backends.ftp import FtpBackend
from ferryman.backends.local import LocalBackend
from ferryman.backends.sftp import SftpBackend
from ferryman.cli import cli
from ferryman.errors import ConfigError
from ferryman.jobs.limits_model import limit_options
from ferryman.jobs.loader import load_job
from ferryman.transfer import TransferOptions, transfer
from ferryman.transfer.throttle import Bandwidth, Throttle, parse_rate
from tests.conftest import PASSWORD, ServerFactory
from tests.servers.sshd import Sshd
from tests.test_jobs_support import JobEnv, make_env, partner_server
from tests.test_sftp_conformance import sshd_connection

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024
#: 2 MiB at 1 MiB/s: 2 s, less the bucket's burst (0.1 s); well above 1.5 s
FLOOR = 1.5


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("10M", 10e6),
        ("512k", 512e3),
        ("1.5MiB", 1.5 * MIB),
        ("2000000", 2e6),
        ("1M/s", 1e6),
        ("10MB", 10e6),
        ("64 KiB/s", 64 * 1024),
        (".5G", 0.5e9),
    ],
)
def test_rates_are_parsed(text: str, rate: float) -> None:
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("ten", "'ten' is not a rate"),
        ("10X", "'10X' is not a rate"),
        ("-1M", "'-1M' is not a rate"),
        ("", "'' is not a rate"),
        ("0", "below the least of 1024"),
        ("500", "below the least of 1024"),
    ],
)
def test_bad_rates_say_what_is_wrong_and_what_to_write(text: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rate(text, option="--bwlimit")
    assert caught.value.message.startswith("--bwlimit: ") and said in caught.value.message
    assert "10M" in (caught.value.hint or "")


def test_the_cli_refuses_a_bad_rate_before_connecting(tmp_path: Path) -> None:
    for option in ("--bwlimit", "--bwlimit-per-file"):
        result = CliRunner().invoke(cli, ["get", "ftp://h/x", str(tmp_path), option, "fast"])
        assert result.exit_code == 2, result.output
        assert f"Invalid value for '{option}': 'fast' is not a rate" in result.stderr
        assert "512k, 10M, 1.5MiB" in result.stderr


@pytest.mark.parametrize(
    ("keys", "wanted"),
    [
        ("bwlimit: ten", "bwlimit: 'ten' is not a rate; write bytes per second"),
        ("bwlimit_per_file: 12", "bwlimit_per_file: '12' is 12 bytes per second, below"),
        ("segments: 40", "segments: takes 1 (one stream) to 16 segments, or auto"),
        ("segment_min_size: big", "segment_min_size: 'big' is not a size"),
    ],
)
def test_bad_job_keys_are_reported_at_their_line_and_column(
    tmp_path: Path, keys: str, wanted: str
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "name: t\nconnections:\n  partner: {url: 'ftp://u@127.0.0.1/', password: x}\n"
        f"steps:\n  - name: s\n    receive:\n      from: partner:/out/x\n      to: in/\n"
        f"      {keys}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_job(path)
    assert f"{path}:9:7: steps.0.receive.{wanted}" in caught.value.message


def test_job_keys_become_transfer_options() -> None:
    assert limit_options("auto", "1MiB", "10M", "512k") == {
        "segments": 0,
        "segment_min_size": MIB,
        "bwlimit": 10e6,
        "bwlimit_per_file": 512e3,
    }


def test_a_shared_bucket_holds_the_rate_across_threads() -> None:
    """Four threads moving 64 KiB chunks through one 1 MiB/s bucket: 2 MiB in >= 1.5 s."""
    bucket = Throttle(MIB)

    def move() -> None:
        for _ in range(8):
            bucket.take(64 * 1024)

    started = time.monotonic()
    threads = [threading.Thread(target=move) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert time.monotonic() - started >= FLOOR


def test_per_file_buckets_are_each_transfers_own() -> None:
    limits = Bandwidth(total=None, per_file=MIB)
    first, second = limits.for_file(), limits.for_file()
    assert first is not None and second is not None and first is not second
    assert Bandwidth().for_file() is None
    shared = Bandwidth(total=MIB)
    assert shared.for_file() is shared.for_file()


def test_ftps_get_of_2_mib_at_1_mib_per_s_per_file(
    ftp_server: ServerFactory, tmp_path: Path
) -> None:
    served = ftp_server("explicit")
    payload = os.urandom(2 * MIB)
    (served.root / "big.bin").write_bytes(payload)
    options = TransferOptions(bwlimit_per_file=MIB)
    started = time.monotonic()
    with FtpBackend(served.connection()) as ftp, LocalBackend() as local:
        summary = transfer(ftp, "/big.bin", local, f"{tmp_path}/", options)
    assert time.monotonic() - started >= FLOOR
    assert summary.ok and (tmp_path / "big.bin").read_bytes() == payload


def test_sftp_put_of_four_files_in_parallel_under_one_total_limit(
    sshd: Sshd, tmp_path: Path
) -> None:
    remote = sshd.workdir("bwlimit")
    files = {f"f{i}.bin": os.urandom(MIB // 2) for i in range(4)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    options = TransferOptions(parallel=4, bwlimit=MIB)
    started = time.monotonic()
    with LocalBackend() as local, SftpBackend(sshd_connection(sshd)) as sftp:
        summary = transfer(local, f"{tmp_path}/*.bin", sftp, f"{remote.path}/", options)
    assert time.monotonic() - started >= FLOOR  # 4 x 0.5 MiB, together at 1 MiB/s
    assert summary.ok and len(summary.files) == 4
    assert {p.name: p.read_bytes() for p in remote.local.iterdir()} == files


def test_cli_sync_with_a_total_limit(ftp_server: ServerFactory, tmp_path: Path) -> None:
    served = ftp_server("explicit")
    source = tmp_path / "src"
    source.mkdir()
    files = {f"f{i}.bin": os.urandom(MIB // 2) for i in range(4)}
    for name, data in files.items():
        (source / name).write_bytes(data)
    url = served.url("/mirror/")
    args = ["sync", str(source), url, "-P", "4", "--bwlimit", "1MiB", "--json"]
    args += ["--ca-file", str(served.server.pki.ca_cert)] if served.server.pki else []
    started = time.monotonic()
    result = CliRunner().invoke(cli, [*args, "--password-env", "FM_PW"], env={"FM_PW": PASSWORD})
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= FLOOR
    assert json.loads(result.stdout)["counts"]["copied"] == 4
    assert {p.name: p.read_bytes() for p in (served.root / "mirror").iterdir()} == files


@pytest.fixture
def job_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ftp_server: ServerFactory
) -> Iterator[JobEnv]:
    yield from make_env(tmp_path, monkeypatch, partner_server(ftp_server))


def test_a_receive_step_segments_and_limits(job_env: JobEnv) -> None:
    """The job-file keys reach the transfer: 2 segments, and 2 MiB at 1 MiB/s in all."""
    payload = os.urandom(2 * MIB)
    (job_env.remote("out") / "big.bin").write_bytes(payload)
    job = job_env.write(
        """\
        steps:
          - name: fetch
            receive:
              from: "partner:/out/big*.bin"
              to: inbox/
              segments: 2
              segment_min_size: 1MiB
              bwlimit: 1MiB
        """
    )
    started = time.monotonic()
    report = job_env.run(job)
    assert report.exit_code == 0, [(s.name, str(s.error)) for s in report.steps]
    assert time.monotonic() - started >= FLOOR
    assert (job_env.dir / "inbox/big.bin").read_bytes() == payload
    assert report.log_file is not None  # the run log holds the transfer's own lines
    assert f"/out/big.bin: {2 * MIB} bytes in 2 segments" in report.log_file.read_text()
