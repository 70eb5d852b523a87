#!/usr/bin/env bash
# Set up on a fresh machine, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== tests"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
