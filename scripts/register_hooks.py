"""Register the declared hooks: the same tool as `bcwebhooks hooks` (plan | apply | status).

python scripts/register_hooks.py plan --file hooks.toml
python scripts/register_hooks.py apply [--prune]
"""

from __future__ import annotations

import sys

from service.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["hooks", *sys.argv[1:]]))
