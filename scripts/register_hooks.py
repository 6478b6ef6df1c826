"""Register the declared hooks: the same tool as `bcwebhooks hooks` (plan | apply | status).

python scripts/register_hooks.py plan --file hooks.toml
python scripts/register_hooks.py apply [--prune]

Run with a Python that lacks the project's dependencies, it runs itself again with the virtualenv's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = Path(os.environ.get("BCWEBHOOKS_VENV") or ROOT / ".venv") / "bin" / "python"


def _main() -> int:
    try:
        from service.cli import main
    except ModuleNotFoundError:
        if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
            # A fixed interpreter path and our own file: nothing from the user reaches a shell.
            os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, *sys.argv[1:]])  # noqa: S606
        print(
            "register_hooks.py: the project is not installed here; run `bash scripts/dev.sh --help` once "
            "(it creates .venv) or `pip install -e .`",
            file=sys.stderr,
        )
        return 2
    return main(["hooks", *sys.argv[1:]])


if __name__ == "__main__":
    raise SystemExit(_main())
