#!/usr/bin/env bash
# Set up on a fresh machine, then run every test: unit tests, papermill over the notebooks that read bad files,
# nbval re-executing the committed notebooks and comparing their outputs (strict: not --nbval-lax; its kernels
# started by the main job's kernel manager, each cell under run-notebooks' quick limit: conftest.py), and the
# browser test (JupyterLab in headless Chromium; `-m "not browser"` leaves it out).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_chromium.sh
echo "== tests and notebooks"
.venv/bin/python -m pytest -q -p no:cacheprovider tests notebooks \
  --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg "$@"
