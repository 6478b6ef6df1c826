#!/usr/bin/env bash
# The README's "run the tests" command: lint, type-check, then the whole pytest suite against a redis-server
# of its own (BCWEBHOOKS_TEST_REDIS_URL points it elsewhere; never REDIS_URL). Extra arguments go to pytest.
source "$(dirname "$0")/bootstrap.sh"
echo "== ruff" >&2
ruff check service workers tests scripts
ruff format --check service workers tests scripts
echo "== mypy --strict" >&2
mypy
echo "== pytest" >&2
exec pytest "$@"
