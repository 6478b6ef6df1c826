"""Dramatiq's dead letters for our queue: list, show, replay and purge, with the reasons we recorded."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from service.events import QUEUE_NAME
from workers.middleware import DLQ_REASONS_KEY

DEAD_LETTERS = f"dramatiq:{QUEUE_NAME}.XQ"
DEAD_LETTER_MESSAGES = f"{DEAD_LETTERS}.msgs"
RETRY_OPTIONS = ("retries", "traceback", "requeue_timestamp", "redis_message_id", "eta")


@dataclass(frozen=True)
class DeadLetter:
    """One failed message: ids, what it was about, why it failed, and its payload."""

    redis_id: str
    message_id: str
    scope: str | None
    event_id: str | None
    dead_at_ms: int
    reason: dict[str, Any]
    payload: bytes

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "id": self.message_id,
            "scope": self.scope,
            "event_id": self.event_id,
            "dead_at_ms": self.dead_at_ms,
            "error": self.reason.get("error", "unknown (no reason recorded)"),
            "retries": self.reason.get("retries"),
        }


def list_dead_letters(client: redis.Redis) -> list[DeadLetter]:
    """Every dead letter, oldest first."""
    entries: Any = client.zrange(DEAD_LETTERS, 0, -1, withscores=True)
    if not entries:
        return []
    ids = [member for member, _ in entries]
    payloads: Any = client.hmget(DEAD_LETTER_MESSAGES, ids)
    letters = []
    for (member, score), payload in zip(entries, payloads, strict=True):
        if payload is None:
            continue
        body = json.loads(payload)
        callback = body["args"][0] if body.get("args") else {}
        raw_reason: Any = client.hget(DLQ_REASONS_KEY, body["message_id"])
        letters.append(
            DeadLetter(
                redis_id=member.decode(),
                message_id=body["message_id"],
                scope=callback.get("envelope", {}).get("scope"),
                event_id=callback.get("event_id"),
                dead_at_ms=int(score),
                reason=json.loads(raw_reason) if raw_reason else {},
                payload=payload,
            )
        )
    return letters


def find(client: redis.Redis, letter_id: str) -> DeadLetter | None:
    """A dead letter by message id (or Redis id)."""
    return next((d for d in list_dead_letters(client) if letter_id in (d.message_id, d.redis_id)), None)


def select(
    client: redis.Redis, letter_id: str | None, scope_glob: str | None, everything: bool
) -> list[DeadLetter]:
    """The dead letters one id, a scope glob, or `everything` names."""
    letters = list_dead_letters(client)
    if everything:
        return letters
    if scope_glob:
        return [d for d in letters if d.scope and fnmatch.fnmatchcase(d.scope, scope_glob)]
    return [d for d in letters if letter_id in (d.message_id, d.redis_id)]


def replay(client: redis.Redis, broker: RedisBroker, letters: list[DeadLetter]) -> int:
    """Enqueue each dead letter again with a fresh retry budget, then remove it from the dead letters."""
    for letter in letters:
        message = Message.decode(letter.payload)
        options = {k: v for k, v in message.options.items() if k not in RETRY_OPTIONS}
        broker.enqueue(message.copy(options=options, queue_name=QUEUE_NAME))
        _remove(client, letter)
    return len(letters)


def purge(client: redis.Redis, letters: list[DeadLetter]) -> int:
    """Delete dead letters for good."""
    for letter in letters:
        _remove(client, letter)
    return len(letters)


def _remove(client: redis.Redis, letter: DeadLetter) -> None:
    pipeline = client.pipeline()
    pipeline.zrem(DEAD_LETTERS, letter.redis_id)
    pipeline.hdel(DEAD_LETTER_MESSAGES, letter.redis_id)
    pipeline.hdel(DLQ_REASONS_KEY, letter.message_id)
    pipeline.execute()
