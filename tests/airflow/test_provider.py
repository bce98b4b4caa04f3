"""The provider in a real Airflow 3: registration, connections, the hook, the trigger, and
ObjectStoragePath, against vsftpd (explicit FTPS, session reuse required) and OpenSSH sshd."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from airflow.sdk import Connection, ObjectStoragePath

from ferryman.airflow.hooks.ferryman import FerrymanHook
from ferryman.airflow.triggers.ferryman import FerrymanTrigger
from ferryman.errors import ConfigError
from tests.servers.sshd import Sshd
from tests.servers.vsftpd import TEST_PASSWORD, Vsftpd, Workdir


def ftpes_uri(server: Vsftpd, password: str = TEST_PASSWORD) -> str:
    assert server.pki is not None
    ca = quote(str(server.pki.ca_cert), safe="")
    return (
        f"ferryman-ftpes://{server.user}:{quote(password, safe='')}@{server.host}:{server.port}"
        f"/?ca_file={ca}"
    )


def sftp_uri(server: Sshd, password: str = TEST_PASSWORD) -> str:
    known = quote(str(server.known_hosts), safe="")
    return (
        f"ferryman-sftp://{server.user}:{quote(password, safe='')}@{server.host}:{server.port}"
        f"/?known_hosts={known}&use_agent=false"
    )


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Airflow connections from AIRFLOW_CONN_<ID> environment variables (URIs)."""
    added: dict[str, str] = {}

    class Add(dict[str, str]):
        def __setitem__(self, conn_id: str, uri: str) -> None:
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)
            added[conn_id] = uri
            super().__setitem__(conn_id, uri)

    return Add()


def test_airflow_providers_list_shows_the_provider(airflow_home: Path) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    providers = {p["package_name"]: p for p in json.loads(listing.stdout)}
    assert "ferryman" in providers, listing.stdout
    hooks = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "hooks", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    types = {h["connection_type"]: h for h in json.loads(hooks.stdout)}
    for conn_type in ("ferryman_ftp", "ferryman_ftpes", "ferryman_ftps", "ferryman_sftp"):
        assert types[conn_type]["package_name"] == "ferryman", hooks.stdout
        assert types[conn_type]["class"].startswith("ferryman.airflow.hooks.ferryman.")


def test_the_providers_manager_reads_the_connection_form(airflow_home: Path) -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    behaviour = manager.field_behaviours["ferryman_sftp"]
    assert "schema" in behaviour["hidden_fields"]
    assert behaviour["relabeling"]["host"] == "Server"
    widgets = manager.connection_form_widgets
    assert "extra__ferryman_ftpes__ca_file" in widgets
    assert "extra__ferryman_sftp__known_hosts" in widgets
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    modules = ProvidersManagerTaskRuntime().filesystem_module_names
    assert {f"ferryman.airflow.fs.{m}" for m in ("ftpes", "ftps", "ftp", "sftp")} <= set(modules)


def test_importing_ferryman_imports_no_airflow() -> None:
    code = (
        "import sys, ferryman, ferryman.airflow, ferryman.transfer, ferryman.jobs;"
        "ferryman.airflow.get_provider_info();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_connection_test_from_a_uri(
    airflow_home: Path, vsftpd_explicit: Vsftpd, sshd: Sshd, connections: dict[str, str]
) -> None:
    connections["partner"] = ftpes_uri(vsftpd_explicit)
    ok, message = FerrymanHook("partner").test_connection()
    assert ok, message
    assert "ok tls: TLSv1." in message and "ok login" in message
    connections["bank"] = sftp_uri(sshd)
    ok, message = FerrymanHook("bank").test_connection()
    assert ok, message
    assert "ok ssh: SSH-2.0-OpenSSH" in message and "ok list: login directory" in message


