"""Several receivers and workers on one Redis (bench_faults.py's scale-out scenario), on real processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_faults

pytestmark = pytest.mark.e2e
EVENTS = 200
SETTLE_SECONDS = 120.0  # the delivery guarantee's two minutes after a fault


def test_two_receivers_and_two_workers_lose_and_duplicate_nothing_when_one_worker_is_killed(
    tmp_path: Path,
) -> None:
    options = bench_faults.Options(events=EVENTS, settle_seconds=SETTLE_SECONDS, seed=3, workdir=tmp_path)

    row = bench_faults.scenario_scale_out(options)

    # Every event went to both receivers at about the same moment; both answered 2xx.
    assert row.load.count(200, 299) == 2 * EVENTS, row.failures()
    assert row.once == EVENTS, row.failures()
    assert (row.lost, row.duplicated, row.server_errors) == (0, 0, 0), row.failures()
    assert row.failures() == []
