"""Files in flight chosen from the round trip, and connection limits remembered per host
(issue 19): ``transfer.inflight`` and ``transfer.hostlimits``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from ferryman.backends.base import Capabilities
from ferryman.backends.local import LocalBackend
from ferryman.backends.memory import MemoryBackend
from ferryman.cli import cli
from ferryman.transfer import hostlimits
from ferryman.transfer.inflight import (
    LOCAL_PARALLEL,
    MAX_CONNECTIONS,
    MAX_PARALLEL,
    choose_parallel,
    host_key,
)

KIB = 1024


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FERRYMAN_CACHE_DIR", str(tmp_path / "cache"))
    hostlimits.forget()
    yield tmp_path / "cache"
    hostlimits.forget()


class _Remote(MemoryBackend):
    """A memory backend that describes itself as a server with its own round trip."""

    def __init__(
        self, name: str, round_trip: float | None, *, shared: bool, trips: tuple[int, int] = (1, 1)
    ) -> None:
        super().__init__()
        self.name = name
        self.round_trip = round_trip
        self.capabilities = replace(
            self.capabilities,
            shared_connections=shared,
            read_round_trips=trips[0],
            write_round_trips=trips[1],
        )

    def describe(self) -> str:
        return self.name


def _ftp(round_trip: float | None, name: str = "ftps://u@h:21") -> _Remote:
    return _Remote(name, round_trip, shared=False)


def _sftp(round_trip: float | None, name: str = "sftp://u@h:22") -> _Remote:
    return _Remote(name, round_trip, shared=True)


def test_an_explicit_number_wins_but_never_exceeds_the_files() -> None:
    assert choose_parallel(16, 2000, 2000 * 4 * KIB, _ftp(0.05), LocalBackend()).parallel == 16
    assert choose_parallel(16, 3, 3 * 4 * KIB, _ftp(0.05), LocalBackend()).parallel == 3


def test_a_short_or_unknown_round_trip_keeps_the_cpu_bound_default() -> None:
    for trip in (None, 0.0001, 0.0019):
        choice = choose_parallel(None, 2000, 2000 * 4 * KIB, _sftp(trip), LocalBackend())
        assert choice.parallel == LOCAL_PARALLEL, choice


def test_a_long_round_trip_puts_more_small_files_in_flight() -> None:
    at_10ms = choose_parallel(None, 2000, 2000 * 4 * KIB, _sftp(0.010), LocalBackend())
    at_50ms = choose_parallel(None, 2000, 2000 * 4 * KIB, _sftp(0.050), LocalBackend())
    assert LOCAL_PARALLEL < at_10ms.parallel < at_50ms.parallel <= MAX_PARALLEL
    assert "round trip 50 ms" in at_50ms.reason


def test_files_in_flight_cover_every_round_trip_a_file_waits() -> None:
    # SFTP's own figures: a read waits 2 round trips, a write 3 (OPEN; data + CLOSE; RENAME)
    server = _Remote("sftp://u@h:22", 0.010, shared=True, trips=(2, 3))
    get = choose_parallel(None, 2000, 2000 * 4 * KIB, server, LocalBackend())
    put = choose_parallel(None, 2000, 2000 * 4 * KIB, LocalBackend(), server)
    one = choose_parallel(None, 2000, 2000 * 4 * KIB, _sftp(0.010), LocalBackend())
    assert (one.parallel, get.parallel, put.parallel) == (20, 40, 60)
    assert "30 ms per file" in put.reason
    # server to server: both sides' waits add up
    other = _Remote("sftp://u@k:22", 0.005, shared=True, trips=(2, 3))
    both = choose_parallel(None, 2000, 2000 * 4 * KIB, server, other)
    assert both.parallel == 70  # (10 ms x 2 + 5 ms x 3) / 0.5 ms


def test_connections_of_their_own_are_capped_lower_than_shared_channels() -> None:
    ftp = choose_parallel(None, 2000, 2000 * 4 * KIB, _ftp(0.1), LocalBackend())
    sftp = choose_parallel(None, 2000, 2000 * 4 * KIB, _sftp(0.2), LocalBackend())
    assert ftp.parallel == MAX_CONNECTIONS and sftp.parallel == MAX_PARALLEL


def test_a_server_announcing_a_limit_is_not_asked_for_more() -> None:
    server = _ftp(0.1)
    server.capabilities = replace(server.capabilities, max_connections=5)
    assert choose_parallel(None, 100, 100 * KIB, server, LocalBackend()).parallel == 5


def test_big_files_need_few_streams_whatever_the_round_trip() -> None:
    big = choose_parallel(None, 20, 20 * 1024**3, _sftp(0.1), LocalBackend())
    assert big.parallel == LOCAL_PARALLEL


def test_the_slower_side_decides() -> None:
    choice = choose_parallel(None, 2000, 2000 * KIB, _sftp(0.001), _sftp(0.05, "sftp://v@w:22"))
    assert choice.parallel > LOCAL_PARALLEL


def test_a_remembered_limit_caps_the_automatic_choice_only(own_cache: Path) -> None:
    server = _sftp(0.05)
    hostlimits.remember(host_key(server), 6)
    choice = choose_parallel(None, 2000, 2000 * KIB, server, LocalBackend())
    assert choice.parallel == 6 and "accepted 6 connection(s) before" in choice.reason
    assert choose_parallel(20, 2000, 2000 * KIB, server, LocalBackend()).parallel == 20
    stored = json.loads((own_cache / "host-limits.json").read_text())
    assert stored["sftp://u@h:22"]["connections"] == 6


def test_the_memory_survives_the_process_and_expires(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostlimits.remember("ftp://u@h:21", 3)
    hostlimits._memory.clear()  # a new process: only the file is left
    assert hostlimits.limit_for("ftp://u@h:21") == 3
    later = time.time() + hostlimits.REMEMBER_FOR + 1
    monkeypatch.setattr(hostlimits.time, "time", lambda: later)
    assert hostlimits.limit_for("ftp://u@h:21") is None


def test_a_broken_cache_file_is_ignored_and_replaced(own_cache: Path) -> None:
    own_cache.mkdir(parents=True, exist_ok=True)  # forget() made it
    (own_cache / "host-limits.json").write_text("{not json")
    assert hostlimits.limit_for("ftp://u@h:21") is None
    hostlimits.remember("ftp://u@h:21", 2)
    assert json.loads((own_cache / "host-limits.json").read_text())["ftp://u@h:21"]["connections"]


def test_an_unwritable_cache_costs_nothing_but_the_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FERRYMAN_CACHE_DIR", str(blocker / "sub"))  # a file in the way
    hostlimits.remember("ftp://u@h:21", 2)
    assert hostlimits.limit_for("ftp://u@h:21") == 2


def test_capabilities_declare_who_shares_connections() -> None:
    assert LocalBackend.capabilities.shared_connections
    assert not Capabilities().shared_connections


@pytest.mark.parametrize("value", ["0", "257", "many", "-3"])
def test_the_cli_refuses_a_bad_parallel_setting_before_connecting(value: str) -> None:
    result = CliRunner().invoke(cli, ["get", "ftp://u@127.0.0.1:1/x", "out/", "-P", value])
    assert result.exit_code == 2
    assert f"{value!r} is not auto or a number from 1 to {MAX_PARALLEL}" in result.stderr


def test_the_cli_takes_auto_and_numbers(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for index in range(12):
        (source / f"f{index}").write_bytes(b"x" * index)
    for value in ("auto", "AUTO", "7"):
        out = tmp_path / f"out-{value}"
        result = CliRunner().invoke(cli, ["put", "-r", str(source), str(out), "-P", value, "-v"])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in out.iterdir()) == sorted(f"f{i}" for i in range(12))
        wanted = "7 file(s) in flight (--parallel 7)" if value == "7" else "4 file(s) in flight"
        assert wanted in result.stderr
