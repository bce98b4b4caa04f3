"""gpg on the way of a transfer, with the real gpg and an in-process SFTP server
(``tests/servers/sftp_inprocess.py``): ``put --encrypt-to`` and ``get --decrypt``, the
connections file's ``pgp:`` key ring, a job that receives encrypted files over SFTP,
decrypts them on the way and loads them into SQLite, and a 1 GiB file streamed through gpg
with flat memory (the RSS of the ``ferryman`` process, measured)."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.measure import run_measured
from click.testing import CliRunner, Result

from ferryman.cli import cli
from ferryman.errors import ConfigError, ExitCode
from ferryman.jobs.run import run_job
from ferryman.transfer import PARTIAL_SUFFIX
from tests.servers.sftp_inprocess import INPROCESS_PASSWORD, INPROCESS_USER, InProcessSftpServer

from .pgp_keys import PASSPHRASE, PgpKeys, gpg, pgp_keys

__all__ = ["pgp_keys"]

ORDERS = b"order_id,amount\n1,10.5\n2,20\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessSftpServer]:
    root = tmp_path / "sftp-root"
    (root / "out").mkdir(parents=True)
    (root / "in").mkdir()
    served = InProcessSftpServer(root).start()
    try:
        yield served
    finally:
        served.stop()


def url(server: InProcessSftpServer, path: str) -> str:
    return f"sftp://{INPROCESS_USER}@{server.host}:{server.port}{path}"


def invoke(server: InProcessSftpServer, *args: str | Path) -> Result:
    env = {"FM_PW": INPROCESS_PASSWORD, "PGP_PW": PASSPHRASE}
    pin = ["--password-env", "FM_PW", "--fingerprint", server.fingerprint, "--retries", "0"]
    return CliRunner().invoke(cli, [*map(str, args), *pin], env=env)


def partner_sends(keys: PgpKeys, target: Path, data: bytes, signer: str = "partner") -> None:
    """The partner's own gpg encrypts ``data`` to us, signed, into ``target``."""
    party = getattr(keys, signer)
    plain = target.with_name("plain.tmp")
    plain.write_bytes(data)
    gpg(party.home, "-u", party.fingerprint, "-r", keys.ours.fingerprint, "-s", "-e",
        "-o", str(target), str(plain))  # fmt: skip
    plain.unlink()


def leftovers(*dirs: Path) -> list[Path]:
    return [p for d in dirs for p in d.rglob("*") if p.name.endswith(PARTIAL_SUFFIX)]


def test_put_encrypt_to_and_get_decrypt(
    tmp_path: Path, pgp_keys: PgpKeys, server: InProcessSftpServer
) -> None:
    ours, partner = pgp_keys.ours, pgp_keys.partner
    local = tmp_path / "orders.csv"
    local.write_bytes(ORDERS)
    sent = invoke(server, "put", local, url(server, "/in/"), "--encrypt-to", partner.fingerprint,
                  "--sign-with", ours.fingerprint, "--gnupg-home", ours.home,
                  "--pgp-passphrase-env", "PGP_PW", "--compress-algo", "none")  # fmt: skip
    assert sent.exit_code == 0, sent.output + sent.stderr
    assert "pgp-encrypted+signed" in sent.output
    remote = server.root / "in" / "orders.csv.gpg"
    assert ORDERS not in remote.read_bytes()  # only ciphertext reached the server
    assert {p.name for p in tmp_path.iterdir()} == {"orders.csv", "sftp-root"}  # no local copy
    assert [p.name for p in (server.root / "in").iterdir()] == ["orders.csv.gpg"]
    status = tmp_path / "status"
    assert gpg(partner.home, "--status-file", str(status), "-d", str(remote)) == ORDERS
    assert f"VALIDSIG {ours.fingerprint}" in status.read_text()
    assert b"compressed packet" not in gpg(partner.home, "--list-packets", str(remote))

    partner_sends(pgp_keys, server.root / "out" / "report.csv.gpg", ORDERS)
    got = invoke(server, "get", url(server, "/out/*.gpg"), tmp_path / "inbox", "--decrypt",
                 "--signed-by", partner.fingerprint, "--gnupg-home", ours.home,
                 "--pgp-passphrase-env", "PGP_PW", "--json")  # fmt: skip
    assert got.exit_code == 0, got.output + got.stderr
    assert (tmp_path / "inbox" / "report.csv").read_bytes() == ORDERS
    assert f"pgp-signed-by:{partner.fingerprint}" in got.output
    assert PASSPHRASE not in got.output + got.stderr


