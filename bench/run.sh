#!/usr/bin/env bash
# One command for the benchmarks (docs/performance.md): install pfcore into .venv,
# install wrk (Debian) when missing and we may, then run python -m bench.
#   bash bench/run.sh                        # SQLite and PostgreSQL, full sizes (~15 min)
#   bash bench/run.sh --databases sqlite     # any option of python -m bench
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q -e ".[bench]"
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "wrk is not installed (apt-get install wrk): the Python load generator is used instead." >&2
  fi
fi
exec python -m bench "$@"
