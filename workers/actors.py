"""Actors: thin shells around plain functions, bound to the broker that workers.broker set."""

from __future__ import annotations

import dramatiq
import structlog

from service.bigcommerce import MissingScope, RateLimited, Unauthorized
from service.events import ACTOR_NAME, CATALOG_ACTOR_NAME, CATALOG_QUEUE_NAME, QUEUE_NAME, PersistedCallback
from workers.context import current_context
from workers.processing import now_ms, process

log = structlog.get_logger("bcwebhooks.worker")

# A token that is invalid or lacks a scope will not heal by retrying: dead-letter at once with the reason.
PERMANENT_ERRORS = (Unauthorized, MissingScope)


def process_callback(callback: PersistedCallback) -> None:
    """Resolve one persisted callback to its record, then run the outputs and handlers."""
    try:
        event = process(callback, current_context())
    except RateLimited as error:
        # The store's quota is spent even after the client's own waits: come back when it resets.
        raise dramatiq.Retry(delay=error.retry_after_ms) from error
    except PERMANENT_ERRORS as error:
        log.error("callback.failed", event_id=callback["event_id"], error=str(error))
        raise
    log.info(
        "callback.processed",
        event_id=event.event_id,
        webhook_id=event.webhook_id,
        scope=event.scope,
        store=event.store_hash,
        resource=f"{event.resource_type}:{event.resource_id}",
        summary=event.summary(),
        latency_ms=now_ms() - event.received_at_ms,
    )


# Lower numbers run first when a worker holds messages of both queues.
MAIN_PRIORITY, CATALOG_PRIORITY = 0, 100

process_callback_actor = dramatiq.actor(
    actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, priority=MAIN_PRIORITY, throws=PERMANENT_ERRORS
)(process_callback)
process_catalog_callback_actor = dramatiq.actor(
    actor_name=CATALOG_ACTOR_NAME,
    queue_name=CATALOG_QUEUE_NAME,
    priority=CATALOG_PRIORITY,
    throws=PERMANENT_ERRORS,
)(process_callback)
