"""Dramatiq's dead letters for our queue: list, show, replay and purge, with the reasons we recorded."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from service.events import QUEUE_NAMES
from workers.middleware import DLQ_REASONS_KEY

DEAD_LETTER_QUEUES = [f"dramatiq:{name}.XQ" for name in QUEUE_NAMES]
RETRY_OPTIONS = ("retries", "traceback", "requeue_timestamp", "redis_message_id", "eta")


@dataclass(frozen=True)
class DeadLetter:
    """One failed message: ids, what it was about, why it failed, and its payload."""

    redis_id: str
    queue_key: str
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
    """Every dead letter of every queue, oldest first."""
    letters = [letter for key in DEAD_LETTER_QUEUES for letter in _dead_letters_of(client, key)]
    return sorted(letters, key=lambda letter: letter.dead_at_ms)


def _dead_letters_of(client: redis.Redis, key: str) -> list[DeadLetter]:
    entries: Any = client.zrange(key, 0, -1, withscores=True)
    if not entries:
        return []
    ids = [member for member, _ in entries]
    payloads: Any = client.hmget(f"{key}.msgs", ids)
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
                queue_key=key,
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
        broker.enqueue(message.copy(options=options))
        _remove(client, letter)
    return len(letters)


def purge(client: redis.Redis, letters: list[DeadLetter]) -> int:
    """Delete dead letters for good."""
    for letter in letters:
        _remove(client, letter)
    return len(letters)


def _remove(client: redis.Redis, letter: DeadLetter) -> None:
    pipeline = client.pipeline()
    pipeline.zrem(letter.queue_key, letter.redis_id)
    pipeline.hdel(f"{letter.queue_key}.msgs", letter.redis_id)
    pipeline.hdel(DLQ_REASONS_KEY, letter.message_id)
    pipeline.execute()
