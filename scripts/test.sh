#!/usr/bin/env bash
# Install the test dependencies (Debian packages for the real servers, Python extras) and run
# the whole bar: ruff, mypy, pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-servers.sh
python -m pip install --quiet --disable-pip-version-check -e ".[test]"
ruff check src tests
ruff format --check src tests
mypy
python -m pytest "$@"
