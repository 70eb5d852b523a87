#!/usr/bin/env bash
# The main job on a fresh machine: set up, train the frozen ResNet18 on the sample data, time the loader.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== training (scripts/train.py) on data/sample"
.venv/bin/python scripts/train.py --data data/sample --epochs 3 --num-workers 2 \
  --checkpoint runs/checkpoint.pt --plot runs/loss_curves.png --no-progress
echo "== loader-only num_workers timing on data/sample"
.venv/bin/python -m helpers bench --data data/sample --workers 0 1 2 4 --pipeline blog fast --batches 12 --repeats 3 \
  --csv runs/bench.csv --plot runs/bench.png --no-progress
