"""Turn one persisted callback into a processed event: resolve, then output and handlers, each once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis
import structlog

from service.bigcommerce import RateLimited, StoreApi
from service.events import PersistedCallback
from workers.coalescing import Coalescer
from workers.events import ProcessedEvent
from workers.fence import FENCED, FenceMark, mark_for
from workers.handlers import HandlerRegistry
from workers.hook_exceptions import DELIVERY_EXCEPTION_SCOPE, REACTION_STEP, react_to_delivery_exception
from workers.ledger import PROCESSING_LEASE_MS, DeliveryLedger, done_key, now_ms
from workers.metrics import event_metrics
from workers.outputs import Forwarding, StreamOutput, forward_lease_deadline
from workers.resolvers import Resolution, Rule, fetch_batch, resolution_from_batch, resolve, rule_for

if TYPE_CHECKING:
    from workers.store_contexts import StoreContexts

STREAM_STEP = "output:stream"

log = structlog.get_logger("bcwebhooks.worker")
_unknown_scopes_logged: set[str] = set()


@dataclass
class WorkerContext:
    """What processing needs, built once per worker process by workers.broker.setup_broker.

    In app mode the process's context has no store (`api` None, `stores` set); each event is processed
    with its store's own context (`StoreContexts.for_store`): that store's token, budget and coalescing.
    """

    api: StoreApi | None
    redis: redis.Redis
    output: StreamOutput
    handlers: HandlerRegistry
    store_hash: str
    done_ttl_seconds: int
    ledger: DeliveryLedger
    coalescer: Coalescer | None = None
    forwarding: Forwarding = field(default_factory=Forwarding)
    stores: StoreContexts | None = None

    @property
    def store_api(self) -> StoreApi:
        """The API of this context's store (RuntimeError for an app-mode context with no store chosen)."""
        if self.api is None:
            raise RuntimeError("no store chosen: in app mode, process with StoreContexts.for_store(...)")
        return self.api


def build_event(callback: PersistedCallback, context: WorkerContext) -> ProcessedEvent:
    """Fetch the record behind a callback (API errors propagate to the actor)."""
    envelope = callback["envelope"]
    resolution = resolve(str(envelope["scope"]), envelope.get("data"), context.store_api.client)
    return event_from(callback, resolution, context)


def event_from(
    callback: PersistedCallback, resolution: Resolution | None, context: WorkerContext
) -> ProcessedEvent:
    """The processed event for a callback and what its resolution found."""
    envelope = callback["envelope"]
    scope = str(envelope["scope"])
    if resolution is None and scope not in _unknown_scopes_logged:
        _unknown_scopes_logged.add(scope)
        log.warning("scope.unknown", scope=scope, detail="delivered without a record")
    return ProcessedEvent(
        event_id=callback["event_id"],
        webhook_id=callback["webhook_id"],
        scope=scope,
        store_hash=str(envelope.get("producer", "")).removeprefix("stores/") or context.store_hash,
        resource_type=resolution.resource_type if resolution else None,
        resource_id=resolution.resource_id if resolution else None,
        record=resolution.record if resolution else None,
        deleted=resolution.deleted if resolution else False,
        envelope=dict(envelope),
        received_at_ms=callback["received_at_ms"],
        fetched_at_ms=now_ms(),
    )


def deliver(event: ProcessedEvent, context: WorkerContext) -> list[str]:
    """Run the stream output (which also enqueues the event's forwards to HTTP outputs), then every matching
    handler, skipping steps that succeeded on an earlier try; then finish the event in the ledger.

    Returns the steps run now. A step that raises stops here; the actor's retry resumes after the last
    success. The stream entry and its done mark are written in one step (at most one entry per event).
    """
    key = done_key(event.event_id)
    done = {member.decode() for member in context.redis.smembers(key)}  # type: ignore[union-attr]
    ran = []
    if STREAM_STEP not in done:
        emitted = context.output.emit_once(
            event,
            key,
            STREAM_STEP,
            context.done_ttl_seconds,
            works=context.forwarding.works_for(event),
            lease_deadline_ms=forward_lease_deadline(),
            fence=fence_mark(event),
        )
        if emitted is not None and emitted.startswith(FENCED + ":"):
            return finish_fenced(event, emitted.removeprefix(FENCED + ":"), context)
        if emitted is not None:
            ran.append(STREAM_STEP)
    elif FENCED in done:
        return finish_fenced(event, "fenced before", context)
    if event.scope == DELIVERY_EXCEPTION_SCOPE and REACTION_STEP not in done:
        # Built in, not a handler: BigCommerce reports it cannot deliver to us (an incident, maybe a pass).
        react_to_delivery_exception(event, context.redis)
        _mark_done(context, key, REACTION_STEP)
        ran.append(REACTION_STEP)
    for registration in context.handlers.for_scope(event.scope):
        if registration.name in done:
            continue
        registration.function(event, context.store_api.for_handler(registration.name, registration.access))
        _mark_done(context, key, registration.name)
        log.info("handler.ran", handler=registration.name, event_id=event.event_id, scope=event.scope)
        ran.append(registration.name)
    context.ledger.finish(event.event_id)
    return ran


