"""Dead letters as Redis holds them: read by `bcwebhooks dlq` (workers/dlq.py) and the dashboard.

Three kinds exist:
- `event`: one callback whose processing failed for good, recorded per event with its reason by the
  workers' `DeadLetters` middleware or by the reconciler (workers/middleware.py, workers/ledger.py);
- `forward`: one processed event that an HTTP output (its `destination`) did not accept, recorded the same
  way per event and destination (workers/outputs/forwards.py);
- `message`: any other Dramatiq message that failed (say a batch flush), left in Dramatiq's own dead-letter
  queue, with its reason when one was recorded.

Reading needs nothing of the workers, so the edge may do it; replaying is the workers' (workers/dlq.py).
The edge asks for a replay by enqueueing the workers' replay actor (`request_replay`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from dramatiq import Message

from service.events import (
    BACKFILL_QUEUE_NAME,
    DEAD_INDEX_KEY,
    DEAD_KEY,
    DLQ_REASONS_KEY,
    DRAMATIQ_NAMESPACE,
    FORWARD_QUEUE_NAME,
    QUEUE_NAME,
    QUEUE_NAMES,
    REPLAY_ACTOR_NAME,
)

DEAD_LETTER_QUEUES = [
    f"{DRAMATIQ_NAMESPACE}:{name}.XQ" for name in (*QUEUE_NAMES, FORWARD_QUEUE_NAME, BACKFILL_QUEUE_NAME)
]
EVENT, FORWARD, MESSAGE = "event", "forward", "message"
LEDGER_KINDS = (EVENT, FORWARD)  # recorded per unit of work, replayed through the delivery ledger


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter: what it was about, why it failed, and the message that can run it again."""

    id: str
    kind: str
    scope: str | None
    event_id: str | None
    dead_at_ms: int
    reason: dict[str, Any]
    payload: bytes | None
    queue_key: str | None = None
    redis_id: str | None = None
    destination: str | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "id": self.id,
            "kind": self.kind,
            "scope": self.scope,
            "event_id": self.event_id,
            "destination": self.destination,
            "dead_at_ms": self.dead_at_ms,
            "error": self.reason.get("error", "unknown (no reason recorded)"),
            "retries": self.reason.get("retries"),
        }

    def message(self) -> dict[str, Any] | None:
        """The stored Dramatiq message as JSON, when it is readable."""
        loaded = _json_or_none(self.payload)
        return loaded if isinstance(loaded, dict) else None


def list_dead_letters(client: redis.Redis) -> list[DeadLetter]:
    """Every dead letter of every kind, oldest first."""
    letters = _event_letters(client) + [
        letter for key in DEAD_LETTER_QUEUES for letter in _message_letters(client, key)
    ]
    return sorted(letters, key=lambda letter: letter.dead_at_ms)


def _event_letters(client: redis.Redis) -> list[DeadLetter]:
    entries: Any = client.zrange(DEAD_INDEX_KEY, 0, -1, withscores=True)
    if not entries:
        return []
    records: Any = client.hmget(DEAD_KEY, [member for member, _ in entries])
    letters = []
    for (member, score), raw in zip(entries, records, strict=True):
        record = _json_or_none(raw)
        if not isinstance(record, dict):
            record = (
                {"error": "unreadable dead letter record"} if raw is not None else {"error": "record gone"}
            )
        message = record.get("message")
        destination = _str_or_none(record.get("destination"))
        letters.append(
            DeadLetter(
                id=member.decode(),
                kind=EVENT if destination is None else FORWARD,
                destination=destination,
                scope=_str_or_none(record.get("scope")),
                event_id=_str_or_none(record.get("event_id")),
                dead_at_ms=int(score),
                reason=record,
                payload=message.encode() if isinstance(message, str) else None,
            )
        )
    return letters


def _message_letters(client: redis.Redis, key: str) -> list[DeadLetter]:
    entries: Any = client.zrange(key, 0, -1, withscores=True)
    if not entries:
        return []
    payloads: Any = client.hmget(f"{key}.msgs", [member for member, _ in entries])
    letters = []
    for (member, score), payload in zip(entries, payloads, strict=True):
        body = _json_or_none(payload)
        body = body if isinstance(body, dict) else {}
        message_id = _str_or_none(body.get("message_id")) or member.decode()
        args: list[Any] = body["args"] if isinstance(body.get("args"), list) else []
        callback = args[0] if args and isinstance(args[0], dict) else {}
        envelope: dict[str, Any] = callback["envelope"] if isinstance(callback.get("envelope"), dict) else {}
        raw_reason: Any = client.hget(DLQ_REASONS_KEY, message_id)
        reason = _json_or_none(raw_reason)
        letters.append(
            DeadLetter(
                id=message_id,
                kind=MESSAGE,
                scope=_str_or_none(envelope.get("scope")) or _str_or_none(body.get("actor_name")),
                event_id=_str_or_none(callback.get("event_id")),
                dead_at_ms=int(score),
                reason=reason if isinstance(reason, dict) else {},
                payload=payload,
                queue_key=key,
                redis_id=member.decode(),
            )
        )
    return letters


def find(client: redis.Redis, letter_id: str) -> DeadLetter | None:
    """A dead letter by its id (or its event id)."""
    return next((d for d in list_dead_letters(client) if letter_id in (d.id, d.event_id)), None)


def count_dead_letters(client: redis.Redis) -> int:
    """How many dead letters of any kind exist, without reading them."""
    pipeline = client.pipeline(transaction=False)
    pipeline.zcard(DEAD_INDEX_KEY)
    for key in DEAD_LETTER_QUEUES:
        pipeline.zcard(key)
    return sum(int(count) for count in pipeline.execute())


def replay_request(letter_ids: list[str]) -> Message[Any]:
    """The message that asks a worker to replay these dead letters (workers/actors.py runs it)."""
    return Message(
        queue_name=QUEUE_NAME,
        actor_name=REPLAY_ACTOR_NAME,
        args=(list(letter_ids),),
        kwargs={},
        options={"redis_message_id": str(uuid.uuid4())},
    )


def request_replay(client: redis.Redis, letter_ids: list[str]) -> str:
    """Enqueue a replay request as Dramatiq's RedisBroker would (HSET the message, RPUSH its id); its id."""
    message = replay_request(letter_ids)
    redis_id = message.options["redis_message_id"]
    queue = f"{DRAMATIQ_NAMESPACE}:{QUEUE_NAME}"
    pipeline = client.pipeline()
    pipeline.hset(f"{queue}.msgs", redis_id, message.encode())
    pipeline.rpush(queue, redis_id)
    pipeline.execute()
    return str(message.message_id)


def _json_or_none(raw: Any) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
