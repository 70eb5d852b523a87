#!/usr/bin/env bash
# The browser test drives Debian's Chromium through Playwright (no browser is downloaded): install it when missing.
set -uo pipefail
if [ -n "${CHROMIUM_PATH:-}" ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no chromium and no apt-get; the browser test will skip (set CHROMIUM_PATH to a Chrome or Chromium)" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "== installing Debian's chromium for the browser test (apt-get)"
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; }; then
  echo "warning: could not install chromium; the browser test will skip here and fail in CI" >&2
fi
