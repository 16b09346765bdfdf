#!/usr/bin/env bash
# The README's test command: install the test needs (Chromium, Python packages in .venv), run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq chromium >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -r requirements-test.txt
exec .venv/bin/python -m pytest -p no:cacheprovider --durations=15 "$@"
