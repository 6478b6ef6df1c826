"""Builders for callbacks and readers of Redis state, shared by the tests."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis

from service.events import QUEUE_NAMES
from service.queue import DRAMATIQ_NAMESPACE
from service.signatures import signed_headers

STORE_HASH = "teststore"
CLIENT_SECRET = "test-client-secret"
PREVIOUS_SECRET = "previous-client-secret"
HEADER_SECRET = "custom-header-secret-value"
QUEUE_KEYS = [f"{DRAMATIQ_NAMESPACE}:{name}" for name in QUEUE_NAMES]


def envelope(scope: str = "store/order/created", **overrides: Any) -> dict[str, Any]:
    """A callback body as BigCommerce documents it, with fields overridden or (value None) removed."""
    body: dict[str, Any] = {
        "scope": scope,
        "store_id": "1025646",
        "data": {"type": "order", "id": 250},
        "hash": uuid.uuid4().hex + "abcdefgh",
        "created_at": int(time.time()),
        "producer": f"stores/{STORE_HASH}",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def encode(body: dict[str, Any] | Any) -> bytes:
    """JSON bytes exactly as sent on the wire."""
    return json.dumps(body).encode()


def signed(
    raw: bytes,
    secret: str = CLIENT_SECRET,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Headers for `raw`, signed the Standard Webhooks way."""
    return signed_headers(
        secret,
        raw,
        webhook_id or f"msg_{uuid.uuid4().hex}",
        int(time.time()) if timestamp is None else timestamp,
    )


def queued_callbacks(client: redis.Redis) -> list[dict[str, Any]]:
    """The callbacks waiting in the Dramatiq queues, oldest first, decoded to the actor's argument."""
    callbacks = []
    for key in QUEUE_KEYS:
        ids = client.lrange(key, 0, -1)
        payloads = client.hmget(f"{key}.msgs", ids) if ids else []
        callbacks += [json.loads(payload)["args"][0] for payload in payloads]
    return sorted(callbacks, key=lambda callback: callback["received_at_ms"])


def stored_messages(client: redis.Redis) -> int:
    """How many messages Redis holds for the queues (queued or fetched but not yet acknowledged)."""
    return sum(int(client.hlen(f"{key}.msgs")) for key in QUEUE_KEYS)
