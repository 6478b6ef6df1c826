"""The fault suite's fast scenarios (scripts/bench_faults.py) as tests, on real processes over loopback.

Each scenario runs its own redis-server, sandbox, receiver and worker; an acknowledged callback must end in
the stream exactly once or in the dead letters, and no input may get a 5xx. The worker SIGKILL and the Redis
SIGKILL + AOF restart run here inside forward-outage; alone, and the Redis stall, only in the benchmark
(each waits out a 20 s heartbeat or an 8 s stall, too long for every CI run).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

# scripts/ is not a package: its directory goes on the path, as when the script runs.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_faults

pytestmark = pytest.mark.e2e
EVENTS = 200
# The delivery guarantee allows two minutes after the fault for the last event to arrive.
SETTLE_SECONDS = 120.0


@pytest.fixture
def options(tmp_path: Path) -> bench_faults.Options:
    return bench_faults.Options(
        events=EVENTS, fuzz_inputs=1000, settle_seconds=SETTLE_SECONDS, seed=7, workdir=tmp_path
    )


def assert_every_acknowledged_event_accounted_for(row: bench_faults.Row) -> None:
    assert (row.lost, row.duplicated, row.server_errors) == (0, 0, 0), row.failures()
    assert row.failures() == []


def test_baseline_delivers_every_event_once(options: bench_faults.Options) -> None:
    row = bench_faults.scenario_baseline(options)

    assert row.load.count(200, 299) == EVENTS, row.failures()
    assert row.once == EVENTS, row.failures()
    assert_every_acknowledged_event_accounted_for(row)


def test_every_event_delivered_three_times_out_of_order_is_processed_once(
    options: bench_faults.Options,
) -> None:
    row = bench_faults.scenario_dup_storm(options)

    assert row.load.count(200, 299) == 3 * EVENTS, row.failures()
    assert row.once == EVENTS, row.failures()
    assert_every_acknowledged_event_accounted_for(row)


def test_a_poison_event_in_a_coalesced_storm_is_dead_lettered_alone(options: bench_faults.Options) -> None:
    row = bench_faults.scenario_poison(options)

    assert row.dead_lettered == 1, row.failures()
    assert row.once >= EVENTS - 1, row.failures()
    assert_every_acknowledged_event_accounted_for(row)


def test_fuzzed_inputs_get_no_5xx_and_nothing_accepted_is_left_unprocessed(
    options: bench_faults.Options,
) -> None:
    row = bench_faults.scenario_fuzz(options)

    assert row.load.count(200, 299) > 0 and row.load.count(400, 499) > 0
    assert row.load.count(500, 599) == 0, row.failures()
    assert_every_acknowledged_event_accounted_for(row)


def test_every_event_reaches_an_http_output_through_its_outage_a_worker_kill_and_a_redis_restart(
    options: bench_faults.Options,
) -> None:
    # Two faults in a row: a forward in the SIGKILLed worker's delay queue waits for its heartbeat to expire
    # (or its 60 s lease) before the Redis restart begins its own two minutes.
    options = dataclasses.replace(options, settle_seconds=2 * SETTLE_SECONDS)
    row = bench_faults.scenario_forward_outage(options)

    assert row.load.count(200, 299) == EVENTS, row.failures()
    assert row.once == EVENTS, row.failures()
    assert_every_acknowledged_event_accounted_for(row)
    assert f"forwards: {EVENTS}/{EVENTS} delivered and verified" in row.notes[-1]