def test_connection_test_reports_a_wrong_password_without_it(
    airflow_home: Path, vsftpd_explicit: Vsftpd, connections: dict[str, str]
) -> None:
    wrong = "Wrong-pw-never-shown-42"
    connections["partner"] = ftpes_uri(vsftpd_explicit, wrong)
    ok, message = FerrymanHook("partner").test_connection()
    assert not ok
    assert "FAIL login" in message
    assert wrong not in message


def test_connection_test_says_what_to_do_about_an_untrusted_certificate(
    airflow_home: Path, vsftpd_explicit: Vsftpd, connections: dict[str, str]
) -> None:
    connections["partner"] = (
        f"ferryman-ftpes://{vsftpd_explicit.user}:{TEST_PASSWORD}@{vsftpd_explicit.host}:"
        f"{vsftpd_explicit.port}/"
    )
    ok, message = FerrymanHook("partner").test_connection()
    assert not ok
    assert "certificate" in message.lower()
    assert "hint:" in message


def test_an_official_sftp_connection_works_with_its_host_key_pinned(
    airflow_home: Path, sshd: Sshd, sshd_workdir: object, connections: dict[str, str]
) -> None:
    key = next(iter(sshd.host_key_lines.values()))
    connections["legacy"] = (
        f"sftp://{sshd.user}:{TEST_PASSWORD}@{sshd.host}:{sshd.port}/"
        f"?host_key={quote(key, safe='')}&compress=true&look_for_keys=false"
    )
    hook = FerrymanHook("legacy")
    assert hook.get_settings().fingerprint in sshd.fingerprints.values()
    with hook:
        assert hook.isdir(str(sshd.root))
        assert hook.isdir("/~/") and hook.isdir("~")  # the login directory, as in URLs


def test_an_official_sftp_connection_without_host_key_checks_is_refused(
    airflow_home: Path, sshd: Sshd, connections: dict[str, str]
) -> None:
    connections["legacy"] = (
        f"sftp://{sshd.user}:{TEST_PASSWORD}@{sshd.host}:{sshd.port}/?no_host_key_check=true"
    )
    with pytest.raises(ConfigError, match="always verifies SSH host keys") as caught:
        FerrymanHook("legacy").get_settings()
    assert caught.value.hint is not None and "host_key" in caught.value.hint


def test_hook_operations_on_vsftpd(
    airflow_home: Path,
    vsftpd_explicit: Vsftpd,
    vsftpd_workdir: Workdir,
    connections: dict[str, str],
    tmp_path: Path,
) -> None:
    connections["partner"] = ftpes_uri(vsftpd_explicit)
    base = vsftpd_workdir.ftp_path()
    local = tmp_path / "report.csv"
    local.write_bytes(b"id,amount\n1,9.50\n")
    with FerrymanHook("partner") as hook:
        hook.create_directory(f"{base}/in/2026")
        assert hook.isdir(f"{base}/in/2026")
        summary = hook.store_file(f"{base}/in/report.csv", str(local))
        assert summary.count("copied") == 1
        assert hook.list_directory(f"{base}/in") == ["2026", "report.csv"]
        described = hook.describe_directory(f"{base}/in")
        assert described["report.csv"]["size"] == local.stat().st_size
        assert described["2026"]["type"] == "dir"
        assert hook.get_size(f"{base}/in/report.csv") == local.stat().st_size
        assert len(hook.get_mod_time(f"{base}/in/report.csv")) == 14
        hook.rename(f"{base}/in/report.csv", f"{base}/in/2026/report.csv")
        assert not hook.path_exists(f"{base}/in/report.csv")
        back = tmp_path / "back" / "report.csv"
        back.parent.mkdir()
        hook.retrieve_file(f"{base}/in/2026/report.csv", str(back))
        assert back.read_bytes() == local.read_bytes()
        hook.retrieve_directory(f"{base}/in", str(tmp_path / "tree"))
        assert (tmp_path / "tree" / "2026" / "report.csv").read_bytes() == local.read_bytes()
        hook.delete_file(f"{base}/in/2026/report.csv")
        hook.delete_directory(f"{base}/in", include_files=True)
        assert not hook.path_exists(f"{base}/in")
    assert (vsftpd_workdir.local / "in").exists() is False


