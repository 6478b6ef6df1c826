"""The only place that builds the Dramatiq broker and makes it global, before any actor is imported."""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries

from service.bigcommerce import ApiClient, StoreApi
from service.logs import configure_logging
from service.settings import Settings, load_settings
from workers.budget import ApiBudget
from workers.coalescing import Coalescer
from workers.context import set_context
from workers.handlers import REGISTRY, load_handler_modules
from workers.middleware import DeadLetterReasons
from workers.outputs import StreamOutput
from workers.processing import WorkerContext

# A SIGKILLed worker's messages are requeued by another worker's maintenance pass once its heartbeat is
# older than HEARTBEAT_TIMEOUT_MS. Dramatiq's defaults (60 s, 0.1 % of dispatch calls) measured ~8 minutes
# here; 20 s and 5 % bring it under a minute. Heartbeats come from every dispatch call, including the delay-
# queue consumer's polling, so a long task does not look dead unless the GIL is held for 20 s.
HEARTBEAT_TIMEOUT_MS = 20_000
MAINTENANCE_CHANCE = 50_000  # per million dispatch calls


def build_broker(redis_url: str, max_retries: int = 8, min_backoff_ms: int = 2_000) -> RedisBroker:
    """A Redis broker on `redis_url` with our retry policy and dead-letter reasons."""
    broker: RedisBroker = RedisBroker(  # type: ignore[no-untyped-call]
        url=redis_url, heartbeat_timeout=HEARTBEAT_TIMEOUT_MS, maintenance_chance=MAINTENANCE_CHANCE
    )
    for middleware in list(broker.middleware):
        if isinstance(middleware, Retries):
            middleware.max_retries = max_retries
            middleware.min_backoff = min_backoff_ms
    broker.add_middleware(DeadLetterReasons(redis.Redis.from_url(redis_url)), before=Retries)
    return broker


def build_context(settings: Settings, redis_url: str) -> WorkerContext:
    """The API client, Redis client, stream output and handlers a worker process uses."""
    if settings.access_token is None:
        raise SystemExit("BIGCOMMERCE_ACCESS_TOKEN: not set (workers fetch each event's record with it)")
    load_handler_modules(settings.handler_modules)
    redis_client = redis.Redis.from_url(redis_url)
    budget = ApiBudget(redis_client, settings.store_hash, settings.api_reserve_share)
    client = ApiClient(
        settings.api_url, settings.store_hash, settings.access_token.get_secret_value(), budget=budget
    )
    return WorkerContext(
        api=StoreApi(client),
        redis=redis_client,
        output=StreamOutput(redis_client, settings.stream_name, settings.stream_maxlen),
        handlers=REGISTRY,
        store_hash=settings.store_hash,
        done_ttl_seconds=settings.dedup_window_seconds,
        coalescer=(
            Coalescer(
                redis_client, settings.store_hash, settings.coalesce_window_ms, settings.coalesce_threshold
            )
            if settings.coalesce_window_ms > 0
            else None
        ),
    )


def setup_broker() -> None:
    """Set up logging, broker and worker context; the Dramatiq CLI calls it before importing actors."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    redis_url = settings.resolved_redis_url(os.environ)
    if not redis_url:
        raise SystemExit("REDIS_URL is not set; start workers with `bcwebhooks worker` for an embedded Redis")
    dramatiq.set_broker(build_broker(redis_url, settings.max_retries, settings.min_backoff_ms))
    set_context(build_context(settings, redis_url))
