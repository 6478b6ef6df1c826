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


# App mode (service/oauth.py, service/stores.py): the app's credentials and two encryption keys.
APP_CLIENT_ID = "test-app-client-id"
# An app's client secret is long; PyJWT warns (an error under pytest) about HMAC keys under 32 bytes.
APP_CLIENT_SECRET = "test-app-client-secret-0123456789abcdef0123456789"
APP_URL = "https://app.example.com"
ENCRYPTION_KEY = "Khx6aVaSFcc6sXJN9Gf6sfQ5WYwLeB9kqb8heXHf96U="
OLD_ENCRYPTION_KEY = "VjcPQGYOaByLAoa5S-s1ivMmAJE7f0RIvGtbLBYhgE0="


def app_environ(**overrides: str) -> dict[str, str]:
    """The environment of an app-mode deployment (no store hash, no access token)."""
    return {
        "BIGCOMMERCE_CLIENT_ID": APP_CLIENT_ID,
        "BIGCOMMERCE_CLIENT_SECRET": APP_CLIENT_SECRET,
        "BCWEBHOOKS_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "BCWEBHOOKS_APP_URL": APP_URL,
        **overrides,
    }


def app_jwt(
    store_hash: str,
    secret: str = APP_CLIENT_SECRET,
    audience: str = APP_CLIENT_ID,
    expires_in: int = 24 * 3600,
    **claims: Any,
) -> str:
    """A signed_payload_jwt as BigCommerce signs it (HS256 with the app's client secret)."""
    import jwt

    now = int(time.time())
    payload: dict[str, Any] = {
        "aud": audience,
        "iss": "bc",
        "iat": now,
        "nbf": now - 5,
        "exp": now + expires_in,
        "jti": str(uuid.uuid4()),
        "sub": f"stores/{store_hash}",
        "user": {"id": 24654, "email": "merchant@example.com", "locale": "en-US"},
        "owner": {"id": 12345, "email": "owner@example.com"},
        "url": "/",
        "channel_id": None,
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")
