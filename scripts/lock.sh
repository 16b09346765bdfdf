#!/usr/bin/env bash
# Refresh the locks from the ranges: `bash scripts/lock.sh` after changing requirements*.txt keeps every pin the
# ranges still allow; `bash scripts/lock.sh --upgrade` moves every package to the newest release they allow (run the
# whole suite on it before committing, as with any upgrade).
#
# requirements-test.lock pins everything the tests install (requirements-test.txt, which includes requirements.txt),
# with hashes; requirements.lock pins the app alone, solved under the test lock so that the two never disagree.
# They are for this project's machines: Python 3.11 on x86_64 Linux, where /opt/wheels holds the CPU build of torch
# (torch==2.13.0+cpu, hashed like every other file; the lock names /opt/wheels so pip finds it there, and PyPI's
# torch 2.13.0 would be a CUDA build that brings several GB of nvidia-* packages). Elsewhere pip finds
# torch==2.13.0+cpu on PyTorch's CPU index (--extra-index-url https://download.pytorch.org/whl/cpu), or install
# requirements.txt's ranges instead.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9  # uv pip compile: the resolver and hasher; kept in its own venv, out of the app's
[ -x .venv-lock/bin/python ] || python3 -m venv .venv-lock
.venv-lock/bin/python -m pip install -q "uv==$UV_VERSION"

compile() {  # compile OUTPUT INPUT [uv options]
  local out=$1 in=$2
  shift 2
  .venv-lock/bin/uv pip compile "$in" -o "$out" --quiet --generate-hashes \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --find-links /opt/wheels --emit-find-links \
    --custom-compile-command "bash scripts/lock.sh" "$@"
}

compile requirements-test.lock requirements-test.txt "$@"
compile requirements.lock requirements.txt -c requirements-test.lock "$@"
echo "locked: $(grep -c '^[A-Za-z0-9]' requirements-test.lock) packages for the tests," \
  "$(grep -c '^[A-Za-z0-9]' requirements.lock) for the app"
