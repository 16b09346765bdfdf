#!/usr/bin/env bash
# The whole suite against the newest releases the ranges of requirements*.txt allow, in .venv-newest (not CI: it
# shows what a `bash scripts/lock.sh --upgrade` would bring before the lock takes it). Arguments go to pytest.
PLAYGROUND_NEWEST=1 exec bash "$(dirname "$0")/test.sh" "$@"
