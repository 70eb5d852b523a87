#!/usr/bin/env bash
# The main job on a fresh machine: set up, then execute every notebook with papermill (full profile) on the
# generated sample data and print a summary: seconds per notebook and the num_workers table notebook 05 measured.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== executing notebooks/ with papermill (full profile) into runs/notebooks"
.venv/bin/python -m helpers run-notebooks --profile full --out runs/notebooks
