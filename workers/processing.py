"""Turn one persisted callback into a processed event: resolve, then output and handlers, each once."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import structlog

from service.bigcommerce import StoreApi
from service.events import PersistedCallback
from workers.coalescing import Coalescer
from workers.events import ProcessedEvent
from workers.handlers import HandlerRegistry
from workers.outputs import StreamOutput
from workers.resolvers import Resolution, fetch_batch, resolution_from_batch, resolve, rule_for

DONE_PREFIX = "bcwebhooks:done:"
STREAM_STEP = "output:stream"

log = structlog.get_logger("bcwebhooks.worker")
_unknown_scopes_logged: set[str] = set()


@dataclass
class WorkerContext:
    """What processing needs, built once per worker process by workers.broker.setup_broker."""

    api: StoreApi
    redis: redis.Redis
    output: StreamOutput
    handlers: HandlerRegistry
    store_hash: str
    done_ttl_seconds: int
    coalescer: Coalescer | None = None


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return time.time_ns() // 1_000_000


def build_event(callback: PersistedCallback, context: WorkerContext) -> ProcessedEvent:
    """Fetch the record behind a callback (API errors propagate to the actor)."""
    envelope = callback["envelope"]
    resolution = resolve(str(envelope["scope"]), envelope.get("data"), context.api.client)
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
    """Run the stream output, then every matching handler, skipping steps that succeeded on an earlier try.

    Returns the steps run now. A step that raises stops here; the actor's retry resumes after the last
    success.
    """
    steps: list[tuple[str, Callable[[], object]]] = [(STREAM_STEP, lambda: context.output.emit(event))]
    for registration in context.handlers.for_scope(event.scope):
        steps.append((registration.name, lambda r=registration: r.function(event, context.api)))  # type: ignore[misc]
    done_key = DONE_PREFIX + hashlib.sha256(event.event_id.encode()).hexdigest()
    done = {member.decode() for member in context.redis.smembers(done_key)}  # type: ignore[union-attr]
    ran = []
    for name, step in steps:
        if name in done:
            continue
        step()
        pipeline = context.redis.pipeline()
        pipeline.sadd(done_key, name)
        pipeline.expire(done_key, context.done_ttl_seconds)
        pipeline.execute()
        ran.append(name)
    return ran


def process(callback: PersistedCallback, context: WorkerContext) -> ProcessedEvent:
    """Resolve and deliver one callback; returns the processed event."""
    event = build_event(callback, context)
    deliver(event, context)
    return event


def process_batch(callbacks: list[PersistedCallback], context: WorkerContext) -> list[ProcessedEvent]:
    """Resolve callbacks of one batchable type with `id:in` fetches, then deliver each as its own event.

    A callback seen twice (a redelivered message) is delivered once; the done-sets make a retried batch
    skip what was already delivered.
    """
    unique = list({callback["event_id"]: callback for callback in callbacks}.values())
    if not unique:
        return []
    rule = rule_for(str(unique[0]["envelope"]["scope"]))
    if rule is None or rule.batch_path is None:
        raise ValueError("process_batch needs callbacks of a batchable scope")
    ids = [rule.resource_id(c["envelope"].get("data") or {}) for c in unique]
    found = fetch_batch(context.api.client, rule, [i for i in ids if i is not None])
    events = []
    for callback in unique:
        envelope = callback["envelope"]
        resolution = resolution_from_batch(str(envelope["scope"]), envelope.get("data"), found)
        event = event_from(callback, resolution, context)
        deliver(event, context)
        events.append(event)
    return events
