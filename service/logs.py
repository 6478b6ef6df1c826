"""structlog configuration, done once at start-up: JSON lines in production, console lines in dev."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from service.settings import LogFormat

REDACTED = "[redacted]"
# Keys whose values must never reach a log line, whatever the caller passes.
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "access_token",
        "client_secret",
        "header_secret",
        "headers",
        "password",
        "secret",
        "signature",
        "token",
        "webhook-signature",
        "webhook_signature",
        "x-auth-token",
    }
)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of every sensitive key with a marker."""
    for key in event_dict.keys() & SENSITIVE_KEYS:
        event_dict[key] = REDACTED
    return event_dict


def render_json(event_dict: Any, **kwargs: Any) -> bytes:
    """orjson for the one-line-per-request cost; the standard library for values orjson refuses."""
    try:
        return orjson.dumps(event_dict, default=str)
    except TypeError:
        return json.dumps(event_dict, default=str).encode()


def configure_logging(log_format: LogFormat, level: str = "info") -> None:
    """Configure structlog and the standard library loggers (uvicorn, dramatiq) for this process."""
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    use_console = log_format is LogFormat.CONSOLE or (log_format is LogFormat.AUTO and sys.stderr.isatty())
    binary_stderr = getattr(sys.stderr, "buffer", None)
    renderer: Any
    logger_factory: Any
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        logger_factory = structlog.WriteLoggerFactory(sys.stderr)
    elif binary_stderr is not None:
        renderer = structlog.processors.JSONRenderer(serializer=render_json)
        logger_factory = structlog.BytesLoggerFactory(binary_stderr)
    else:
        renderer = structlog.processors.JSONRenderer()
        logger_factory = structlog.WriteLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=max(numeric_level, logging.INFO), stream=sys.stderr, format="%(name)s %(message)s"
    )
    # One line per request is ours to write; httpx's own request lines would repeat URLs at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
