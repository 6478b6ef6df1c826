#!/usr/bin/env bash
# The README's "run the tests" command: lint, type-check, then the whole pytest suite against a real Redis
# (REDIS_URL, else a local server on 127.0.0.1:6379, else an embedded one). Extra arguments go to pytest.
source "$(dirname "$0")/bootstrap.sh"
echo "== ruff" >&2
ruff check service workers tests scripts
ruff format --check service workers tests scripts
echo "== mypy --strict" >&2
mypy
echo "== pytest" >&2
exec pytest "$@"
