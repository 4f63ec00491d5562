#!/usr/bin/env bash
# Install pfcore with its test dependencies into .venv and run every test.
# PostgreSQL variants run when PFCORE_TEST_DATABASE_URL is set (see docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]"
# Lint and format (ruff, [tool.ruff] in pyproject.toml) before the tests: a finding stops the run.
python -m ruff check .
python -m ruff format --check .
python -m pytest -n 2 -p no:cacheprovider "$@"
