"""The only place that builds the Dramatiq broker and makes it global, before any actor is imported."""

from __future__ import annotations

import os
from collections.abc import Mapping

import dramatiq
import redis
from dramatiq.middleware import Retries

from service.bigcommerce import ApiClient, StoreApi
from service.logs import configure_logging
from service.metrics import MULTIPROC_DIR_ENV
from service.redis_connection import sync_client
from service.settings import DEFAULT_DEDUP_WINDOW_SECONDS, Settings, load_settings
from service.stores import stores_from_settings
from workers.budget import ApiBudget
from workers.coalescing import Coalescer
from workers.consumer_watch import ConsumerWatch
from workers.context import set_context
from workers.handlers import REGISTRY, load_handler_modules
from workers.ledger import DEFAULT_SWEEP_INTERVAL_SECONDS, DeliveryLedger
from workers.metrics import CountingBudget, EventOutcomes, event_metrics, worker_metrics
from workers.middleware import BackfillIntaking, DeadLetters, LedgerTracking, QuotaWaits, Reconciling
from workers.monitor_command import monitoring_middleware
from workers.outputs import Forwarding, OutputsError, StreamOutput, load_outputs
from workers.outputs.declaration import DeclaredOutput
from workers.processing import WorkerContext
from workers.redis_broker import ResilientRedisBroker
from workers.store_contexts import (
    WORKER_API_MAX_ATTEMPTS,
    WORKER_API_MAX_BUDGET_WAIT_SECONDS,
    WORKER_API_MAX_RATE_LIMIT_WAITS,
    StoreContexts,
)

# A SIGKILLed worker's messages are requeued by another worker's maintenance pass once its heartbeat is
# older than HEARTBEAT_TIMEOUT_MS. Dramatiq's defaults (60 s, 0.1 % of dispatch calls) measured ~8 minutes
# here; 20 s and 5 % bring it under a minute. Heartbeats come from every dispatch call, including the delay-
# queue consumer's polling, so a long task does not look dead unless the GIL is held for 20 s.
HEARTBEAT_TIMEOUT_MS = 20_000
MAINTENANCE_CHANCE = 50_000  # per million dispatch calls
# A stalled Redis fails a call after this long (redis-py 8 would wait 5 s, longer than a blocking poll).
REDIS_SOCKET_TIMEOUT_SECONDS = 10.0


def build_broker(
    redis_url: str,
    max_retries: int = 8,
    min_backoff_ms: int = 2_000,
    sweep_interval_seconds: float = DEFAULT_SWEEP_INTERVAL_SECONDS,
) -> ResilientRedisBroker:
    """A Redis broker on `redis_url` with our retry policy and the delivery ledger's middleware."""
    client = redis_client(redis_url)
    broker = ResilientRedisBroker(  # type: ignore[no-untyped-call]
        client=client, heartbeat_timeout=HEARTBEAT_TIMEOUT_MS, maintenance_chance=MAINTENANCE_CHANCE
    )
    for middleware in list(broker.middleware):
        if isinstance(middleware, Retries):
            middleware.max_retries = max_retries
            middleware.min_backoff = min_backoff_ms
    ledger = DeliveryLedger(client, DEFAULT_DEDUP_WINDOW_SECONDS)
    broker.add_middleware(DeadLetters(ledger, client), before=Retries)
    broker.add_middleware(EventOutcomes(), before=Retries)
    broker.add_middleware(QuotaWaits())
    broker.add_middleware(LedgerTracking(ledger))
    broker.add_middleware(Reconciling(ledger, sweep_interval_seconds))
    broker.add_middleware(BackfillIntaking(ledger))
    broker.add_middleware(ConsumerWatch())
    return broker


