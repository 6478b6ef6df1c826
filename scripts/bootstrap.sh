# Sourced by scripts/dev.sh and scripts/test.sh: create .venv the first time, and create it afresh whenever
# requirements-test.lock or pyproject.toml changes. It installs exactly the locked versions (with their
# hashes), then the project itself with --no-deps: CI and every developer run the same dependency set.
# Needs only Python 3.11+ (PYTHON overrides python3). Regenerate the lock with `bash scripts/lock.sh`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BCWEBHOOKS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bcwebhooks: needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
LOCK="$ROOT/requirements-test.lock"
stamp="$VENV/.bcwebhooks-installed"
wanted="$(cat "$ROOT/pyproject.toml" "$LOCK" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "bcwebhooks: setting up $VENV from $(basename "$LOCK") (first run, or it or pyproject.toml changed)..." >&2
  "$PYTHON" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install --quiet --require-hashes -r "$LOCK"
  # The build backend is in the lock too, so the project builds without fetching anything unpinned.
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT"
  echo "$wanted" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
