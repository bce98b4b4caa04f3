"""The only-new ledger: what counts as new, atomic batches, big listings, forgetting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ferryman.state import StateStore
from ferryman.state.ledger import FILTER_BATCH

JOB = "nightly-orders"
FTP = "ftpes://orders@ftp.partner.example:21"
T0 = datetime(2024, 5, 1, 2, 0, 0, tzinfo=UTC)

Entry = tuple[str, int | None, datetime | str | None]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def run_id(store: StateStore) -> int:
    return store.start_run(JOB)


def test_a_remembered_file_is_not_new_again(store: StateStore, run_id: int) -> None:
    assert store.is_new(JOB, FTP, "/out/a.csv", 100, T0)
    store.remember(JOB, FTP, [("/out/a.csv", 100, T0)], run_id)
    assert not store.is_new(JOB, FTP, "/out/a.csv", 100, T0)
    assert store.filter_new(JOB, FTP, [("/out/a.csv", 100, T0)]) == []


def test_a_changed_size_or_mtime_makes_a_file_new(store: StateStore, run_id: int) -> None:
    store.remember(JOB, FTP, [("/out/a.csv", 100, T0)], run_id)
    assert store.is_new(JOB, FTP, "/out/a.csv", 101, T0)
    assert store.is_new(JOB, FTP, "/out/a.csv", 100, T0 + timedelta(seconds=1))
    assert store.is_new(JOB, FTP, "/out/a.csv", 100, T0 + timedelta(microseconds=1))
    assert store.is_new(JOB, FTP, "/out/b.csv", 100, T0)


def test_another_connection_or_job_makes_a_file_new(store: StateStore, run_id: int) -> None:
    store.remember(JOB, FTP, [("/out/a.csv", 100, T0)], run_id)
    assert store.is_new(JOB, "ftpes://orders@ftp.other.example:21", "/out/a.csv", 100, T0)
    assert store.is_new(JOB, "ftpes://billing@ftp.partner.example:21", "/out/a.csv", 100, T0)
    assert store.is_new("other-job", FTP, "/out/a.csv", 100, T0)


def test_changing_the_file_pattern_does_not_reset_the_ledger(
    store: StateStore, run_id: int
) -> None:
    # first the job took *.csv; now its pattern is orders-*: what was taken stays taken
    store.remember(JOB, FTP, [("/out/orders-1.csv", 10, T0), ("/out/x.csv", 5, T0)], run_id)
    listing: list[Entry] = [("/out/orders-1.csv", 10, T0), ("/out/orders-2.txt", 7, T0)]
    assert store.filter_new(JOB, FTP, listing) == [listing[1]]


def test_times_are_compared_as_instants(store: StateStore, run_id: int) -> None:
    store.remember(JOB, FTP, [("/out/a.csv", 1, T0)], run_id)
    paris = timezone(timedelta(hours=2))
    assert not store.is_new(JOB, FTP, "/out/a.csv", 1, T0.astimezone(paris))
    assert not store.is_new(JOB, FTP, "/out/a.csv", 1, T0.replace(tzinfo=None))  # naive: UTC
    assert not store.is_new(JOB, FTP, "/out/a.csv", 1, "2024-05-01T04:00:00+02:00")
    assert not store.is_new(JOB, FTP, "/out/a.csv", 1, "2024-05-01T02:00:00Z")


def test_unknown_size_or_mtime_is_part_of_the_key(store: StateStore, run_id: int) -> None:
    store.remember(JOB, FTP, [("/out/a", None, None), ("/out/b", 5, None)], run_id)
    assert not store.is_new(JOB, FTP, "/out/a", None, None)
    assert store.is_new(JOB, FTP, "/out/a", 0, None)  # now the server tells a size
    assert not store.is_new(JOB, FTP, "/out/b", 5, None)
    assert store.is_new(JOB, FTP, "/out/b", 5, T0)
    taken = {t.path: t for t in store.taken(JOB)}
    assert (taken["/out/a"].size, taken["/out/a"].mtime) == (None, None)
    assert (taken["/out/b"].size, taken["/out/b"].run_id) == (5, run_id)


def test_filter_new_keeps_order_duplicates_and_the_callers_objects(
    store: StateStore, run_id: int
) -> None:
    store.remember(JOB, FTP, [("/b", 2, T0)], run_id)
    entries: list[Entry] = [("/c", 3, T0), ("/b", 2, T0), ("/a", 1, T0), ("/c", 3, T0)]
    fresh = store.filter_new(JOB, FTP, entries)
    assert fresh == [entries[0], entries[2], entries[3]]
    assert fresh[0] is entries[0]
    assert store.filter_new(JOB, FTP, []) == []


def test_filter_new_on_100_000_entries(store: StateStore, run_id: int) -> None:
    count = 100_000
    assert count > FILTER_BATCH  # more than one query's worth
    listing: list[Entry] = [
        (f"/outbound/2024/05/orders-{n:06d}.csv", 1000 + n, T0 + timedelta(seconds=n))
        for n in range(count)
    ]
    taken = [e for n, e in enumerate(listing) if n % 3 == 0]
    store.remember(JOB, FTP, taken, run_id)
    # a few taken files changed since: one in size, one in time; they are new again
    listing[3] = (listing[3][0], 1, listing[3][2])
    listing[6] = (listing[6][0], listing[6][1], T0 - timedelta(days=1))
    expected = [e for n, e in enumerate(listing) if n % 3 != 0 or n in (3, 6)]

    fresh = store.filter_new(JOB, FTP, listing)
    assert fresh == expected
    assert len(fresh) == count - len(taken) + 2
    assert store.filter_new(JOB, "sftp://orders@elsewhere:22", listing) == listing


def test_remember_is_atomic_when_a_record_is_malformed(store: StateStore, run_id: int) -> None:
    good: list[Entry] = [(f"/out/{n}.csv", n, T0) for n in range(1000)]
    bad = [*good[:500], ("/out/broken.csv", -5, T0), *good[500:]]
    with pytest.raises(ValueError, match=r"broken\.csv"):
        store.remember(JOB, FTP, bad, run_id)
    assert store.taken(JOB) == []
    assert store.filter_new(JOB, FTP, good) == good


def test_remember_is_atomic_when_the_source_fails_mid_batch(store: StateStore, run_id: int) -> None:
    def records() -> Iterator[Entry]:
        for n in range(1000):
            yield (f"/out/{n}.csv", n, T0)
        raise RuntimeError("the listing connection dropped")

    with pytest.raises(RuntimeError, match="dropped"):
        store.remember(JOB, FTP, records(), run_id)
    assert store.taken(JOB) == []
    store.remember(JOB, FTP, [("/out/0.csv", 0, T0)], run_id)  # the store still works
    assert len(store.taken(JOB)) == 1


def test_remember_needs_an_existing_run(store: StateStore) -> None:
    with pytest.raises(ValueError):
        store.remember(JOB, FTP, [("/out/a.csv", 1, T0)], 424242)
    store.remember(JOB, FTP, [("/out/a.csv", 1, T0)], None)  # no run: allowed (operators)
    assert store.taken(JOB)[0].run_id is None


def test_remembering_again_records_the_newer_run(store: StateStore, run_id: int) -> None:
    store.remember(JOB, FTP, [("/out/a.csv", 1, T0)], run_id)
    later = store.start_run(JOB)
    store.remember(JOB, FTP, [("/out/a.csv", 1, T0), ("/out/a.csv", 1, T0)], later)
    (entry,) = store.taken(JOB)
    assert entry.run_id == later


def test_the_ledger_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        store.remember(JOB, FTP, [("/out/a.csv", 1, T0)], store.start_run(JOB))
    with StateStore(path) as store:
        assert not store.is_new(JOB, FTP, "/out/a.csv", 1, T0)


def test_forget(store: StateStore, run_id: int) -> None:
    sftp = "sftp://etl@sftp.bank.example:22"
    store.remember(JOB, FTP, [("/out/a.csv", 1, T0), ("/out/sub/b.csv", 2, T0)], run_id)
    store.remember(JOB, FTP, [("/out/c.txt", 3, T0)], run_id)
    store.remember(JOB, sftp, [("/out/a.csv", 1, T0)], run_id)
    store.remember("other", FTP, [("/out/a.csv", 1, T0)], run_id)

    assert store.forget(JOB, FTP, "/out/*.csv") == 2  # * crosses /
    assert store.is_new(JOB, FTP, "/out/sub/b.csv", 2, T0)
    assert not store.is_new(JOB, FTP, "/out/c.txt", 3, T0)
    assert store.forget(JOB, path_glob="/out/a.csv") == 1  # the sftp one
    assert store.forget(JOB) == 1
    assert store.taken(JOB) == []
    assert not store.is_new("other", FTP, "/out/a.csv", 1, T0)
    assert store.forget("nobody") == 0


def test_taken_lists_entries_for_operators(store: StateStore, run_id: int) -> None:
    store.remember(JOB, FTP, [(f"/out/{n}.csv", n, T0) for n in range(5)], run_id)
    assert len(store.taken(JOB, limit=2)) == 2
    (entry,) = store.taken(JOB, FTP, "/out/3.*")
    assert entry.to_dict() == {
        "job": JOB,
        "connection": FTP,
        "path": "/out/3.csv",
        "size": 3,
        "mtime": "2024-05-01T02:00:00+00:00",
        "run_id": run_id,
        "taken": entry.taken,
    }
