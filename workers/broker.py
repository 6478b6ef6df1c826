"""The only place that builds the Dramatiq broker and makes it global, before any actor is imported."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from service.logs import configure_logging
from service.settings import load_settings


def build_broker(redis_url: str) -> RedisBroker:
    """A Redis broker on `redis_url` with Dramatiq's default middleware."""
    broker: RedisBroker = RedisBroker(url=redis_url)  # type: ignore[no-untyped-call]
    return broker


def setup_broker() -> None:
    """Configure logging and set the global broker; called by the Dramatiq CLI as its broker argument."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    redis_url = settings.resolved_redis_url(os.environ)
    if not redis_url:
        raise SystemExit("REDIS_URL is not set; start workers with `bcwebhooks worker` for an embedded Redis")
    dramatiq.set_broker(build_broker(redis_url))
