"""The receiver's early warning: BigCommerce's blocklist ratio computed from our own answers."""

from __future__ import annotations

import redis
import structlog
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient

from service.early_warning import ASSUMED_TIMEOUT_SECONDS, BlocklistRisk, SuccessWindow
from service.incidents import BLOCKLIST_RISK, open_incidents
from tests.helpers import encode, envelope, signed
from tests.servers import wait_for


class Clock:
    """Synthetic monotonic time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_no_ratio_before_100_requests_then_the_share_of_successes() -> None:
    window = SuccessWindow()
    for n in range(99):
        window.record(n >= 11, 10.0)
    assert window.ratio() is None
    window.record(True, 10.0)
    assert window.ratio() == 0.89


def test_answers_leave_the_window_after_two_minutes_a_bucket_at_a_time() -> None:
    window = SuccessWindow(window_seconds=120, bucket_seconds=5)
    for _ in range(50):
        window.record(False, 0.0)
    for _ in range(100):
        window.record(True, 60.0)
    assert (window.ok, window.failed) == (100, 50)
    window.advance(119.9)
    assert window.failed == 50  # still inside
    window.advance(120.0)
    assert (window.ok, window.failed) == (100, 0)
    window.advance(1000.0)  # long idle: everything left
    assert window.total == 0


def test_a_ratio_below_95_percent_warns_once_per_30_seconds_and_recovers() -> None:
    clock = Clock()
    risks: list[tuple[float, int]] = []
    recovered: list[bool] = []
    risk = BlocklistRisk(
        CollectorRegistry(),
        on_risk=lambda ratio, n: risks.append((ratio, n)),
        on_recovered=lambda: recovered.append(True),
        clock=clock,
    )
    with structlog.testing.capture_logs() as logs:
        for _ in range(94):
            risk.answered(True, 0.002)
        for _ in range(6):
            risk.answered(False, 0.0)  # 94 % of 100
        for _ in range(5):
            risk.answered(False, 0.0)
        clock.now += 31
        risk.answered(False, 0.0)

    warnings = [line for line in logs if line["event"] == "receiver.blocklist_risk"]
    assert len(warnings) == 2 and len(risks) == 2
    assert risks[0] == (0.94, 100) and warnings[0]["blocklisted_below"] == 0.9
    assert risk.gauge._value.get() < 0.95
    clock.now += 121  # the window is empty again: nothing to judge
    assert risk.refresh() == 1.0 and recovered == [True]


def test_an_answer_slower_than_bigcommerce_waits_counts_as_a_failure() -> None:
    clock = Clock()
    risk = BlocklistRisk(CollectorRegistry(), clock=clock)
    for _ in range(90):
        risk.answered(True, 0.01)
    for _ in range(10):
        risk.answered(True, ASSUMED_TIMEOUT_SECONDS + 1)
    assert risk.window.ratio() == 0.9 and risk.at_risk


def test_the_receiver_counts_its_refusals_records_an_incident_and_shows_the_gauge(
    client: TestClient, redis_client: redis.Redis
) -> None:
    for n in range(100):
        # The last 10: signed (so BigCommerce's), but no valid callback: refused with 400. A bad signature
        # would not count, as its sender is unknown.
        body = encode(envelope(hash=f"h{n}")) if n < 90 else b'{"scope": 1}'
        client.post("/webhooks/bigcommerce", content=body, headers=signed(body))

    wait_for(lambda: bool(open_incidents(redis_client)), 5, "the blocklist_risk incident")
    [incident] = open_incidents(redis_client)
    metrics = client.get("/metrics").text

    assert incident.kind == BLOCKLIST_RISK and incident.store == "" and "90.0%" in incident.detail
    assert "bcwebhooks_receiver_success_ratio 0.9" in metrics
