#!/usr/bin/env bash
# Make (or bring up to date) the virtual environment the Airflow provider's tests run in and
# print its path. Apache Airflow pins its own dependencies (SQLAlchemy, pydantic, ...) apart
# from constraints/ci.txt, so it gets a venv of its own: $FERRYMAN_AIRFLOW_VENV, default
# .venv-airflow in the checkout. Packages come at the exact versions of constraints/airflow.txt;
# FERRYMAN_AIRFLOW_UNPINNED=1 takes the newest Airflow 3 that pyproject.toml admits instead.
# A second run finds everything installed and takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${FERRYMAN_AIRFLOW_VENV:-$PWD/.venv-airflow}"
python="${PYTHON:-python}"  # the interpreter scripts/test.sh runs with
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" >&2
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if [[ "${FERRYMAN_AIRFLOW_UNPINNED:-0}" == 1 ]]; then
    "${pip[@]}" --upgrade -e ".[airflow]" pytest pytest-timeout >&2
else
    "${pip[@]}" -c constraints/airflow.txt -e ".[airflow]" pytest pytest-timeout >&2
fi
echo "$venv"
