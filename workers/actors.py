"""Actors: thin shells around plain functions, bound to the broker that workers.broker set."""

from __future__ import annotations

import uuid

import dramatiq
import structlog

from service.bigcommerce import MissingScope, RateLimited, Unauthorized
from service.events import (
    ACTOR_NAME,
    CATALOG_ACTOR_NAME,
    CATALOG_QUEUE_NAME,
    QUEUE_NAME,
    PersistedCallback,
    is_catalog_scope,
)
from workers.context import current_context
from workers.events import ProcessedEvent
from workers.processing import WorkerContext, now_ms, process, process_batch
from workers.resolvers import rule_for

log = structlog.get_logger("bcwebhooks.worker")

# A token that is invalid or lacks a scope will not heal by retrying: dead-letter at once with the reason.
PERMANENT_ERRORS = (Unauthorized, MissingScope)


def process_callback(callback: PersistedCallback) -> None:
    """Resolve one persisted callback to its record, then run the outputs and handlers."""
    context = current_context()
    if park_for_batch(callback, context):
        return
    try:
        event = process(callback, context)
    except RateLimited as error:
        # The store's quota is spent even after the client's own waits: come back when it resets.
        raise dramatiq.Retry(delay=error.retry_after_ms) from error
    except PERMANENT_ERRORS as error:
        log.error("callback.failed", event_id=callback["event_id"], error=str(error))
        raise
    log_processed(event)


def park_for_batch(callback: PersistedCallback, context: WorkerContext) -> bool:
    """During a catalog storm, park a batchable event for the next flush instead of fetching it alone."""
    scope = str(callback["envelope"].get("scope", ""))
    rule = rule_for(scope)
    coalescer = context.coalescer
    if coalescer is None or rule is None or rule.batch_path is None or not is_catalog_scope(scope):
        return False
    if not coalescer.storming(rule.resource_type):
        return False
    if coalescer.add(rule.resource_type, callback):
        flush_batch_actor.send_with_options(
            args=(rule.resource_type, uuid.uuid4().hex), delay=coalescer.window_ms
        )
    return True


def flush_batch(resource_type: str, token: str) -> None:
    """Resolve every parked event of a type with batch fetches and deliver each one."""
    context = current_context()
    coalescer = context.coalescer
    if coalescer is None:
        raise RuntimeError("flush_batch needs a coalescer in the worker context")
    try:
        events = process_batch(coalescer.take(resource_type, token), context)
    except RateLimited as error:
        raise dramatiq.Retry(delay=error.retry_after_ms) from error
    coalescer.done(resource_type, token)
    for event in events:
        log_processed(event)
    log.info("batch.flushed", resource_type=resource_type, events=len(events))


def log_processed(event: ProcessedEvent) -> None:
    """The canonical line for one processed event."""
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
flush_batch_actor = dramatiq.actor(
    actor_name="flush_batch",
    queue_name=CATALOG_QUEUE_NAME,
    priority=CATALOG_PRIORITY,
    throws=PERMANENT_ERRORS,
)(flush_batch)