def _mark_done(context: WorkerContext, key: str, step: str) -> None:
    pipeline = context.redis.pipeline()
    pipeline.sadd(key, step)
    pipeline.expire(key, context.done_ttl_seconds)
    pipeline.execute()


def fence_mark(event: ProcessedEvent) -> FenceMark | None:
    """The version fence's mark of an event's record (None: not fenced)."""
    return mark_for(event.store_hash, event.resource_type, event.resource_id, event.record, event.source)


def finish_fenced(event: ProcessedEvent, verdict: str, context: WorkerContext) -> list[str]:
    """An event the version fence refused (an older record than one delivered, or the same one again):
    finished in the ledger with no output and no handler run; logged and counted."""
    context.ledger.finish(event.event_id)
    log.info(
        "event.fenced",
        verdict=verdict,
        event_id=event.event_id,
        scope=event.scope,
        source=event.source,
        resource=f"{event.resource_type}:{event.resource_id}",
    )
    event_metrics().outcome(event.scope, verdict.replace(" ", "_"))
    return []


def process(callback: PersistedCallback, context: WorkerContext) -> ProcessedEvent | None:
    """Resolve and deliver one callback; returns the processed event, or None when the version fence
    refused it (finished as superseded or duplicate, already logged and counted)."""
    event = build_event(callback, context)
    if not deliver(event, context) and fenced(event, context):
        return None
    return event


def fenced(event: ProcessedEvent, context: WorkerContext) -> bool:
    """Whether the version fence refused the event (its done set says so)."""
    return bool(context.redis.sismember(done_key(event.event_id), FENCED))


@dataclass
class BatchOutcome:
    """What a batch flush delivered, and the callbacks that must be processed on their own."""

    delivered: list[ProcessedEvent]
    unbatched: list[PersistedCallback]


def process_batch(
    callbacks: list[PersistedCallback], context: WorkerContext, fetched: Callable[[], None] = lambda: None
) -> BatchOutcome:
    """Resolve callbacks of one batchable type with `id:in` fetches, then deliver each as its own event.

    One event's failure never holds back another: a callback whose id cannot be read, or whose delivery
    fails, is handed back in `unbatched` (to be processed, retried or dead-lettered alone), and so is every
    callback when the batch fetch itself fails. A rate limit propagates (the whole flush waits). Callbacks
    that already left the ledger (delivered by an earlier try, or a duplicate message) are skipped.
    `fetched` is called as soon as the batch fetch has answered.
    """
    unique = list({callback["event_id"]: callback for callback in callbacks}.values())
    live = context.ledger.extend([c["event_id"] for c in unique], PROCESSING_LEASE_MS)
    pending = [callback for callback, present in zip(unique, live, strict=True) if present]
    if not pending:
        return BatchOutcome([], [])
    rule = rule_for(str(pending[0]["envelope"]["scope"]))
    if rule is None or rule.batch_path is None:
        raise ValueError("process_batch needs callbacks of a batchable scope")
    readable, unbatched = _with_integer_ids(pending, rule)
    try:
        found = fetch_batch(context.store_api.client, rule, [resource_id for _, resource_id in readable])
        fetched()
    except RateLimited:
        raise
    except Exception as error:
        log.warning("batch.fetch_failed", error=f"{type(error).__name__}: {error}", events=len(pending))
        return BatchOutcome([], pending)
    delivered = []
    for callback, _ in readable:
        try:
            envelope = callback["envelope"]
            resolution = resolution_from_batch(str(envelope["scope"]), envelope.get("data"), found)
            event = event_from(callback, resolution, context)
            if not deliver(event, context) and fenced(event, context):
                continue  # finished as superseded or duplicate (logged and counted)
        except RateLimited:
            raise
        except Exception as error:
            log.warning(
                "batch.event_failed", event_id=callback["event_id"], error=f"{type(error).__name__}: {error}"
            )
            unbatched.append(callback)
            continue
        delivered.append(event)
    return BatchOutcome(delivered, unbatched)


def _with_integer_ids(
    callbacks: list[PersistedCallback], rule: Rule
) -> tuple[list[tuple[PersistedCallback, int]], list[PersistedCallback]]:
    """Split callbacks into those whose resource id reads as an integer and the others."""
    readable, unreadable = [], []
    for callback in callbacks:
        data = callback["envelope"].get("data")
        try:
            readable.append((callback, int(rule.resource_id(data if isinstance(data, dict) else {}))))
        except (TypeError, ValueError, KeyError):
            unreadable.append(callback)
    return readable, unreadable
