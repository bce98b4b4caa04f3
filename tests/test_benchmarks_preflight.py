"""The benchmark harness stops with one line naming the command to run first when the
machine lacks what its servers need (issue 12), instead of a traceback."""

from __future__ import annotations

import pytest
from benchmarks import environment
from benchmarks.run import main


def test_a_missing_test_user_stops_the_harness_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(environment, "TEST_USER", "ferryman-no-such-user")
    assert main(["--quick", "--only", "big-download", "--protocol", "ftp"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "the test user 'ferryman-no-such-user' does not exist" in lines[0]
    assert "run `bash scripts/install-test-servers.sh` as root first" in lines[0]


def test_nothing_to_start_needs_nothing() -> None:
    assert environment.preflight([]) is None


def test_preflight_names_each_missing_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "TEST_USER", "ferryman-no-such-user")
    monkeypatch.setattr(environment, "VSFTPD_BINARY", environment.Path("/nonexistent/vsftpd"))
    line = environment.preflight(["sftp"])
    assert line is not None and "ferryman-no-such-user" in line and "vsftpd" not in line
    line = environment.preflight(["ftps"])
    assert line is not None and "/nonexistent/vsftpd is not installed" in line


def test_the_fsspec_workloads_ftps_without_reuse_needs_vsftpd_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(environment, "VSFTPD_BINARY", environment.Path("/nonexistent/vsftpd"))
    line = environment.preflight(["ftps-noreuse"])
    assert line is not None and "/nonexistent/vsftpd is not installed" in line
