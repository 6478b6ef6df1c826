#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml's ranges (run after changing a dependency, or to take
# upgrades): requirements.lock (runtime + the build backend; the Dockerfile installs it) and
# requirements-test.lock (the same pins plus the test extra; scripts/bootstrap.sh and so CI install it).
# pip-tools runs from a throwaway venv, never from the project's own dependencies.
# Extra arguments go to both pip-compile runs, e.g. `--upgrade` or `--upgrade-package redis`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
TOOL="$(mktemp -d "${TMPDIR:-/tmp}/bcwebhooks-lock.XXXXXX")"
trap 'rm -rf "$TOOL"' EXIT

"$PYTHON" -m venv "$TOOL"
"$TOOL/bin/python" -m pip install --quiet "pip-tools>=7.4,<8"
compile() {
  "$TOOL/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --all-build-deps --strip-extras \
    --no-emit-index-url --no-emit-find-links --no-emit-trusted-host "$@"
}
cd "$ROOT"
compile --output-file requirements.lock "${@}" pyproject.toml
compile --extra test --constraint requirements.lock --output-file requirements-test.lock "${@}" pyproject.toml
echo "bcwebhooks: wrote requirements.lock and requirements-test.lock; commit both" >&2
