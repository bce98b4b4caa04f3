"""Notifications of ``ferryman run`` (serve sends the same): e-mail to a real SMTP server on
loopback (aiosmtpd: STARTTLS with a password login, and implicit TLS), webhooks to a local HTTP
receiver (retried after a 500; a receiver that is down leaves the run succeeded and the failure
logged), the global notifications file; never a secret in what is sent or logged."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ferryman.certs import PkiFiles, make_test_pki
from ferryman.cli import cli
from tests.servers.processes import free_port
from tests.servers.receivers import SMTP_PASSWORD, SMTP_USER, smtp_server, webhook_receiver

pytestmark = pytest.mark.filterwarnings(
    # aiosmtpd 1.4 reads its own deprecated attribute while logging a user in
    "ignore:Session.login_data is deprecated:DeprecationWarning"
)

SECRET = "Very-secret-token-42"
#: the job's program: prints its first argument (a secret) on stderr, exits with the second
PROGRAM = "import sys; print(sys.argv[1], file=sys.stderr); sys.exit(int(sys.argv[2]))"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_test_pki(tmp_path_factory.mktemp("smtp-pki"))


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FERRYMAN_STATE", str(tmp_path / "state.db"))
    monkeypatch.setenv("SMTP_PW", SMTP_PASSWORD)
    monkeypatch.setenv("HOOK_TOKEN", SECRET)
    monkeypatch.delenv("FERRYMAN_NOTIFY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    yield


def job(tmp_path: Path, notify: str, fail: bool = True) -> Path:
    code = 3 if fail else 0
    path = tmp_path / "job.yaml"
    path.write_text(
        f"""\
name: nightly
state: {tmp_path}/state.db
env: [HOOK_TOKEN]
steps:
  - name: crunch
    run: [{sys.executable}, -c, "{PROGRAM}", "{{{{ env.HOOK_TOKEN }}}}", "{code}"]
notify:
{notify}"""
    )
    return path


def run(path: Path, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["run", str(path), "--json", *extra])


def test_email_over_starttls_with_a_login(tmp_path: Path, pki: PkiFiles) -> None:
    with smtp_server(pki, "starttls") as smtp:
        notify = (
            f"  - email: {{to: [ops@example.com], from: ferryman@example.com, host: 127.0.0.1,"
            f" port: {smtp.port}, user: {SMTP_USER}, password_env: SMTP_PW,"
            f" ca_file: {pki.ca_cert}}}\n"
        )
        result = run(job(tmp_path, notify))
        assert result.exit_code == 1, result.output
        assert smtp.logins == [SMTP_USER]
        (raw,) = smtp.messages
    mail = message_from_bytes(raw)
    report = json.loads(result.stdout)
    assert f"job nightly: run {report['run_id']} failed" in mail["Subject"]
    text = mail.get_payload(decode=True).decode()  # quoted-printable for long lines
    assert "Step:      crunch (run)" in text
    assert "exited with status 3" in text and "Hint:" in text
    assert f"Log:       {report['log_file']}" in text
    for leaked in (SECRET, SMTP_PASSWORD):
        assert leaked not in raw.decode() and leaked not in result.stderr


def test_email_over_implicit_tls_on_success_only(tmp_path: Path, pki: PkiFiles) -> None:
    with smtp_server(pki, "tls") as smtp:
        notify = (
            f"  - on: [success]\n    email: {{to: ops@example.com, from: f@example.com,"
            f" host: 127.0.0.1, port: {smtp.port}, security: tls, ca_file: {pki.ca_cert}}}\n"
        )
        assert run(job(tmp_path, notify, fail=True)).exit_code == 1
        assert smtp.messages == []  # a failure: not what this one is for
        assert run(job(tmp_path, notify, fail=False)).exit_code == 0
        (raw,) = smtp.messages
    assert "succeeded, no files" in message_from_bytes(raw)["Subject"]


def test_an_untrusted_smtp_certificate_is_refused_and_logged(tmp_path: Path, pki: PkiFiles) -> None:
    with smtp_server(pki, "tls") as smtp:
        notify = (
            f"  - email: {{to: ops@example.com, from: f@example.com, host: 127.0.0.1,"
            f" port: {smtp.port}, security: tls}}\n"
        )
        result = run(job(tmp_path, notify))
        assert smtp.messages == []
    assert result.exit_code == 1  # the run's own failure, not the notification's
    assert "notification failed: e-mail to ops@example.com via 127.0.0.1" in result.stderr
    assert "certificate not trusted" in result.stderr


def test_webhook_retried_after_a_500(tmp_path: Path) -> None:
    with webhook_receiver(fail_first=1) as hook:
        notify = (
            f"  - on: [no_files]\n    webhook: {{url: '{hook.url}', retries: 2,"
            " headers_env: {Authorization: HOOK_TOKEN}}\n"
        )
        result = run(job(tmp_path, notify, fail=False))
        assert result.exit_code == 0, result.output
        assert hook.attempts == 2
        (body,) = hook.bodies
    assert hook.headers[0]["Authorization"] == SECRET  # sent to the receiver, as configured
    report = json.loads(result.stdout)
    assert body["event"] == "no_files" and body["job"] == "nightly"
    assert body["run_id"] == report["run_id"] and body["status"] == "succeeded"
    assert body["files"] == {"moved": 0, "failed": 0, "skipped": 0}
    assert body["log_file"] == report["log_file"]
    assert SECRET not in json.dumps(body)
    log = Path(report["log_file"]).read_text()
    assert "notification sent: webhook http://127.0.0.1" in log
    assert "T0KEN-in-path" not in log and SECRET not in log and "T0KEN" not in result.stderr


def test_a_receiver_that_is_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/T0KEN-in-path"
    notify = f"  - on: [success, failure]\n    webhook: {{url: '{url}', retries: 1, timeout: 2}}\n"
    result = run(job(tmp_path, notify, fail=False))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "succeeded"
    assert "notification failed: webhook http://127.0.0.1:" in result.stderr
    assert "not reached" in result.stderr and "T0KEN" not in result.stderr


def test_global_notifications_file(tmp_path: Path) -> None:
    with webhook_receiver() as hook:
        file = tmp_path / "notify.yaml"
        file.write_text(f"notify:\n  - webhook: {{url: '{hook.url}'}}\n")
        result = run(job(tmp_path, "  []\n"), "--notify", str(file))
        assert result.exit_code == 1
        (body,) = hook.bodies
    assert body["event"] == "failure" and body["step"] == "crunch"
    file.write_text("notify:\n  - webhook: {url: 'http://x/'}\n    on: [later]\n")
    result = run(job(tmp_path, "  []\n"), "--notify", str(file))
    assert result.exit_code == 2
    assert f"{file}:3:" in result.stderr and "notify.0.on.0" in result.stderr