@pytest.mark.parametrize(
    ("signer", "tamper", "code", "words"),
    [
        ("partner", True, ExitCode.VERIFICATION, "tampered"),
        ("stranger", False, ExitCode.VERIFICATION, "unexpected key"),
        ("unknown", False, ExitCode.PGP, "public key"),
    ],
)
def test_get_decrypt_publishes_nothing_it_cannot_trust(
    tmp_path: Path,
    pgp_keys: PgpKeys,
    server: InProcessSftpServer,
    signer: str,
    tamper: bool,
    code: int,
    words: str,
) -> None:
    remote = server.root / "out" / "orders.csv.gpg"
    partner_sends(pgp_keys, remote, ORDERS * 1000, signer)
    if tamper:
        data = bytearray(remote.read_bytes())
        data[-5] ^= 0x01
        remote.write_bytes(data)
    got = invoke(server, "get", url(server, "/out/orders.csv.gpg"), f"{tmp_path}/inbox/",
                 "--decrypt", "--signed-by", pgp_keys.partner.fingerprint,
                 "--gnupg-home", pgp_keys.ours.home, "--pgp-passphrase-env", "PGP_PW")  # fmt: skip
    assert got.exit_code == code, got.output + got.stderr
    assert words in got.stderr
    assert not (tmp_path / "inbox" / "orders.csv").exists()
    assert (tmp_path / "inbox").is_dir()  # the destination was made, then nothing landed
    assert leftovers(tmp_path) == []


def test_decrypt_options_go_with_decrypt(tmp_path: Path, server: InProcessSftpServer) -> None:
    got = invoke(server, "get", url(server, "/out/x"), tmp_path, "--signed-by", "ABCD")
    assert got.exit_code == ExitCode.USAGE and "go with --decrypt" in got.stderr
    got = invoke(server, "put", tmp_path, url(server, "/in/"), "--armor")
    assert got.exit_code == ExitCode.USAGE and "go with --encrypt-to" in got.stderr


def test_connections_file_pgp_section(
    tmp_path: Path, pgp_keys: PgpKeys, server: InProcessSftpServer
) -> None:
    partner_sends(pgp_keys, server.root / "out" / "a.csv.gpg", ORDERS)
    connections = tmp_path / "connections.yaml"
    connections.write_text(
        f"pgp:\n  gnupg_home: {pgp_keys.ours.home}\n  passphrase_env: PGP_PW\n"
        f"connections:\n  partner:\n    url: {url(server, '/')}\n"
    )
    got = invoke(server, "get", "partner:/out/a.csv.gpg", f"{tmp_path}/inbox/", "--decrypt",
                 "--connections", connections)  # fmt: skip
    assert got.exit_code == 0, got.output + got.stderr
    assert (tmp_path / "inbox" / "a.csv").read_bytes() == ORDERS


