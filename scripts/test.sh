#!/usr/bin/env bash
# Install the test dependencies (Debian packages for the real servers, Python extras) and run
# the whole bar: ruff, mypy, pytest; then the Airflow provider's tests (tests/airflow) in the
# venv of their own that scripts/airflow-env.sh makes (Airflow pins its own dependencies).
# Extra arguments go to the main pytest run.
#
# Python packages come at the exact versions in constraints/ci.txt (refreshed by
# scripts/refresh-constraints.sh), so a run today and a run next month test the same code.
# FERRYMAN_UNPINNED=1 skips the constraints and upgrades everything to the newest releases
# pyproject.toml admits instead: what a user installing ferryman today gets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-servers.sh
pip=(python -m pip install --quiet --disable-pip-version-check)
if [[ "${FERRYMAN_UNPINNED:-0}" == 1 ]]; then
    "${pip[@]}" --upgrade --upgrade-strategy eager -e ".[test]"
else
    "${pip[@]}" -c constraints/ci.txt -e ".[test]"
fi
ruff check src tests
ruff format --check src tests
mypy
python -m pytest "$@"
airflow_venv="$(bash scripts/airflow-env.sh)"
"$airflow_venv/bin/python" -m pytest -p no:cacheprovider tests/airflow
