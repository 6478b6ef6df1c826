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
# The catalog events of a store in a catalog storm, served after every other catalog event (service/lanes.py).
CATALOG_BULK_QUEUE_NAME = "bcwebhooks.catalog.bulk"
CATALOG_BULK_ACTOR_NAME = "process_catalog_bulk_callback"
# A catalog callback processed on its own, never parked for a batch (what a failed batch falls back to).
UNBATCHED_ACTOR_NAME = "process_unbatched_callback"
# App mode: what happens to a store (installed, uninstalled) is persisted like a callback, with an internal
# scope no BigCommerce callback can carry (the receiver requires store/...), for this actor.
APP_ACTOR_NAME = "handle_app_event"
APP_SCOPE_PREFIX = "bcwebhooks/app/"
APP_INSTALLED_SCOPE = APP_SCOPE_PREFIX + "installed"
APP_UNINSTALLED_SCOPE = APP_SCOPE_PREFIX + "uninstalled"
QUEUE_NAMES = (QUEUE_NAME, CATALOG_QUEUE_NAME, CATALOG_BULK_QUEUE_NAME)
# Backfills of gaps (workers/backfill.py): each family of each gap is swept a slice at a time on this queue,
# served after every other (lowest priority), through the store's shared API budget.
BACKFILL_QUEUE_NAME = "bcwebhooks.backfill"
BACKFILL_ACTOR_NAME = "backfill_family"
# The HTTP outputs' forwards (workers/outputs/forwards.py): a queue of their own, never delaying events.
FORWARD_QUEUE_NAME = "bcwebhooks.forwards"
# The delivery ledger (workers/ledger.py): every accepted event until it is processed or dead-lettered.
# The receiver adds each event to it in the same atomic step as the enqueue.
LEDGER_KEY = "bcwebhooks:ledger"  # zset: ledger id -> lease deadline (ms)
LEDGER_MESSAGES_KEY = "bcwebhooks:ledger:messages"  # hash: ledger id -> the event's latest Dramatiq message
# App mode: the stores that have the app installed now (service/stores.py); the receiver's script checks it.
INSTALLED_STORES_KEY = "bcwebhooks:stores:installed"
# How long a queued event may wait before the reconciler checks that its message still exists.
QUEUED_LEASE_MS = 60_000
# Dead letters (workers/ledger.py writes them; service/deadletters.py reads them for `dlq` and the dashboard).
DEAD_KEY = "bcwebhooks:dead"  # hash: ledger id -> the dead letter (JSON)
DEAD_INDEX_KEY = "bcwebhooks:dead:index"  # zset: ledger id -> when it was dead-lettered (ms)
DLQ_REASONS_KEY = "bcwebhooks:dlq:reasons"  # hash: message id -> why a message that carries no event failed
DRAMATIQ_NAMESPACE = "dramatiq"
# The workers' actor that replays dead letters by id (the dashboard's replay button enqueues it).
REPLAY_ACTOR_NAME = "replay_dead_letters"
# Each store's shared API budget (workers/budget.py): <prefix><store>:state is a hash of what the API said.
BUDGET_KEY_PREFIX = "bcwebhooks:budget:"
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


def ledger_id(event_id: str) -> str:
    """The fixed-length id an event has in the dedup marks, the ledger and the dead letters."""
    return hashlib.sha256(event_id.encode()).hexdigest()


def is_catalog_scope(scope: str) -> bool:
    """Catalog scopes go to the lower-priority queue; orders, carts, customers and the rest do not."""
    return scope.startswith(CATALOG_SCOPE_PREFIXES)


def route(callback: PersistedCallback, bulk: bool = False) -> tuple[str, str]:
    """The queue and actor for a callback: catalog scopes on theirs (the bulk lane's when `bulk`: its store
    is in a catalog storm), everything else on the main one (app events with their own actor)."""
    scope = str(callback["envelope"].get("scope", ""))
    if is_catalog_scope(scope):
        return (
            (CATALOG_BULK_QUEUE_NAME, CATALOG_BULK_ACTOR_NAME)
            if bulk
            else (CATALOG_QUEUE_NAME, CATALOG_ACTOR_NAME)
        )
    if scope.startswith(APP_SCOPE_PREFIX):
        return QUEUE_NAME, APP_ACTOR_NAME
    return QUEUE_NAME, ACTOR_NAME


def build_message(callback: PersistedCallback) -> Message[Any]:
    """The Dramatiq message that asks a worker to process one persisted callback, on its scope's queue."""
    queue, actor = route(callback)
    return Message(queue_name=queue, actor_name=actor, args=(callback,), kwargs={}, options={})


def encode_message(
    callback: PersistedCallback, message_id: str, timestamp_ms: int, bulk: bool = False
) -> tuple[str, bytes]:
    """The queue name and the bytes Dramatiq's RedisBroker would store for `build_message(callback)`
    (on the bulk lane with `bulk`).

    The receiver's hot path: the JSON that `Message.encode()` writes (same keys, same order, compact),
    without building the dataclass per request, serialized by orjson (falling back to the standard
    library for integers beyond 64 bits, the one thing orjson refuses that the envelope parser accepts).
    It cannot raise for an accepted envelope: the parser refuses NaN, Infinity and numbers that overflow a
    float (where the two would write different values), lone surrogates (which neither could encode to
    UTF-8) and nesting beyond MAX_DEPTH (far below either's recursion limit). `message_id` doubles as the
    `redis_message_id` option, the key the message is stored under. A test decodes it with Dramatiq.
    """
    queue, actor = route(callback, bulk)
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
        # orjson refuses integers beyond 64 bits, which json.loads produces and json.dumps writes back.
        return queue, json.dumps(data, separators=(",", ":")).encode()
