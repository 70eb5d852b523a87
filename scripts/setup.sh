#!/usr/bin/env bash
# Make (or refresh) the project's virtual environment in .venv and the sample data in data/sample.
set -euo pipefail
cd "$(dirname "$0")/.."
quiet() { "$@" 2>&1 | { grep -v "is neither a file nor a directory" || true; }; }

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $(${PYTHON:-python3} --version)"
  "${PYTHON:-python3}" -m venv .venv
fi
echo "== installing requirements.txt into .venv (torch is large: the first time takes a few minutes)"
quiet .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
quiet .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
# Build matplotlib's font cache now: its one-time notice on stderr would otherwise land in a notebook's output.
.venv/bin/python -c "import matplotlib.pyplot" 2>/dev/null
echo "== sample data"
.venv/bin/python -m helpers sample-data data/sample --per-class 100 --seed 0
