"""WAIT before acknowledging, against the suite's Redis, which has no replica: nothing is ever confirmed."""

from __future__ import annotations

import asyncio

import redis

from service.events import PersistedCallback
from service.queue import PROBE_KEY, EventQueue, NotReplicated, connect, dedup_key
from tests.helpers import stored_messages
from tests.test_queue import callback


async def persist(url: str, min_replicas: int, *callbacks: PersistedCallback) -> list[object]:
    """Persist each callback in turn (its own write); the outcome or the exception of each."""
    queue = EventQueue(connect(url), 3600, min_replicas=min_replicas, replica_timeout_ms=20)
    outcomes: list[object] = []
    try:
        for item in callbacks:
            (outcome,) = await asyncio.gather(queue.persist_once(item), return_exceptions=True)
            outcomes.append(outcome)
    finally:
        await queue.close()
    return outcomes


def test_an_unreplicated_write_is_refused_but_kept_and_its_retry_writes_the_probe(
    redis_url: str, redis_client: redis.Redis
) -> None:
    item = callback()

    first, retry = asyncio.run(persist(redis_url, 1, item, item))

    assert isinstance(first, NotReplicated) and isinstance(retry, NotReplicated)
    assert str(first) == "0 of 1 replicas confirmed within 20 ms"
    assert stored_messages(redis_client) == 1  # on the primary: it is processed, the retry is a duplicate
    assert redis_client.exists(dedup_key(item["event_id"]))
    assert redis_client.get(PROBE_KEY) == b"1"  # written by the retry alone, which enqueued nothing


def test_without_replicas_wanted_a_duplicate_writes_nothing(
    redis_url: str, redis_client: redis.Redis
) -> None:
    item = callback()

    first, again = asyncio.run(persist(redis_url, 0, item, item))

    assert (first, again) == (True, False)
    assert redis_client.get(PROBE_KEY) is None
