#!/usr/bin/env bash
# The README's test command: install the test needs (Chromium, PostgreSQL, the locked Python packages in .venv), run
# the whole suite. With PLAYGROUND_NEWEST=1 (scripts/test-newest.sh) the packages are instead the newest releases that
# requirements-test.txt's ranges allow, in .venv-newest, so tomorrow's releases can be tried before the lock moves.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: Chromium (browser tests) and PostgreSQL, whose binaries tests/test_postgres.py runs
# a throwaway server with (Debian keeps them in /usr/lib/postgresql/VERSION/bin, off PATH).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${PLAYGROUND_NEWEST:-0}" = 1 ]; then
  venv=.venv-newest
  install=(--upgrade --upgrade-strategy eager -r requirements-test.txt)
else
  venv=.venv
  # Exact versions with hashes (scripts/lock.sh): what CI tested is what every machine gets.
  install=(-r requirements-test.lock)
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q "${install[@]}"
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
print("testing with", ", ".join(f"{name} {version(name)}" for name in
      ("torch", "transformers", "tokenizers", "gradio", "plotly", "networkx", "sqlalchemy", "alembic", "psycopg",
       "numpy", "optuna")))
PY
# The code's shape before its behaviour: lint (rules in pyproject.toml) and the layers of playground/ (import-linter).
"$venv/bin/ruff" check .
"$venv/bin/lint-imports" --no-cache
exec "$venv/bin/python" -m pytest -p no:cacheprovider --durations=15 "$@"
