"""The real consumers of fsspec on ferryman's filesystems: pandas (CSV and Parquet through
pyarrow), ``fsspec.open_files`` over a glob, and dask reading a glob of CSVs, on ``ftpes://``
(vsftpd, ``require_ssl_reuse=YES``) and ``ferryman+sftp://`` (OpenSSH) URLs."""

from __future__ import annotations

from typing import Any

import dask
import dask.dataframe as dd
import fsspec
import pandas as pd
import pytest

from tests.servers.sshd import RemoteDir, Sshd
from tests.servers.vsftpd import Vsftpd, Workdir

from .servers import COMMON, sshd_options, vsftpd_options

Target = tuple[str, dict[str, Any], str]  # URL prefix, storage options, directory


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """Storage options without what the URL says (host, port, user) and the test-only
    instance-cache switch."""
    return {
        k: v
        for k, v in options.items()
        if k not in ("host", "port", "user") and k != "skip_instance_cache"
    } | {"retries": COMMON["retries"]}


@pytest.fixture(params=["ftpes", "sftp"])
def target(
    request: pytest.FixtureRequest,
) -> Target:
    if request.param == "ftpes":
        server: Vsftpd = request.getfixturevalue("vsftpd_explicit")
        workdir: Workdir = request.getfixturevalue("vsftpd_workdir")
        prefix = f"ftpes://{server.user}@{server.host}:{server.port}"
        return prefix, _options(vsftpd_options(server)), workdir.path
    sshd: Sshd = request.getfixturevalue("sshd")
    remote: RemoteDir = request.getfixturevalue("sshd_workdir")
    prefix = f"ferryman+sftp://{sshd.user}@{sshd.host}:{sshd.port}"
    return prefix, _options(sshd_options(sshd)), remote.path


def _frame(rows: int = 500) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(rows),
            "name": [f"name-{i}" for i in range(rows)],
            "amount": [i * 0.25 for i in range(rows)],
        }
    )


def test_pandas_csv_round_trip(target: Target) -> None:
    prefix, options, directory = target
    url = f"{prefix}{directory}/orders.csv"
    frame = _frame()
    frame.to_csv(url, index=False, storage_options=options)
    back = pd.read_csv(url, storage_options=options)
    pd.testing.assert_frame_equal(back, frame)


def test_pandas_parquet_round_trip_with_ranged_reads(target: Target) -> None:
    prefix, options, directory = target
    url = f"{prefix}{directory}/orders.parquet"
    frame = _frame(20_000)
    frame.to_parquet(url, storage_options=options)
    pd.testing.assert_frame_equal(pd.read_parquet(url, storage_options=options), frame)
    # one column: pyarrow seeks to the footer, then reads that column's chunk only
    only = pd.read_parquet(url, columns=["amount"], storage_options=options)
    pd.testing.assert_frame_equal(only, frame[["amount"]])


def test_open_files_over_a_glob(target: Target) -> None:
    prefix, options, directory = target
    for i in range(3):
        with fsspec.open(f"{prefix}{directory}/in/part-{i}.txt", "wt", **options) as f:
            f.write(f"line {i}\n")
    opened = fsspec.open_files(f"{prefix}{directory}/in/part-*.txt", "rt", **options)
    assert len(opened) == 3
    texts = []
    for item in opened:
        with item as f:
            texts.append(f.read())
    assert texts == ["line 0\n", "line 1\n", "line 2\n"]


def test_dask_reads_a_glob_of_csvs_with_the_threaded_scheduler(target: Target) -> None:
    prefix, options, directory = target
    frame = _frame(300)
    for i in range(3):
        part = frame.iloc[i * 100 : (i + 1) * 100]
        part.to_csv(f"{prefix}{directory}/csv/part-{i}.csv", index=False, storage_options=options)
    data = dd.read_csv(f"{prefix}{directory}/csv/part-*.csv", storage_options=options)
    with dask.config.set(scheduler="threads"):
        result = data.compute().sort_values("id").reset_index(drop=True)
    # dask and pandas may pick different string dtypes: compare the values
    assert result.to_dict("list") == frame.to_dict("list")