def redis_client(redis_url: str) -> redis.Redis:
    """A client for the workers' and the broker's Redis calls (any URL form of service/redis_connection.py):
    timeouts, so that a stalled server fails a step."""
    return sync_client(
        redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


def build_context(
    settings: Settings, redis_url: str, environ: Mapping[str, str] | None = None
) -> WorkerContext:
    """The API client, Redis client, outputs and handlers a worker process uses; `environ` holds the
    secrets the outputs file names."""
    try:
        declared_outputs = load_outputs(settings.outputs_file, environ or {})
    except OutputsError as error:
        raise SystemExit(f"configuration error: {error}") from None
    if settings.app_mode:
        return build_app_context(settings, redis_url, declared_outputs)
    if settings.access_token is None:
        raise SystemExit("BIGCOMMERCE_ACCESS_TOKEN: not set (workers fetch each event's record with it)")
    store_hash = settings.single_store_hash
    load_handler_modules(settings.handler_modules)
    client = redis_client(redis_url)
    metrics = event_metrics()
    metrics.tally_to(client)
    budget = CountingBudget(ApiBudget(client, store_hash, settings.api_reserve_share), metrics)
    api_client = ApiClient(
        settings.api_url,
        store_hash,
        settings.access_token.get_secret_value(),
        budget=budget,
        max_attempts=WORKER_API_MAX_ATTEMPTS,
        max_rate_limit_waits=WORKER_API_MAX_RATE_LIMIT_WAITS,
        max_budget_wait_seconds=WORKER_API_MAX_BUDGET_WAIT_SECONDS,
    )
    return WorkerContext(
        api=StoreApi(api_client),
        redis=client,
        output=StreamOutput(client, settings.stream_name, settings.stream_maxlen),
        handlers=REGISTRY,
        store_hash=store_hash,
        done_ttl_seconds=settings.dedup_window_seconds,
        ledger=DeliveryLedger(client, settings.dedup_window_seconds),
        forwarding=Forwarding.build(declared_outputs, client),
        coalescer=(
            Coalescer(client, store_hash, settings.coalesce_window_ms, settings.coalesce_threshold)
            if settings.coalesce_window_ms > 0
            else None
        ),
    )


def build_app_context(
    settings: Settings, redis_url: str, declared_outputs: tuple[DeclaredOutput, ...] = ()
) -> WorkerContext:
    """App mode: a context with no store of its own; each event gets its store's (store_contexts.py)."""
    load_handler_modules(settings.handler_modules)
    client = redis_client(redis_url)
    event_metrics().tally_to(client)
    base = WorkerContext(
        api=None,
        redis=client,
        output=StreamOutput(client, settings.stream_name, settings.stream_maxlen),
        handlers=REGISTRY,
        store_hash="",
        done_ttl_seconds=settings.dedup_window_seconds,
        ledger=DeliveryLedger(client, settings.dedup_window_seconds),
        forwarding=Forwarding.build(declared_outputs, client),
    )
    base.stores = StoreContexts(
        base=base,
        stores=stores_from_settings(settings, client),
        api_url=settings.api_url,
        reserve_share=settings.api_reserve_share,
        coalesce_window_ms=settings.coalesce_window_ms,
        coalesce_threshold=settings.coalesce_threshold,
        hooks_file=settings.hooks_file,
        hooks_allow_http=settings.hooks_allow_http,
        environ=dict(os.environ),
    )
    return base


def setup_broker() -> None:
    """Set up logging, broker and worker context; the Dramatiq CLI calls it before importing actors."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    redis_url = settings.resolved_redis_url(os.environ)
    if not redis_url:
        raise SystemExit("REDIS_URL is not set; start workers with `bcwebhooks worker` for an embedded Redis")
    broker = build_broker(redis_url, settings.max_retries, settings.min_backoff_ms)
    if settings.metrics_port and os.environ.get(MULTIPROC_DIR_ENV):
        # Dramatiq's Prometheus middleware, served with ours on BCWEBHOOKS_METRICS_PORT (workers/metrics.py);
        # `bcwebhooks worker` sets the multiprocess directory up.
        broker.add_middleware(worker_metrics())
    if settings.monitor_interval > 0:
        broker.add_middleware(monitoring_middleware(settings))  # one of the processes runs passes (a lock)
    dramatiq.set_broker(broker)
    set_context(build_context(settings, redis_url, os.environ))
