#!/usr/bin/env bash
# For a GPU machine whose Python 3.12 has torch but no Jupyter stack and no network: download here, into DEST
# (default .whl/, ignored by git), the wheels that let scripts/gpu_session.sh run the tests and the notebooks there:
# papermill, ipykernel, nbval and pytest at requirements.txt's pins, with everything they need (about 20 MB).
# On that machine:  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#                   export PYTHONPATH=/tmp/site
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
mapfile -t PINS < <(grep -E '^(papermill|ipykernel|nbval|pytest)==' requirements.txt)
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$DEST" "${PINS[@]}" 2>&1 | { grep -v "is neither a file nor a directory" || true; }
echo "$(ls "$DEST"/*.whl | wc -l) wheels ($(du -sh "$DEST" | cut -f1)) in $DEST for ${PINS[*]}"
