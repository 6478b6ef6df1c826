"""The contract between the receiver and the workers: which queue, which actor, what payload."""

from __future__ import annotations

import hashlib
from typing import Any, TypedDict

from dramatiq import Message

from service.envelopes import Envelope

QUEUE_NAME = "bcwebhooks.events"
ACTOR_NAME = "process_callback"


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


def build_message(callback: PersistedCallback) -> Message[Any]:
    """The Dramatiq message that asks a worker to process one persisted callback."""
    return Message(queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(callback,), kwargs={}, options={})