def test_job_receives_over_sftp_decrypts_on_the_way_and_loads(
    tmp_path: Path,
    pgp_keys: PgpKeys,
    server: InProcessSftpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    partner = pgp_keys.partner
    partner_sends(pgp_keys, server.root / "out" / "orders_1.csv.gpg", ORDERS)
    partner_sends(pgp_keys, server.root / "out" / "orders_2.csv.gpg", b"order_id,amount\n3,30\n")
    monkeypatch.setenv("FM_PW", INPROCESS_PASSWORD)
    monkeypatch.setenv("PGP_PW", PASSPHRASE)
    job = tmp_path / "job.yaml"
    job.write_text(
        f"""\
name: partner-orders
state: state.db
pgp: {{gnupg_home: {pgp_keys.ours.home}, passphrase_env: PGP_PW}}
connections:
  partner:
    url: {url(server, "/")}
    password_env: FM_PW
    fingerprint: "{server.fingerprint}"
  warehouse: {{url: "sqlite:///warehouse.db"}}
steps:
  - name: fetch
    receive:
      from: partner:/out/*.csv.gpg
      to: inbox/
      only_new: true
      decrypt: {{signed_by: [{partner.fingerprint}]}}
  - name: load
    load: {{files: "{{{{ steps.fetch.files }}}}", into: "warehouse:orders"}}
"""
    )
    report = run_job(job)
    assert report.exit_code == 0, [str(s.error) for s in report.steps]
    assert report.steps[0].result["files"] == [
        str(tmp_path / "inbox" / "orders_1.csv"),
        str(tmp_path / "inbox" / "orders_2.csv"),
    ]
    with sqlite3.connect(tmp_path / "warehouse.db") as db:
        rows = db.execute("select order_id, amount from orders order by order_id").fetchall()
    assert [str(r[0]) for r in rows] == ["1", "2", "3"]
    again = run_job(job)
    assert again.exit_code == 0 and again.steps[0].result["count"] == 0  # the ledger


def test_the_wrong_way_is_refused_at_its_position(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(ORDERS)
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: wrong-way\nstate: state.db\nconnections: {p: {url: 'sftp://u@h/'}}\nsteps:\n"
        "  - name: up\n    send: {from: a.csv, to: 'p:/in/', decrypt: {}}\n"
        "  - name: down\n    receive: {from: 'p:/out/x', to: in/, encrypt: {recipients: [K]}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        run_job(job)
    message = caught.value.message
    assert "job.yaml:6:48: steps.0.send.decrypt: decrypt: is an option of receive" in message
    assert "job.yaml:8:51: steps.1.receive.encrypt: encrypt: is an option of send" in message


def _rss_of(argv: list[str], env: dict[str, str], scratch: Path) -> tuple[str, float]:
    """(status, peak RSS in MiB) of a command's process tree (gpg included), measured as the
    benchmarks measure it: under a tiny wrapper, so the figure is not this test process's
    own size (a fork inherits its high-water mark)."""
    done = run_measured(
        argv,
        env=env,
        cwd=scratch,
        stdout_path=scratch / "cmd.out",
        stderr_path=scratch / "cmd.err",
        timeout=600,
    )
    return done.status, done.max_rss_kib / 1024


def test_one_gib_streams_through_gpg_with_flat_memory(tmp_path: Path, pgp_keys: PgpKeys) -> None:
    """1 GiB of (sparse, so quick to read) zeros encrypted on the way and decrypted back; the
    process stays far below the file's size: nothing is held whole in memory."""
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        f.truncate(1 << 30)
    env = {**os.environ, "PGP_PW": PASSPHRASE}
    home = str(pgp_keys.ours.home)
    ferryman = [sys.executable, "-m", "ferryman"]
    status, rss = _rss_of(
        [*ferryman, "put", str(big), f"{tmp_path}/sealed/", "--encrypt-to",
         pgp_keys.ours.fingerprint, "--gnupg-home", home], env, tmp_path)  # fmt: skip
    assert status == "ok" and rss < 120, (status, rss)
    big.unlink()
    status, rss = _rss_of(
        [*ferryman, "get", f"{tmp_path}/sealed/big.bin.gpg", f"{tmp_path}/back/", "--decrypt",
         "--gnupg-home", home, "--pgp-passphrase-env", "PGP_PW"], env, tmp_path)  # fmt: skip
    back = tmp_path / "back" / "big.bin"
    assert status == "ok" and rss < 120, (status, rss)
    assert back.stat().st_size == 1 << 30
    with back.open("rb") as f:
        assert f.read(1 << 20) == bytes(1 << 20)
    back.unlink()