def test_trigger_serialize_round_trip_then_fires(
    airflow_home: Path, sshd: Sshd, connections: dict[str, str]
) -> None:
    from airflow.serialization.serialized_objects import BaseSerialization

    connections["bank"] = sftp_uri(sshd)
    work = sshd.workdir("trigger")
    work.write("a.csv", b"1\n")
    work.write("b.csv", b"2\n")
    work.write("c.txt", b"3\n")
    trigger = FerrymanTrigger(
        spec={"path": f"{work.path}/*.csv", "min_count": 2, "stable_for": 0.5},
        ferryman_conn_id="bank",
        poll_interval=0.2,
    )
    classpath, kwargs = trigger.serialize()
    # what the triggerer stores and reads back after a restart
    stored = BaseSerialization.serialize(kwargs)
    restored_kwargs = BaseSerialization.deserialize(json.loads(json.dumps(stored)))
    module, _, name = classpath.rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    again = cls(**restored_kwargs)
    assert again.serialize() == (classpath, kwargs)

    async def first_event() -> dict[str, object]:
        async for event in again.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    payload = asyncio.run(asyncio.wait_for(first_event(), timeout=60))
    assert payload["status"] == "success"
    files = payload["files"]
    assert isinstance(files, list)
    assert sorted(Path(f["path"]).name for f in files) == ["a.csv", "b.csv"]


def test_trigger_reports_a_refused_login_as_an_error_event(
    airflow_home: Path, vsftpd_explicit: Vsftpd, connections: dict[str, str]
) -> None:
    connections["partner"] = ftpes_uri(vsftpd_explicit, "Wrong-pw-never-shown-42")
    trigger = FerrymanTrigger(spec={"path": "/*.csv"}, ferryman_conn_id="partner")

    async def first_event() -> dict[str, object]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    payload = asyncio.run(asyncio.wait_for(first_event(), timeout=60))
    assert payload["status"] == "error"
    assert "Wrong-pw-never-shown-42" not in json.dumps(payload)


def test_object_storage_path_reads_and_writes_through_the_connection(
    airflow_home: Path,
    vsftpd_explicit: Vsftpd,
    vsftpd_workdir: Workdir,
    connections: dict[str, str],
) -> None:
    connections["partner"] = ftpes_uri(vsftpd_explicit)
    vsftpd_workdir.write("orders.csv", b"id\n1\n2\n")
    where = f"ftpes://partner@{vsftpd_explicit.host}{vsftpd_workdir.ftp_path()}"
    path = ObjectStoragePath(f"{where}/orders.csv")
    assert path.read_bytes() == b"id\n1\n2\n"
    (ObjectStoragePath(f"{where}/copy.csv")).write_text("id\n3\n")
    assert (vsftpd_workdir.local / "copy.csv").read_bytes() == b"id\n3\n"
    names = sorted(p.name for p in ObjectStoragePath(f"{where}/").iterdir())
    assert names == ["copy.csv", "orders.csv"]


def test_object_storage_path_refuses_a_connection_of_another_protocol(
    airflow_home: Path, sshd: Sshd, connections: dict[str, str]
) -> None:
    connections["bank"] = sftp_uri(sshd)
    # (Airflow itself swallows the error when it builds the path; .fs asks again)
    with pytest.raises(ConfigError, match="not a ftpes:// connection"):
        _ = ObjectStoragePath(f"ftpes://bank@{sshd.host}/x.csv").fs


def test_connection_objects_map_extras_with_the_forms_prefix() -> None:
    from ferryman.airflow.connection import ferryman_connection

    conn = Connection(
        conn_id="p",
        conn_type="ferryman_ftps",
        host="ftp.partner.example",
        login="orders",
        extra=json.dumps({"extra__ferryman_ftps__fingerprint": "", "passive": False}),
    )
    settings = ferryman_connection(conn)
    assert settings.port == 990
    assert settings.passive is False
