"""Actors: thin shells around plain functions, bound to the broker that workers.broker set."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import structlog

from service.events import ACTOR_NAME, QUEUE_NAME, PersistedCallback

log = structlog.get_logger("bcwebhooks.worker")


def describe_callback(callback: PersistedCallback) -> dict[str, Any]:
    """The fields every log line about a callback carries."""
    envelope = callback["envelope"]
    producer = str(envelope.get("producer", ""))
    return {
        "event_id": callback["event_id"],
        "webhook_id": callback["webhook_id"],
        "scope": envelope.get("scope"),
        "store": producer.removeprefix("stores/"),
    }


def process_callback(callback: PersistedCallback) -> None:
    """Process one persisted callback (for now: record that it reached a worker, with its queue latency)."""
    waited_ms = time.time_ns() // 1_000_000 - callback["received_at_ms"]
    log.info("callback.processed", queued_ms=waited_ms, **describe_callback(callback))


process_callback_actor = dramatiq.actor(actor_name=ACTOR_NAME, queue_name=QUEUE_NAME)(process_callback)
