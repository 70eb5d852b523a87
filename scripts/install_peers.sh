#!/usr/bin/env bash
# The optional peers of notebook 11 into .venv: FFmpeg's shared libraries for SPDL (apt-get), then requirements-peers.txt.
# The course runs and its tests pass without them; a peer that is missing is skipped with one line.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
FFMPEG=(libavcodec59 libavformat59 libavfilter8 libavdevice59 libswscale6)  # FFmpeg 5.1, Debian 12's
if ldconfig -p 2>/dev/null | grep -q "libavcodec\.so\.[0-9]"; then
  echo "== FFmpeg's shared libraries are present"
elif command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "== installing FFmpeg's shared libraries for SPDL (apt-get): ${FFMPEG[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${FFMPEG[@]}" >/dev/null
else
  echo "warning: no apt-get; install FFmpeg's shared libraries (libavcodec, libavformat, libavfilter, libswscale)" \
       "with your system's package manager, or SPDL is skipped" >&2
fi
echo "== installing requirements-peers.txt with $PY (DALI's wheel is about 420 MB)"
"$PY" -m pip install -q --disable-pip-version-check -r requirements-peers.txt
"$PY" -c "from helpers.timing.peers import LOADERS, missing
for name in LOADERS:
    if name != 'dataloader':
        print(missing(name) or f'{name}: ready')"
