#!/usr/bin/env bash
# Install pfcore into .venv and run it on SQLite with the demo practice.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q .
pfcore demo
exec pfcore run "$@"
