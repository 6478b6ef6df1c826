"""Actors: thin shells around plain functions, bound to the broker that workers.broker set."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog

from service.bigcommerce import AccessDenied, MissingScope, RateLimited, Unauthorized
from service.events import (
    ACTOR_NAME,
    APP_ACTOR_NAME,
    BACKFILL_ACTOR_NAME,
    BACKFILL_QUEUE_NAME,
    CATALOG_ACTOR_NAME,
    CATALOG_BULK_ACTOR_NAME,
    CATALOG_BULK_QUEUE_NAME,
    CATALOG_QUEUE_NAME,
    QUEUE_NAME,
    QUEUED_LEASE_MS,
    REPLAY_ACTOR_NAME,
    UNBATCHED_ACTOR_NAME,
    PersistedCallback,
    is_catalog_scope,
)
from workers import app_events, backfill, dlq
from workers.context import current_context
from workers.events import ProcessedEvent
from workers.ledger import (
    ACTOR_TIME_LIMIT_MS,
    FLUSH_ACTOR_NAME,
    FORWARD_ACTOR_NAME,
    FORWARD_QUEUE_NAME,
    flush_id,
    now_ms,
)
from workers.metrics import event_metrics
from workers.outputs import DestinationBusy, DestinationRejected, ForwardError, UnknownDestination, forward
from workers.processing import WorkerContext, process, process_batch
from workers.resolvers import rule_for
from workers.store_contexts import (
    StoreUninstalled,
    context_for,
    dead_letter_uninstalled,
    uninstalled_meanwhile,
)

log = structlog.get_logger("bcwebhooks.worker")

# A token that is invalid or lacks a scope, or a handler calling outside its declared access, will not heal
# by retrying: dead-letter at once with the reason.
PERMANENT_ERRORS = (Unauthorized, MissingScope, AccessDenied)
# Nor will a destination's 4xx, or an output that is no longer declared.
PERMANENT_FORWARD_ERRORS = (DestinationRejected, UnknownDestination)
# A forward whose destination has every slot taken comes back after this long (ms, picked at random).
SLOT_WAIT_MS = (1_000, 3_000)


def process_callback(callback: PersistedCallback) -> None:
    """Resolve one persisted callback to its record, then run the outputs and handlers."""
    context = context_for(callback, current_context())  # app mode: the store's own; None: uninstalled
    # A parked event is claimed by its batch, which skips it if it was already delivered.
    if context is not None and not park_for_batch(callback, context) and claimed(callback, context):
        process_alone(callback, context)


def process_unbatched(callback: PersistedCallback) -> None:
    """Process one catalog callback on its own, never parked (a failed batch hands its events here)."""
    context = context_for(callback, current_context())
    if context is not None and claimed(callback, context):
        process_alone(callback, context)


def handle_app_event(callback: PersistedCallback) -> None:
    """App mode: a store installed the app (apply hooks.toml to it) or uninstalled it (dead-letter its
    pending events)."""
    app_events.handle_app_event(callback, current_context())


def claimed(callback: PersistedCallback, context: WorkerContext) -> bool:
    """Start on an event (extending its lease); False when it already left the ledger (nothing to do)."""
    if context.ledger.claim(callback["event_id"]):
        return True
    log.info("callback.skipped", event_id=callback["event_id"], reason="already delivered or dead-lettered")
    return False


def process_alone(callback: PersistedCallback, context: WorkerContext) -> None:
    """Fetch and deliver one callback; a spent quota goes back to the broker to wait."""
    try:
        event = process(callback, context)
    except RateLimited as error:
        # The store's quota is spent even after the client's own waits: come back when it resets.
        raise dramatiq.Retry(delay=error.retry_after_ms) from error
    except PERMANENT_ERRORS as error:
        if uninstalled_meanwhile(callback, context):
            # The app was uninstalled while this event was being fetched: its token was revoked with it.
            dead_letter_uninstalled(callback, context)
            return
        log.error("callback.failed", event_id=callback["event_id"], error=str(error))
        raise
    if event is not None:
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
    # The flush comes after the window; past the lease, the reconciler enqueues the event again.
    if coalescer.add(rule.resource_type, callback, now_ms() + coalescer.window_ms + QUEUED_LEASE_MS):
        schedule_flush(rule.resource_type, coalescer.window_ms, context)
    return True


def schedule_flush(resource_type: str, window_ms: int, context: WorkerContext) -> None:
    """Send the flush of the parked events of a type, in the ledger first so that it cannot be lost.

    In app mode the flush names its store (a keyword argument; the ledger identifies it by its arguments).
    """
    kwargs = {"store_hash": context.store_hash} if context.stores is not None else {}
    message = flush_batch_actor.message_with_options(args=(resource_type, uuid.uuid4().hex), kwargs=kwargs)
    context.ledger.open(flush_id(resource_type, message.args[1]), message, window_ms + QUEUED_LEASE_MS)
    flush_batch_actor.broker.enqueue(message, delay=window_ms)


def flush_batch(resource_type: str, token: str, store_hash: str | None = None) -> None:
    """Resolve every parked event of a type with batch fetches and deliver each one."""
    context = current_context()
    if context.stores is not None and store_hash is not None:
        try:
            context = context.stores.for_store(store_hash)
        except StoreUninstalled:
            drain_uninstalled(resource_type, token, store_hash, context)
            return
    coalescer = context.coalescer
    if coalescer is None:
        raise RuntimeError("flush_batch needs a coalescer in the worker context")
    if not context.ledger.claim(flush_id(resource_type, token)):
        log.info("batch.skipped", resource_type=resource_type, reason="this flush already ran")
        return
    handed_over: list[bool] = []

    def hand_over() -> None:
        # Events parked since this flush's take get the next flush, a whole window after this fetch.
        if not handed_over:
            handed_over.append(True)
            if coalescer.release(resource_type):
                schedule_flush(resource_type, coalescer.window_ms, context)

    try:
        outcome = process_batch(coalescer.take(resource_type, token), context, fetched=hand_over)
    except RateLimited as error:
        raise dramatiq.Retry(delay=error.retry_after_ms) from error
    finally:
        hand_over()  # however this flush ends
    for callback in outcome.unbatched:
        process_unbatched_actor.send(callback)
    coalescer.done(resource_type, token)
    context.ledger.forget(flush_id(resource_type, token))
    for event in outcome.delivered:
        log_processed(event)
    log.info(
        "batch.flushed",
        resource_type=resource_type,
        events=len(outcome.delivered),
        unbatched=len(outcome.unbatched),
    )


def forward_event(destination: str, event_id: str, scope: str, body: str) -> None:
    """POST one processed event to one HTTP output; a busy destination is waited for on the broker."""
    context = current_context()
    try:
        forward(context.forwarding.outputs, context.ledger, destination, event_id, body)
    except DestinationBusy as error:
        # Not a failed attempt (QuotaWaits uncounts it), and no worker thread waits for the slot.
        raise dramatiq.Retry(delay=random.randint(*SLOT_WAIT_MS)) from error  # noqa: S311 (jitter)
    except ForwardError as error:
        log.warning(
            "forward.failed", destination=destination, event_id=event_id, scope=scope, error=str(error)
        )
        raise


def drain_uninstalled(resource_type: str, token: str, store_hash: str, context: WorkerContext) -> None:
    """The flush of a store that uninstalled the app: dead-letter its parked events, fetch nothing."""
    assert context.stores is not None
    coalescer = context.stores.coalescer(store_hash)
    while coalescer is not None:
        for callback in coalescer.take(resource_type, token):
            dead_letter_uninstalled(callback, context)
        coalescer.done(resource_type, token)
        if not coalescer.release(resource_type):  # True: more were parked meanwhile, drain them too
            break
    context.ledger.forget(flush_id(resource_type, token))


def backfill_family(gap_id: str, family: str) -> None:
    """Sweep the next slice of one family of a gap (workers/backfill.py); a spent quota waits."""
    try:
        backfill.run_slice(gap_id, family, current_context(), backfill_family_actor.broker)
    except RateLimited as error:
        raise dramatiq.Retry(delay=error.retry_after_ms) from error


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
    event_metrics().delivered(event)


def replay_dead_letters(letter_ids: list[str]) -> None:
    """Replay the named dead letters, as `bcwebhooks dlq replay ID` does (the dashboard asks for this)."""
    context = current_context()
    wanted = set(letter_ids)
    letters = [letter for letter in dlq.list_dead_letters(context.redis) if letter.id in wanted]
    replayed = dlq.replay(context.redis, replay_dead_letters_actor.broker, letters)
    log.info("dlq.replayed", requested=len(wanted), replayed=replayed)


# Lower numbers run first when a worker holds messages of several queues: a storming store's catalog events
# (the bulk lane, service/lanes.py) after every other store's, and the HTTP outputs' forwards (events already
# processed, no API calls) between the two.
# Backfills come last of all: they recover the past, and must not delay what is arriving now.
MAIN_PRIORITY, CATALOG_PRIORITY, FORWARD_PRIORITY, CATALOG_BULK_PRIORITY = 0, 100, 150, 200
BACKFILL_PRIORITY = 250


def _actor(function: Callable[..., None], name: str, queue_name: str, priority: int) -> Any:
    """Declare one of our actors: permanent errors dead-letter at once; every attempt has a time limit."""
    return dramatiq.actor(
        actor_name=name,
        queue_name=queue_name,
        priority=priority,
        throws=PERMANENT_ERRORS,
        time_limit=ACTOR_TIME_LIMIT_MS,
    )(function)


process_callback_actor = _actor(process_callback, ACTOR_NAME, QUEUE_NAME, MAIN_PRIORITY)
process_catalog_callback_actor = _actor(
    process_callback, CATALOG_ACTOR_NAME, CATALOG_QUEUE_NAME, CATALOG_PRIORITY
)
process_catalog_bulk_actor = _actor(
    process_callback, CATALOG_BULK_ACTOR_NAME, CATALOG_BULK_QUEUE_NAME, CATALOG_BULK_PRIORITY
)
process_unbatched_actor = _actor(
    process_unbatched, UNBATCHED_ACTOR_NAME, CATALOG_QUEUE_NAME, CATALOG_PRIORITY
)
flush_batch_actor = _actor(flush_batch, FLUSH_ACTOR_NAME, CATALOG_QUEUE_NAME, CATALOG_PRIORITY)
forward_event_actor = dramatiq.actor(
    actor_name=FORWARD_ACTOR_NAME,
    queue_name=FORWARD_QUEUE_NAME,
    priority=FORWARD_PRIORITY,
    throws=PERMANENT_FORWARD_ERRORS,
    time_limit=ACTOR_TIME_LIMIT_MS,
)(forward_event)
replay_dead_letters_actor = _actor(replay_dead_letters, REPLAY_ACTOR_NAME, QUEUE_NAME, MAIN_PRIORITY)
backfill_family_actor = _actor(backfill_family, BACKFILL_ACTOR_NAME, BACKFILL_QUEUE_NAME, BACKFILL_PRIORITY)
handle_app_event_actor = _actor(handle_app_event, APP_ACTOR_NAME, QUEUE_NAME, MAIN_PRIORITY)
