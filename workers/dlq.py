"""Dead letters: list, show, replay and purge, whatever their kind, never failing on a damaged one.

The three kinds (`event`, `forward`, `message`) and how they are read live in service/deadletters.py, which
the dashboard shares; replaying and purging are here, with the workers' ledger and broker.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import redis
from dramatiq import Broker, Message

from service.deadletters import DEAD_LETTER_QUEUES as DEAD_LETTER_QUEUES
from service.deadletters import EVENT as EVENT
from service.deadletters import FORWARD as FORWARD
from service.deadletters import LEDGER_KINDS as LEDGER_KINDS
from service.deadletters import MESSAGE as MESSAGE
from service.deadletters import DeadLetter as DeadLetter
from service.deadletters import find as find
from service.deadletters import list_dead_letters as list_dead_letters
from service.events import DEAD_INDEX_KEY, DEAD_KEY, DLQ_REASONS_KEY
from workers.ledger import DeliveryLedger, fresh_copy


def select(
    client: redis.Redis,
    letter_id: str | None,
    scope_glob: str | None,
    everything: bool,
    destination: str | None = None,
) -> list[DeadLetter]:
    """The dead letters one id, a scope glob, or `everything` names; only one HTTP output's forwards when
    `destination` is given."""
    letters = list_dead_letters(client)
    if destination is not None:
        letters = [d for d in letters if d.destination == destination]
    if everything:
        return letters
    if scope_glob:
        return [d for d in letters if d.scope and fnmatch.fnmatchcase(d.scope, scope_glob)]
    if letter_id is None:
        return letters if destination is not None else []
    return [d for d in letters if letter_id in (d.id, d.event_id)]


def replay(client: redis.Redis, broker: Broker, letters: list[DeadLetter]) -> int:
    """Enqueue each dead letter again with a fresh retry budget; returns how many could be replayed.

    An event or a forward goes back into the delivery ledger before its message is enqueued, so a failed
    enqueue is picked up by the reconciler. A letter whose message is unreadable stays where it is.
    """
    ledger = DeliveryLedger(client, done_ttl_seconds=0)
    replayed = 0
    for letter in letters:
        message = _message_or_none(letter.payload)
        if message is None:
            continue
        fresh = fresh_copy(message, keep_retries=False)
        if letter.kind in LEDGER_KINDS:
            ledger.revive(letter.id, fresh)
        broker.enqueue(fresh)
        if letter.kind == MESSAGE:
            _remove(client, letter)
        replayed += 1
    return replayed


def purge(client: redis.Redis, letters: list[DeadLetter]) -> int:
    """Delete dead letters for good."""
    for letter in letters:
        _remove(client, letter)
    return len(letters)


def _remove(client: redis.Redis, letter: DeadLetter) -> None:
    pipeline = client.pipeline()
    if letter.kind in LEDGER_KINDS:
        pipeline.hdel(DEAD_KEY, letter.id)
        pipeline.zrem(DEAD_INDEX_KEY, letter.id)
    else:
        pipeline.zrem(letter.queue_key or "", letter.redis_id or "")
        pipeline.hdel(f"{letter.queue_key}.msgs", letter.redis_id or "")
        pipeline.hdel(DLQ_REASONS_KEY, letter.id)
    pipeline.execute()


def _message_or_none(payload: bytes | None) -> Message[Any] | None:
    if payload is None:
        return None
    try:
        return Message.decode(payload)
    except Exception:  # damaged: leave it for `dlq show` and `purge`
        return None
