"""ASGI factory for uvicorn: `uvicorn --factory service.asgi:create_app_from_environment`."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from service.app import create_app
from service.logs import configure_logging
from service.settings import load_settings


def create_app_from_environment() -> Starlette:
    """Load settings from the environment and build the app; needs REDIS_URL or a resolved URL."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    redis_url = settings.resolved_redis_url(os.environ)
    if not redis_url:
        raise SystemExit(
            "REDIS_URL is not set; start the receiver with `bcwebhooks serve` for an embedded Redis"
        )
    return create_app(settings, redis_url)
