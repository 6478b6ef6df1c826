"""bench_backfill.py at a tiny size: real sandbox, receiver and worker processes; an outage deactivates the
hooks, the gap is backfilled, and every changed record is recovered once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_backfill.py"


def test_a_hook_outage_is_backfilled_completely_with_nothing_twice() -> None:
    argv = [sys.executable, str(SCRIPT), "--products", "60", "--orders", "10", "--customers", "5"]
    argv += ["--time-scale", "40000", "--poll-seconds", "0.5", "--timeout", "60"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=SCRIPT.parent)

    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "products            60         60           60" in result.stdout
    assert "429s: 0   events delivered twice for one record version: 0" in result.stdout
