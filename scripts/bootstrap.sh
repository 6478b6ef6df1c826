# Sourced by scripts/dev.sh and scripts/test.sh: create .venv and install the project the first time,
# and again whenever pyproject.toml changes. Needs only Python 3.11+ (PYTHON overrides python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BCWEBHOOKS_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bcwebhooks: needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
stamp="$VENV/.bcwebhooks-installed"
wanted="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "bcwebhooks: setting up $VENV (first run, or pyproject.toml changed)..." >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]"
  echo "$wanted" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
