"""The workers' Prometheus metrics, served on BCWEBHOOKS_METRICS_PORT (default 9191) for every process.

Built on Dramatiq's own Prometheus middleware (`dramatiq.middleware.prometheus`): it counts messages per
queue and actor (`dramatiq_messages_total`, `..._errors_total`, `..._duration_milliseconds`, ...) in
prometheus-client's multiprocess mode, and its fork process serves them. `worker_metrics()` keeps all of that
and swaps in our own fork function, which also serves:
- counted by the worker processes (multiprocess files, summed over processes):
  `bcwebhooks_events_processed_total{family,outcome}`, `bcwebhooks_event_latency_seconds` (received →
  delivered) and `bcwebhooks_api_requests_total{status}`;
- read from Redis at each scrape, so every process agrees (service/pipeline_state.py):
  `bcwebhooks_queue_depth{queue}`, `bcwebhooks_events_pending`, `bcwebhooks_dead_letters`,
  `bcwebhooks_api_quota_remaining{store}`, `bcwebhooks_hooks_inactive{store}` and
  `bcwebhooks_incidents_open{kind}`.

Multiprocess mode needs PROMETHEUS_MULTIPROC_DIR (and Dramatiq's `dramatiq_prom_db`, the same directory)
set before the worker processes start: `bcwebhooks worker` does that (service/worker_process.py).
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import dramatiq
import redis
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.bigcommerce.webhook_scopes import OTHER_FAMILY, family_of
from service.incidents import count_open_by_kind
from service.logs import configure_logging
from service.metrics import multiprocess_mode
from service.pipeline_state import (
    MINUTE_MS,
    add_delivered,
    api_budgets,
    dead_letters,
    hook_health,
    latency_slot,
    now_ms,
    pending_events,
    queue_depths,
)
from service.redis_connection import sync_client
from service.settings import load_settings
from workers.budget import ApiBudget
from workers.events import ProcessedEvent
from workers.ledger import event_id_of

DELIVERED, FAILED, DEAD_LETTERED, DEFERRED = "delivered", "failed", "dead_lettered", "deferred"
# Received → delivered: tens of milliseconds when healthy; retries and quota waits take minutes.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
DEFAULT_TALLY_INTERVAL_SECONDS = 1.0
# Status codes the API answers with; anything else is counted by its class (2xx, 3xx, 4xx, 5xx).
KNOWN_STATUSES = frozenset({200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504})

log = structlog.get_logger("bcwebhooks.metrics")


class EventMetrics:
    """What the worker processes count themselves.

    Parameters:
      registry: where the metrics are registered (in multiprocess mode the values go to files too).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.processed = Counter(
            "bcwebhooks_events_processed",
            "Event processing outcomes by scope family: delivered, failed (to be retried), dead_lettered, "
            "deferred (waiting out the API quota), superseded and duplicate (refused by the version fence), "
            "backfilled (delivered by a backfill).",
            ["family", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "bcwebhooks_event_latency_seconds",
            "Seconds from the receiver's acceptance of a callback to its delivery (stream and handlers).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.api_requests = Counter(
            "bcwebhooks_api_requests",
            "BigCommerce API responses the workers received, by status code.",
            ["status"],
            registry=registry,
        )
        self.tally: DeliveryTally | None = None

    def delivered(self, event: ProcessedEvent) -> None:
        """Count a delivered event and its latency (and tally it for the dashboard, once configured)."""
        family = family_of(event.scope)
        latency_ms = max(0, now_ms() - event.received_at_ms)
        self.processed.labels(family, DELIVERED).inc()
        self.latency.observe(latency_ms / 1000)
        if self.tally is not None:
            self.tally.add(family, latency_ms)

    def tally_to(self, client: redis.Redis) -> None:
        """Tally deliveries per minute in this Redis too (what the dashboard's chart and latency read)."""
        if self.tally is None:
            self.tally = DeliveryTally(client)
        else:
            self.tally.client = client

    def outcome(self, scope: str, outcome: str) -> None:
        """Count an attempt that did not deliver."""
        self.processed.labels(family_of(scope), outcome).inc()

    def api_response(self, status_code: int) -> None:
        """Count one API response."""
        label = str(status_code) if status_code in KNOWN_STATUSES else f"{status_code // 100}xx"
        self.api_requests.labels(label).inc()


class DeliveryTally:
    """Delivered events per minute, family and latency slot (service/pipeline_state.py), added to Redis
    by a background thread once a second, one pipeline per flush: no Redis call per event.

    Parameters:
      client: Redis (the broker's server).
      interval: seconds between flushes.

    A flush that fails keeps its counts for the next one. Counts of the last second are lost if the
    process dies: they feed a chart, not the delivery guarantee.
    """

    def __init__(self, client: redis.Redis, interval: float = DEFAULT_TALLY_INTERVAL_SECONDS) -> None:
        self.client = client
        self.interval = interval
        self._counts: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, family: str, latency_ms: int) -> None:
        """Tally one delivery now."""
        minute = now_ms() // MINUTE_MS
        with self._lock:
            for field in (f"family:{family}", f"latency:{latency_slot(latency_ms)}"):
                self._counts[(minute, field)] = self._counts.get((minute, field), 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bcwebhooks-tally", daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def flush(self) -> None:
        """Add what was tallied since the last flush to Redis."""
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return
        try:
            add_delivered(self.client, counts)
        except (redis.RedisError, OSError) as error:
            with self._lock:
                for key, n in counts.items():
                    self._counts[key] = self._counts.get(key, 0) + n
            log.warning("metrics.tally_failed", error=f"{type(error).__name__}: {error}")

    def _run(self) -> None:
        while True:
            time.sleep(self.interval)
            self.flush()


@functools.cache
def event_metrics() -> EventMetrics:
    """This process's EventMetrics, made on first use (after PROMETHEUS_MULTIPROC_DIR is in place)."""
    return EventMetrics(CollectorRegistry())


class CountingBudget:
    """The shared API budget, counting every response it learns from.

    Parameters:
      budget: the store's ApiBudget.
      metrics: where responses are counted.
    """

    def __init__(self, budget: ApiBudget, metrics: EventMetrics) -> None:
        self.budget = budget
        self.metrics = metrics

    def acquire(self) -> float:
        """As ApiBudget.acquire."""
        return self.budget.acquire()

    def observe(self, status_code: int, headers: Mapping[str, str]) -> None:
        """Count the response, then let the budget learn from it."""
        self.metrics.api_response(status_code)
        self.budget.observe(status_code, headers)


class EventOutcomes(dramatiq.Middleware):
    """Counts event attempts that did not deliver (delivered ones are counted where they are delivered).

    Add it before Retries, as DeadLetters is: it then sees whether the message failed for good.
    """

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Count a failed attempt, a dead letter or a quota wait."""
        if exception is None or event_id_of(message) is None:
            return
        envelope = message.args[0].get("envelope")
        scope = str(envelope.get("scope", "")) if isinstance(envelope, dict) else OTHER_FAMILY
        if isinstance(exception, dramatiq.Retry):
            outcome = DEFERRED
        else:
            outcome = DEAD_LETTERED if message.failed else FAILED
        event_metrics().outcome(scope, outcome)


def worker_metrics() -> dramatiq.Middleware:
    """Dramatiq's Prometheus middleware, served by our fork process (its metrics plus ours).

    Imported here, not at the top: importing Dramatiq's module creates its multiprocess directory.
    """
    from dramatiq.middleware.prometheus import Prometheus

    class WorkerMetrics(Prometheus):
        @property
        def forks(self) -> list[Any]:
            """The exposition server the Dramatiq CLI forks."""
            return [serve_worker_metrics]

    middleware: dramatiq.Middleware = WorkerMetrics()
    return middleware


class RedisStateCollector(Collector):
    """Gauges read from Redis at each scrape; nothing is exported when Redis does not answer.

    Parameters:
      client: Redis (the broker's server).
      stores: the stores whose API budget is exported; None: the installed stores (app mode).
    """

    def __init__(self, client: redis.Redis, stores: list[str] | None) -> None:
        self.client = client
        self.stores = stores

    def collect(self) -> Iterator[Metric]:
        """The pipeline's state now."""
        try:
            families = list(self._families())
        except (redis.RedisError, OSError) as error:
            log.warning("metrics.redis_unavailable", error=f"{type(error).__name__}: {error}")
            return
        yield from families

    def _families(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "bcwebhooks_queue_depth",
            "Messages waiting per queue (<queue>.DQ: delayed retries).",
            labels=["queue"],
        )
        for queue, count in queue_depths(self.client).items():
            depth.add_metric([queue], count)
        yield depth
        yield GaugeMetricFamily(
            "bcwebhooks_events_pending",
            "Events acknowledged and not yet delivered or dead-lettered (the delivery ledger).",
            value=pending_events(self.client),
        )
        yield GaugeMetricFamily(
            "bcwebhooks_dead_letters",
            "Dead letters waiting to be replayed or purged.",
            value=dead_letters(self.client),
        )
        quota = GaugeMetricFamily(
            "bcwebhooks_api_quota_remaining",
            "API requests left in the store's current window, as the API last reported.",
            labels=["store"],
        )
        now = now_ms()
        for budget in api_budgets(self.client, self.stores):
            remaining = budget.remaining(now)
            if remaining is not None:
                quota.add_metric([budget.store], remaining)
        yield quota
        inactive = GaugeMetricFamily(
            "bcwebhooks_hooks_inactive",
            "The store's hooks found inactive at the hook monitor's last check (no samples before it runs).",
            labels=["store"],
        )
        for health in hook_health(self.client):
            inactive.add_metric([health.store], health.inactive)
        yield inactive
        incidents = GaugeMetricFamily(
            "bcwebhooks_incidents_open",
            "Open incidents by kind: hooks deactivated or missing, blocked domains, deliveryException "
            "reports, the receiver's blocklist risk (`bcwebhooks incidents`).",
            labels=["kind"],
        )
        for kind, count in count_open_by_kind(self.client).items():
            incidents.add_metric([kind], count)
        yield incidents


def metrics_registry(client: redis.Redis, stores: list[str] | None) -> CollectorRegistry:
    """Every worker process's counts (multiprocess files) and the Redis gauges, in one registry."""
    registry = CollectorRegistry()
    if multiprocess_mode():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
    else:
        registry.register(_SingleProcess(event_metrics))
    registry.register(RedisStateCollector(client, stores))
    return registry


class _SingleProcess(Collector):
    """This process's own EventMetrics, when no multiprocess directory is in use."""

    def __init__(self, metrics: Any) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self.metrics()
        for metric in (metrics.processed, metrics.latency, metrics.api_requests):
            yield from metric.collect()


def serve_worker_metrics() -> int:
    """The fork process: serve /metrics on BCWEBHOOKS_METRICS_HOST:BCWEBHOOKS_METRICS_PORT until stopped."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    redis_url = settings.resolved_redis_url(os.environ)
    if not redis_url or settings.metrics_port == 0:
        return 0
    client = sync_client(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        server, thread = start_http_server(
            settings.metrics_port,
            settings.metrics_host,
            registry=metrics_registry(client, None if settings.app_mode else [settings.single_store_hash]),
        )
    except OSError as error:
        log.error(
            "metrics.not_served",
            address=f"{settings.metrics_host}:{settings.metrics_port}",
            error=f"{error.strerror}: set BCWEBHOOKS_METRICS_PORT to a free port (0: no worker metrics)",
        )
        return 0
    log.info("metrics.serving", url=f"http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    try:
        while thread.is_alive():  # until Dramatiq's SIGTERM handler exits this process
            thread.join(1.0)
    finally:
        server.shutdown()
    return 0
