"""The Airflow provider's pieces that need no Airflow: connection mapping, the file watch, the
provider info (the rest runs in a real Airflow: tests/airflow)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ferryman.airflow import get_provider_info
from ferryman.airflow.connection import ferryman_connection
from ferryman.airflow.watch import FileWatch, WatchSpec
from ferryman.connection import TLSMode
from ferryman.errors import ConfigError
from ferryman.redact import mask


@dataclass
class FakeAirflowConnection:
    """The fields an Airflow Connection has (the mapping reads nothing else)."""

    conn_type: str
    host: str | None = "ftp.partner.example"
    port: int | None = None
    login: str | None = "orders"
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    conn_id: str | None = "partner"

    @property
    def extra_dejson(self) -> dict[str, Any]:
        return self.extra


def test_each_type_means_its_protocol_and_tls_mode() -> None:
    expected = {
        "ferryman_ftp": ("ftp", TLSMode.NONE, 21),
        "ferryman_ftpes": ("ftp", TLSMode.EXPLICIT, 21),
        "ferryman_ftps": ("ftp", TLSMode.IMPLICIT, 990),
        "ferryman_sftp": ("sftp", None, 22),
        "ftp": ("ftp", TLSMode.NONE, 21),
        "sftp": ("sftp", None, 22),
    }
    for conn_type, (protocol, tls, port) in expected.items():
        conn = ferryman_connection(FakeAirflowConnection(conn_type))
        assert (conn.protocol, getattr(conn, "tls", None), conn.port) == (protocol, tls, port)


def test_extras_are_ferryman_settings_and_the_password_is_masked() -> None:
    secret = "Airflow-secret-pw-7731"
    conn = ferryman_connection(
        FakeAirflowConnection(
            "ferryman_ftpes",
            port=2121,
            password=secret,
            extra={"ca_file": "/etc/ssl/ca.pem", "passive": "false", "timeout": "30", "x": ""},
        )
    )
    assert conn.port == 2121 and str(conn.ca_file) == "/etc/ssl/ca.pem"
    assert conn.passive is False and conn.timeout == 30
    assert secret not in repr(conn)
    assert mask(f"said {secret}") == "said ****"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"tls": "none"}, "the 'tls' extra is not allowed"),
        ({"verify_everything": True}, "unknown setting"),
    ],
)
def test_bad_extras_are_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ferryman_connection(FakeAirflowConnection("ferryman_ftpes", extra=extra))


def test_other_connection_types_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="type 'http'") as caught:
        ferryman_connection(FakeAirflowConnection("http"))
    assert caught.value.hint is not None and "ferryman_sftp" in caught.value.hint


def test_an_official_sftp_connection_is_translated() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    conn = ferryman_connection(
        FakeAirflowConnection(
            "sftp",
            extra={"key_file": "/opt/keys/id", "host_key": key, "compress": "true"},
        )
    )
    assert str(conn.private_key) == "/opt/keys/id"  # type: ignore[union-attr]
    assert conn.fingerprint == "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"no_host_key_check": "true"}, "always verifies SSH host keys"),
        ({"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----"}, "key's text"),
        ({"host_key": "ssh-ed25519 not*base64"}, "not a base64 SSH public key"),
    ],
)
def test_what_ferryman_would_do_less_safely_is_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ferryman_connection(FakeAirflowConnection("sftp", extra=extra))


def test_the_file_watch_waits_for_stable_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1\n")
    (tmp_path / "b.txt").write_text("2\n")
    watch = FileWatch(WatchSpec(path=f"{tmp_path}/*.csv", stable_for=0.3), None)
    files, settling = watch.check()
    assert files is None and 0 < settling <= 0.3
    time.sleep(settling + 0.05)
    files, _ = watch.check()
    assert files is not None and [Path(f["path"]).name for f in files] == ["a.csv"]


def test_the_file_watch_counts_and_filters(tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_text("0\n")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    (tmp_path / "new.csv").write_text("1\n")
    spec = WatchSpec(path=str(tmp_path), newer_than="1h", min_count=2)
    assert FileWatch(spec, None).check()[0] is None  # one new file, two wanted
    (tmp_path / "newer.csv").write_text("2\n")
    files, _ = FileWatch(spec, None).check()
    assert files is not None and sorted(Path(f["path"]).name for f in files) == [
        "new.csv",
        "newer.csv",
    ]


def test_a_watch_spec_is_json_and_fixes_relative_times() -> None:
    spec = WatchSpec(path="/in/*.csv", newer_than="2h", include=("a*",)).resolved()
    again = WatchSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec and again.newer_than is not None and "T" in again.newer_than


def test_the_provider_info_names_every_part() -> None:
    info = get_provider_info()
    assert info["package-name"] == "ferryman"
    types = {c["connection-type"] for c in info["connection-types"]}
    assert types == {"ferryman_ftp", "ferryman_ftpes", "ferryman_ftps", "ferryman_sftp"}
    assert len(info["filesystems"]) == 4
