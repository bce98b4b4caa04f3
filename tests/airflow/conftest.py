"""The Airflow provider's tests: a real Airflow 3 with a SQLite metadata database in a temporary
AIRFLOW_HOME, migrated once per session, and the real vsftpd and sshd of tests/servers.

They run in the Airflow venv (scripts/airflow-env.sh; scripts/test.sh does it after the main
run). Without Airflow they fail at collection: tests/conftest.py leaves this directory out of a
main-venv run of the whole suite, but naming it explicitly runs it, and then Airflow must be
there.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

if importlib.util.find_spec("airflow") is None:  # a failure, never a skip: CI runs these
    raise pytest.UsageError(
        "tests/airflow need Apache Airflow 3; run them in the venv that scripts/airflow-env.sh "
        "makes: $(bash scripts/airflow-env.sh)/bin/python -m pytest tests/airflow"
    )

# Before anything imports Airflow: its configuration is read once, at import.
_HOME = Path(tempfile.mkdtemp(prefix="ferryman-airflow-home-"))
(_HOME / "dags").mkdir()
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(_HOME / "dags"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }
)


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    """AIRFLOW_HOME with a migrated SQLite metadata database (``airflow db migrate``)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}")
    try:
        yield _HOME
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    # universal_pathlib (under ObjectStoragePath) warns for every fsspec protocol it has no
    # class of its own for (ours, as any third-party one) and falls back to its generic one
    config.addinivalue_line(
        "filterwarnings", "ignore:UPath .* filesystem not explicitly implemented:UserWarning"
    )
