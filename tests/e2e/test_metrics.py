"""/metrics of the real `bcwebhooks serve` and `bcwebhooks worker` (several processes each), parsed with
prometheus-client's own parser: the counts are exactly what was sent and processed."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from service.pipeline_state import record_hook_health
from service.settings import DEFAULT_STREAM
from tests.e2e.processes import BCWEBHOOKS, START_TIMEOUT_SECONDS, Process, ready
from tests.helpers import HEADER_SECRET, STORE_HASH, encode, envelope, signed
from tests.servers import free_port, wait_for

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, by name and sorted labels; fails on anything the parser refuses."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value, 0 when it is absent (a counter not yet incremented)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def send(base: str, raw: bytes, headers: dict[str, str]) -> int:
    return httpx.post(f"{base}/webhooks/bigcommerce", content=raw, headers=headers).status_code


def callback(webhook_id: str | None = None, **overrides: Any) -> tuple[bytes, dict[str, str]]:
    raw = encode(envelope(data={"type": "order", "id": 104}, **overrides))
    return raw, {**signed(raw, webhook_id=webhook_id), "X-Webhook-Secret": HEADER_SECRET}


@pytest.mark.parametrize("workers", [1, 2])
def test_receiver_metrics_count_every_outcome_exactly_across_processes(
    workers: int,
    environ: dict[str, str],
    started: list[Process],
    tmp_path: Path,
) -> None:
    port = free_port()
    argv = [*BCWEBHOOKS, "serve", "--port", str(port), "--workers", str(workers)]
    started.append(Process(argv, environ, tmp_path / "serve.log"))
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: ready(f"{base}/readyz"), START_TIMEOUT_SECONDS, "the receiver to be ready")

    ids = [f"msg_{uuid.uuid4().hex}" for _ in range(7)]
    answers = [send(base, *callback(webhook_id)) for webhook_id in ids]  # accepted
    answers += [send(base, *callback(webhook_id)) for webhook_id in ids[:3]]  # duplicates
    raw, headers = callback()
    answers += [send(base, raw, {**headers, "webhook-signature": "v1,AAAA"}) for _ in range(2)]
    answers += [send(base, raw, {**headers, "X-Webhook-Secret": "wrong"}) for _ in range(4)]
    answers.append(send(base, raw, {**headers, "content-type": "text/plain"}))
    answers.append(send(base, *callback(producer="stores/otherstore")))

    assert answers == [200] * 10 + [401] * 6 + [415, 400]
    expected = {
        "accepted": 7,
        "duplicate": 3,
        "signature_mismatch": 2,
        "secret_header_mismatch": 4,
        "unsupported_media_type": 1,
        "wrong_store": 1,
    }

    def counted() -> dict[str, float]:
        samples = scrape(f"{base}/metrics")
        outcomes = {
            labels[0][1]: count
            for (name, labels), count in samples.items()
            if name == "bcwebhooks_callbacks_total" and count
        }
        acks = (
            value(samples, "bcwebhooks_ack_seconds_count"),
            value(samples, "bcwebhooks_ack_seconds_bucket", le="+Inf"),
        )
        return {**outcomes, "ack count": acks[0], "ack +Inf bucket": acks[1]}

    expected.update({"ack count": 10, "ack +Inf bucket": 10})
    # Each process hands its counts over within 50 ms of a request; then any process that answers a
    # scrape must report every process's counts, exactly.
    wait_for(lambda: counted() == expected, 10, "every callback to be counted")
    for _ in range(3 * workers):
        assert counted() == expected


def test_worker_metrics_count_processed_events_across_two_processes(
    environ: dict[str, str],
    sandbox_url: str,
    started: list[Process],
    tmp_path: Path,
    redis_client: redis.Redis,
) -> None:
    metrics_port, port = free_port(), free_port()
    env = {**environ, "BCWEBHOOKS_METRICS_PORT": str(metrics_port), "BCWEBHOOKS_MIN_BACKOFF_MS": "100"}
    serve = Process([*BCWEBHOOKS, "serve", "--port", str(port)], env, tmp_path / "serve.log")
    worker = Process([*BCWEBHOOKS, "worker", "--processes", "2", "--threads", "2"], env, tmp_path / "w.log")
    started.extend([serve, worker])
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: ready(f"{base}/readyz"), START_TIMEOUT_SECONDS, "the receiver to be ready")
    events = 8
    assert [send(base, *callback()) for _ in range(events)] == [200] * events
    wait_for(lambda: redis_client.xlen(DEFAULT_STREAM) == events, START_TIMEOUT_SECONDS, "the events")
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    wait_for(lambda: ready(metrics_url), START_TIMEOUT_SECONDS, "the workers' metrics endpoint")

    def settled() -> bool:
        # A process counts right after its stream write; poll until the last count has landed.
        samples = scrape(metrics_url)
        return value(samples, "bcwebhooks_event_latency_seconds_count") == events

    wait_for(settled, 10, "every delivery to be counted")
    samples = scrape(metrics_url)
    assert value(samples, "bcwebhooks_events_processed_total", family="order", outcome="delivered") == events
    assert value(samples, "bcwebhooks_events_processed_total", family="order", outcome="failed") == 0
    assert value(samples, "bcwebhooks_event_latency_seconds_bucket", le="+Inf") == events
    assert value(samples, "bcwebhooks_api_requests_total", status="200") >= events
    dramatiq_total = sum(count for (name, _), count in samples.items() if name == "dramatiq_messages_total")
    assert dramatiq_total == events
    assert value(samples, "bcwebhooks_queue_depth", queue="bcwebhooks.events") == 0
    assert value(samples, "bcwebhooks_dead_letters") == 0
    assert value(samples, "bcwebhooks_events_pending") == 0
    assert ("bcwebhooks_api_quota_remaining", (("store", STORE_HASH),)) in samples
    pids = {line for line in worker.output().splitlines() if "metrics.serving" in line}
    assert len(pids) == 1  # one exposition server for both processes

    # One event fails once (503) and is delivered on its retry; another lacks a scope (403): dead letter.
    fault(sandbox_url, 503)
    assert send(base, *callback()) == 200
    wait_for(lambda: redis_client.xlen(DEFAULT_STREAM) == events + 1, START_TIMEOUT_SECONDS, "the retry")
    fault(sandbox_url, 403)
    assert send(base, *callback()) == 200
    record_hook_health(redis_client, STORE_HASH, active=3, inactive=1, source="test")

    def outcome(samples: Samples, name: str) -> float:
        return value(samples, "bcwebhooks_events_processed_total", family="order", outcome=name)

    wait_for(lambda: outcome(scrape(metrics_url), "dead_lettered") == 1, START_TIMEOUT_SECONDS, "the count")
    samples = scrape(metrics_url)
    assert (outcome(samples, "failed"), outcome(samples, "delivered")) == (1, events + 1)
    assert value(samples, "bcwebhooks_api_requests_total", status="503") == 1
    assert value(samples, "bcwebhooks_api_requests_total", status="403") == 1
    assert value(samples, "bcwebhooks_dead_letters") == 1
    assert value(samples, "bcwebhooks_hooks_inactive", store=STORE_HASH) == 1


def fault(sandbox: str, status: int) -> None:
    """The sandbox answers `status` to the next orders call."""
    body = {"status": status, "count": 1, "path_prefix": "/v2/orders"}
    assert httpx.post(f"{sandbox}/_sandbox/faults", json=body).status_code in (200, 201)
