"""The contract between the receiver and the workers: which queue, which actor, what payload."""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypedDict

import orjson
from dramatiq import Message

from service.envelopes import Envelope

QUEUE_NAME = "bcwebhooks.events"
ACTOR_NAME = "process_callback"
# Catalog events (bulk imports fire one per record) wait on their own queue, served after the main one.
CATALOG_QUEUE_NAME = "bcwebhooks.catalog"
CATALOG_ACTOR_NAME = "process_catalog_callback"
QUEUE_NAMES = (QUEUE_NAME, CATALOG_QUEUE_NAME)
CATALOG_SCOPE_PREFIXES = (
    "store/product/",
    "store/sku/",
    "store/category/",
    "store/brand/",
    "store/priceList",
    "store/modifier/",
    "store/option/",
    "store/metafield/",
    "store/inventory/",
)


class PersistedCallback(TypedDict):
    """What the receiver stores for one accepted callback; the single argument of the actor."""

    event_id: str
    webhook_id: str | None
    received_at_ms: int
    envelope: dict[str, Any]


def event_id_for(envelope: Envelope, webhook_id: str | None, raw: bytes) -> str:
    """The identity used to drop duplicates: the webhook id, else scope+hash+created_at, else the body."""
    if webhook_id:
        return f"id:{webhook_id}"
    if envelope.hash is not None and envelope.created_at is not None:
        return f"hash:{envelope.scope}:{envelope.hash}:{envelope.created_at}"
    return "body:" + hashlib.sha256(raw).hexdigest()


def is_catalog_scope(scope: str) -> bool:
    """Catalog scopes go to the lower-priority queue; orders, carts, customers and the rest do not."""
    return scope.startswith(CATALOG_SCOPE_PREFIXES)


def route(callback: PersistedCallback) -> tuple[str, str]:
    """The queue and actor for a callback: catalog scopes on theirs, everything else on the main one."""
    if is_catalog_scope(str(callback["envelope"].get("scope", ""))):
        return CATALOG_QUEUE_NAME, CATALOG_ACTOR_NAME
    return QUEUE_NAME, ACTOR_NAME


def build_message(callback: PersistedCallback) -> Message[Any]:
    """The Dramatiq message that asks a worker to process one persisted callback, on its scope's queue."""
    queue, actor = route(callback)
    return Message(queue_name=queue, actor_name=actor, args=(callback,), kwargs={}, options={})


def encode_message(callback: PersistedCallback, message_id: str, timestamp_ms: int) -> tuple[str, bytes]:
    """The queue name and the bytes Dramatiq's RedisBroker would store for `build_message(callback)`.

    The receiver's hot path: the JSON that `Message.encode()` writes (same keys, same order, compact),
    without building the dataclass per request, serialized by orjson (falling back to the standard
    library for values orjson refuses). The envelope parser rejects NaN and Infinity, the one place where
    the two would write different values. `message_id` doubles as the
    `redis_message_id` option, the key the message is stored under. A test decodes it with Dramatiq.
    """
    queue, actor = route(callback)
    data = {
        "queue_name": queue,
        "actor_name": actor,
        "args": [callback],
        "kwargs": {},
        "options": {"redis_message_id": message_id},
        "message_id": message_id,
        "message_timestamp": timestamp_ms,
    }
    try:
        return queue, orjson.dumps(data)
    except TypeError:
        # orjson refuses what json.loads may have produced: integers beyond 64 bits, lone surrogates.
        return queue, json.dumps(data, separators=(",", ":")).encode()
