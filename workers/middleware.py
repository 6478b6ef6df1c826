"""Dramatiq middleware: remember why a message was dead-lettered (Redis keeps only the payload)."""

from __future__ import annotations

import json
import time
from typing import Any

import dramatiq
import redis
import structlog

DLQ_REASONS_KEY = "bcwebhooks:dlq:reasons"

log = structlog.get_logger("bcwebhooks.worker")


class DeadLetterReasons(dramatiq.Middleware):
    """Records the final error of every failed message in a Redis hash keyed by message id.

    Parameters:
      client: Redis client on the broker's server.

    Add it before Retries (`broker.add_middleware(m, before=Retries)`): `after_process_message` runs in
    reverse order, so it then sees the verdict Retries reached.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Store the reason when Retries (or `throws`) decided the message fails for good."""
        if not message.failed or exception is None:
            return
        callback = message.args[0] if message.args else {}
        envelope = callback.get("envelope", {}) if isinstance(callback, dict) else {}
        reason = {
            "error": f"{type(exception).__name__}: {exception}",
            "retries": message.options.get("retries", 0),
            "scope": envelope.get("scope"),
            "event_id": callback.get("event_id") if isinstance(callback, dict) else None,
            "failed_at": int(time.time()),
        }
        self.client.hset(DLQ_REASONS_KEY, message.message_id, json.dumps(reason))
        log.error("callback.dead_lettered", **reason)
