#!/usr/bin/env bash
# Set up if needed, then open the notebooks in JupyterLab with the project's environment (its kernel sees helpers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m helpers lab "$@"
