"""The OpenPGP job steps with the real gpg: round trips of every step and option, files made
by a partner's gpg read by ferryman and the reverse, and each failure with its exit code
(wrong key, missing key, bad or missing passphrase, tampered file, unexpected signer), with
nothing published when a file fails. Keys: ``tests/pgp_keys.py``."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from ferryman.errors import (
    ExitCode,
    PgpKeyError,
    PgpPassphraseError,
    SignatureError,
)
from ferryman.jobs.run import RunReport, run_job
from ferryman.pgp import Keyring
from ferryman.transfer import PARTIAL_SUFFIX

from .pgp_keys import PASSPHRASE, PgpKeys, gpg, pgp_keys

__all__ = ["pgp_keys"]

DATA = b"id,amount\n1,10.5\n2,20\n" * 50


def run(tmp_path: Path, keys: PgpKeys, steps: str, pgp: str = "") -> RunReport:
    """Run a job of ``steps`` (YAML, indented under steps:) with our key ring."""
    pgp = pgp or f"gnupg_home: {keys.ours.home}\n  passphrase_env: PGP_PW"
    text = f"name: pgp-test\nstate: state.db\npgp:\n  {pgp}\nsteps:\n" + textwrap.indent(
        textwrap.dedent(steps), "  "
    )
    job = tmp_path / "job.yaml"
    job.write_text(text)
    return run_job(job)


def ok(report: RunReport) -> RunReport:
    failed = [(s.name, str(s.error)) for s in report.steps if s.status == "failed"]
    assert report.exit_code == 0 and not failed, failed
    return report


def result(report: RunReport, name: str) -> dict[str, object]:
    return next(s.result for s in report.steps if s.name == name)


def no_temporaries(directory: Path) -> None:
    assert not [p for p in directory.rglob("*") if p.name.endswith(PARTIAL_SUFFIX)]


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGP_PW", PASSPHRASE)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "orders.csv"
    path.write_bytes(DATA)
    return path


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "suffix"),
    [
        ("", ".gpg"),
        (", armor: true, compression: none", ".asc"),
        (", compression: bzip2", ".gpg"),
    ],
)
def test_encrypt_then_decrypt_round_trip(
    tmp_path: Path, pgp_keys: PgpKeys, data: Path, options: str, suffix: str
) -> None:
    ours = pgp_keys.ours.fingerprint
    report = ok(
        run(
            tmp_path,
            pgp_keys,
            f"""
            - name: seal
              encrypt: {{files: out/*.csv, to: sealed/, recipients: [{ours}],
                         sign_with: {ours}{options}}}
            - name: open
              decrypt:
                files: "{{{{ steps.seal.files }}}}"
                to: opened/
                signed_by: [{ours}]
            """,
        )
    )
    sealed = tmp_path / "sealed" / f"orders.csv{suffix}"
    assert result(report, "seal")["files"] == [str(sealed)]
    assert (sealed.read_bytes()[:27] == b"-----BEGIN PGP MESSAGE-----") == (suffix == ".asc")
    assert (tmp_path / "opened" / "orders.csv").read_bytes() == DATA
    assert result(report, "open")["signers"] == [ours]


def test_partner_encrypted_and_signed_file_is_decrypted(
    tmp_path: Path, pgp_keys: PgpKeys, data: Path
) -> None:
    partner = pgp_keys.partner
    sealed = tmp_path / "in" / "orders.csv.pgp"
    sealed.parent.mkdir()
    gpg(partner.home, "-u", partner.fingerprint, "-r", pgp_keys.ours.email, "-s", "-e",
        "-o", str(sealed), str(data))  # fmt: skip
    report = ok(
        run(
            tmp_path,
            pgp_keys,
            f"""
            - name: open
              decrypt: {{files: "in/*.pgp", signed_by: [{partner.fingerprint}]}}
            """,
        )
    )
    assert (tmp_path / "in" / "orders.csv").read_bytes() == DATA
    assert result(report, "open")["signers"] == [partner.fingerprint]


def test_partner_reads_what_ferryman_encrypts_and_signs(
    tmp_path: Path, pgp_keys: PgpKeys, data: Path
) -> None:
    partner, ours = pgp_keys.partner, pgp_keys.ours
    ok(
        run(
            tmp_path,
            pgp_keys,
            f"""
            - name: seal
              encrypt: {{files: out/orders.csv, recipients: [{partner.fingerprint}],
                         sign_with: {ours.fingerprint}, armor: true}}
            """,
        )
    )
    status = tmp_path / "status"
    plain = gpg(partner.home, "--status-file", str(status), "-d", str(data) + ".asc")
    assert plain == DATA
    assert f"VALIDSIG {ours.fingerprint}" in status.read_text()


@pytest.mark.parametrize(
    ("mode", "armor", "suffix"),
    [
        ("detached", False, ".sig"),
        ("detached", True, ".asc"),
        ("inline", False, ".gpg"),
        ("inline", True, ".asc"),
        ("clearsign", False, ".asc"),
    ],
)
def test_sign_every_mode_verified_by_partner_and_by_ferryman(
    tmp_path: Path, pgp_keys: PgpKeys, data: Path, mode: str, armor: bool, suffix: str
) -> None:
    ours = pgp_keys.ours.fingerprint
    inline = mode != "detached"
    report = ok(
        run(
            tmp_path,
            pgp_keys,
            f"""
            - name: sign
              sign: {{files: out/orders.csv, key: {ours}, mode: {mode},
                      armor: {str(armor).lower()}}}
            - name: check
              verify:
                files: {"'{{ steps.sign.files }}'" if inline else "out/orders.csv"}
                signature: {"inline" if inline else "detached"}
                signed_by: [{ours}]
                to: checked/
            """,
        )
    )
    signed = Path(str(data) + suffix)
    assert result(report, "sign")["files"] == [str(signed)]
    status = tmp_path / "status"
    args = ["--verify", str(signed)] + ([] if inline else [str(data)])
    gpg(pgp_keys.partner.home, "--status-file", str(status), *args)
    assert f"VALIDSIG {ours}" in status.read_text()
    assert result(report, "check")["signers"] == [ours]
    if inline:  # the signed message's data is written out
        assert (tmp_path / "checked" / "orders.csv").read_bytes() == DATA


def test_verify_partner_detached_signature(tmp_path: Path, pgp_keys: PgpKeys, data: Path) -> None:
    partner = pgp_keys.partner
    gpg(partner.home, "-u", partner.fingerprint, "--armor", "--detach-sign",
        "-o", str(data) + ".asc", str(data))  # fmt: skip
    report = ok(
        run(
            tmp_path,
            pgp_keys,
            f"""
            - name: check
              verify: {{files: "out/*", signed_by: [{partner.fingerprint}]}}
            """,
        )
    )
    assert result(report, "check")["sources"] == [str(data)]  # the .asc is not data
    data.write_bytes(DATA + b"3,30\n")
    report = run(tmp_path, pgp_keys, "- name: check\n  verify: {files: out/orders.csv}\n")
    assert report.exit_code == ExitCode.VERIFICATION
    assert isinstance(report.steps[0].error, SignatureError)


# --- failures ----------------------------------------------------------------------------------


def _sealed_by_partner(tmp_path: Path, keys: PgpKeys, *args: str) -> Path:
    sealed = tmp_path / "in" / "orders.csv.gpg"
    sealed.parent.mkdir(exist_ok=True)
    plain = tmp_path / "plain.csv"
    plain.write_bytes(DATA)
    gpg(keys.partner.home, *args, "-o", str(sealed), str(plain))
    return sealed


def _decrypt_fails(
    tmp_path: Path, keys: PgpKeys, error: type[Exception], code: int, extra: str = "", pgp: str = ""
) -> str:
    report = run(tmp_path, keys, f"- name: open\n  decrypt: {{files: in/*.gpg{extra}}}\n", pgp)
    failure = report.steps[0].error
    assert isinstance(failure, error), failure
    assert report.exit_code == code
    assert not (tmp_path / "in" / "orders.csv").exists()  # nothing published
    no_temporaries(tmp_path)
    return str(failure)


def test_encrypted_to_another_key_is_a_key_error(tmp_path: Path, pgp_keys: PgpKeys) -> None:
    _sealed_by_partner(tmp_path, pgp_keys, "-r", pgp_keys.stranger.fingerprint, "-e")
    message = _decrypt_fails(tmp_path, pgp_keys, PgpKeyError, ExitCode.PGP)
    assert "no secret key" in message


def test_signer_key_missing_is_a_key_error(tmp_path: Path, pgp_keys: PgpKeys) -> None:
    unknown = pgp_keys.unknown
    sealed = tmp_path / "in" / "orders.csv.gpg"
    sealed.parent.mkdir()
    (tmp_path / "plain.csv").write_bytes(DATA)
    gpg(unknown.home, "-u", unknown.fingerprint, "-r", pgp_keys.ours.email, "-s", "-e",
        "-o", str(sealed), str(tmp_path / "plain.csv"))  # fmt: skip
    message = _decrypt_fails(tmp_path, pgp_keys, PgpKeyError, ExitCode.PGP)
    assert "public key" in message and unknown.fingerprint in message


def test_missing_recipient_key_is_a_key_error(
    tmp_path: Path, pgp_keys: PgpKeys, data: Path
) -> None:
    report = run(
        tmp_path,
        pgp_keys,
        "- name: seal\n  encrypt: {files: out/orders.csv, recipients: [nobody@example.org]}\n",
    )
    assert isinstance(report.steps[0].error, PgpKeyError)
    assert report.exit_code == ExitCode.PGP
    assert "nobody@example.org" in str(report.steps[0].error)
    assert not Path(str(data) + ".gpg").exists()
    no_temporaries(tmp_path)


def test_bad_passphrase(tmp_path: Path, pgp_keys: PgpKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    _sealed_by_partner(tmp_path, pgp_keys, "-r", pgp_keys.ours.fingerprint, "-e")
    monkeypatch.setenv("PGP_PW", "not the passphrase")
    message = _decrypt_fails(tmp_path, pgp_keys, PgpPassphraseError, ExitCode.PGP)
    assert "passphrase" in message and "wrong" in message


def test_no_passphrase_given(tmp_path: Path, pgp_keys: PgpKeys) -> None:
    _sealed_by_partner(tmp_path, pgp_keys, "-r", pgp_keys.ours.fingerprint, "-e")
    pgp = f"gnupg_home: {pgp_keys.ours.home}"
    message = _decrypt_fails(tmp_path, pgp_keys, PgpPassphraseError, ExitCode.PGP, pgp=pgp)
    assert "none was given" in message


@pytest.mark.parametrize("where", [0.5, -3])
def test_tampered_file(tmp_path: Path, pgp_keys: PgpKeys, where: float) -> None:
    partner = pgp_keys.partner
    sealed = _sealed_by_partner(
        tmp_path, pgp_keys, "-u", partner.fingerprint, "-r", pgp_keys.ours.fingerprint, "-s", "-e"
    )
    data = bytearray(sealed.read_bytes())
    data[int(len(data) * where) if where > 0 else int(where)] ^= 0x01
    sealed.write_bytes(data)
    message = _decrypt_fails(tmp_path, pgp_keys, SignatureError, ExitCode.VERIFICATION)
    assert "tampered" in message


def test_unexpected_signer(tmp_path: Path, pgp_keys: PgpKeys) -> None:
    stranger = pgp_keys.stranger
    sealed = tmp_path / "in" / "orders.csv.gpg"
    sealed.parent.mkdir()
    (tmp_path / "plain.csv").write_bytes(DATA)
    gpg(stranger.home, "-u", stranger.fingerprint, "-r", pgp_keys.ours.email, "-s", "-e",
        "-o", str(sealed), str(tmp_path / "plain.csv"))  # fmt: skip
    extra = f", signed_by: [{pgp_keys.partner.fingerprint}]"
    message = _decrypt_fails(tmp_path, pgp_keys, SignatureError, ExitCode.VERIFICATION, extra)
    assert "unexpected key" in message and stranger.fingerprint in message


def test_unsigned_where_a_signature_is_required(tmp_path: Path, pgp_keys: PgpKeys) -> None:
    _sealed_by_partner(tmp_path, pgp_keys, "-r", pgp_keys.ours.fingerprint, "-e")
    extra = ", require_signature: true"
    message = _decrypt_fails(tmp_path, pgp_keys, SignatureError, ExitCode.VERIFICATION, extra)
    assert "not signed" in message


def test_existing_result_is_not_replaced(tmp_path: Path, pgp_keys: PgpKeys) -> None:
    _sealed_by_partner(tmp_path, pgp_keys, "-r", pgp_keys.ours.fingerprint, "-e")
    (tmp_path / "in" / "orders.csv").write_text("kept")
    report = run(tmp_path, pgp_keys, "- name: open\n  decrypt: {files: in/*.gpg}\n")
    assert report.exit_code == ExitCode.TRANSFER
    assert (tmp_path / "in" / "orders.csv").read_text() == "kept"
    ok(run(tmp_path, pgp_keys, "- name: open\n  decrypt: {files: in/*.gpg, overwrite: true}\n"))
    assert (tmp_path / "in" / "orders.csv").read_bytes() == DATA


# --- keys and secrets --------------------------------------------------------------------------


def test_keys_imported_from_file_and_env_into_the_jobs_own_ring(
    tmp_path: Path, pgp_keys: PgpKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, partner = pgp_keys.ours, pgp_keys.partner
    secret = gpg(ours.home, "--pinentry-mode", "loopback", "--passphrase", PASSPHRASE,
                 "--armor", "--export-secret-keys", ours.fingerprint)  # fmt: skip
    monkeypatch.setenv("OUR_SECRET_KEY", secret.decode())
    (tmp_path / "partner.asc").write_bytes(gpg(partner.home, "--armor", "--export"))
    sealed = _sealed_by_partner(
        tmp_path, pgp_keys, "-u", partner.fingerprint, "-r", ours.fingerprint, "-s", "-e"
    )
    home = tmp_path / "keys"
    pgp = (
        "gnupg_home: keys\n  passphrase_env: PGP_PW\n  import_keys: [partner.asc]\n"
        "  import_keys_env: [OUR_SECRET_KEY]"
    )
    try:
        report = ok(
            run(
                tmp_path,
                pgp_keys,
                "- name: open\n"
                f"  decrypt: {{files: in/*.gpg, signed_by: [{partner.fingerprint}]}}\n",
                pgp,
            )
        )
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], timeout=30, check=False
        )
    assert home.stat().st_mode & 0o777 == 0o700
    assert sealed.with_suffix("").read_bytes() == DATA
    text = json.dumps(report.to_dict())
    assert PASSPHRASE not in text and "PRIVATE KEY" not in text


def test_passphrase_never_in_argv() -> None:
    keyring = Keyring(Path("/keys"), passphrase=PASSPHRASE)
    argv = keyring.argv(["--decrypt"], 5, 6)
    assert PASSPHRASE not in " ".join(argv)
    assert argv[argv.index("--passphrase-fd") :][:2] == ["--passphrase-fd", "6"]
    assert PASSPHRASE not in repr(keyring)


def test_passphrase_masked_in_errors_and_log(
    tmp_path: Path, pgp_keys: PgpKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sealed_by_partner(tmp_path, pgp_keys, "-r", pgp_keys.ours.fingerprint, "-e")
    monkeypatch.setenv("PGP_PW", "wrong but secret value")
    report = run(tmp_path, pgp_keys, "- name: open\n  decrypt: {files: in/*.gpg}\n")
    assert report.exit_code == ExitCode.PGP
    assert report.log_file is not None
    for text in (json.dumps(report.to_dict()), report.log_file.read_text()):
        assert "wrong but secret value" not in text


def test_a_recipients_string_is_refused_with_its_position(
    tmp_path: Path, pgp_keys: PgpKeys
) -> None:
    from ferryman.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        run(tmp_path, pgp_keys, "- name: seal\n  encrypt: {files: a.csv, recipients: ABCD}\n")
    assert "job.yaml:8:" in caught.value.message and "takes a list of keys" in caught.value.message


def test_gpg_not_installed_is_a_usage_error(tmp_path: Path, pgp_keys: PgpKeys, data: Path) -> None:
    pgp = f"gnupg_home: {pgp_keys.ours.home}\n  program: {tmp_path}/no-such-gpg"
    report = run(
        tmp_path, pgp_keys, "- name: seal\n  encrypt: {files: out/*.csv, recipients: [X]}\n", pgp
    )
    assert report.exit_code == ExitCode.USAGE
    assert "is not installed" in str(report.steps[0].error)
    assert list(data.parent.iterdir()) == [data]


def test_passphrase_file_and_a_signature_suffix(
    tmp_path: Path, pgp_keys: PgpKeys, data: Path
) -> None:
    ours = pgp_keys.ours
    (tmp_path / "pass.txt").write_text(PASSPHRASE + "\n")
    pgp = f"gnupg_home: {ours.home}\n  passphrase_file: pass.txt"
    report = ok(
        run(
            tmp_path,
            pgp_keys,
            f"""
            - name: sign
              sign: {{files: out/orders.csv, key: {ours.fingerprint}, to: sigs/}}
            - name: move
              rename: {{from: sigs/orders.csv.sig, to: ../out/orders.csv.p7s}}
            - name: check
              verify: {{files: out/orders.csv, suffix: .p7s, signed_by: [{ours.fingerprint}]}}
            """,
            pgp,
        )
    )
    assert result(report, "check")["signers"] == [ours.fingerprint]
