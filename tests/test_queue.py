"""The receiver's hand-off to Redis: message bytes Dramatiq can read, group commit, failures of a batch."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from service.events import PersistedCallback, build_message, encode_message
from service.queue import EventQueue, MessageIds, QueueUnavailable, connect, dedup_key
from tests.helpers import encode, envelope, queued_callbacks, signed, stored_messages
from tests.servers import RedisProcess

UUID_SHAPE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def callback(event_id: str | None = None, **overrides: Any) -> PersistedCallback:
    event_id = event_id or f"id:msg_{uuid.uuid4().hex}"
    return PersistedCallback(
        event_id=event_id, webhook_id=event_id[3:], received_at_ms=1, envelope=envelope(**overrides)
    )


async def persist_all(url: str, callbacks: list[PersistedCallback]) -> tuple[list[Any], int]:
    """Persist concurrently, as simultaneous requests would; the outcomes in order and the writes made."""
    queue = EventQueue(connect(url), dedup_window_seconds=3600)
    try:
        outcomes = await asyncio.gather(
            *(queue.persist_once(item) for item in callbacks), return_exceptions=True
        )
    finally:
        await queue.close()
    return list(outcomes), queue.writes


# --- the message bytes ------------------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson refuses those, the fallback writes them
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)  # lone surrogates included: orjson refuses those too
)
extra_fields = st.dictionaries(
    st.text(max_size=8),
    st.recursive(json_leaves, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c)),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(extra=extra_fields, catalog=st.booleans())
def test_encoded_message_is_what_dramatiq_would_store(extra: dict[str, Any], catalog: bool) -> None:
    scope = "store/product/updated" if catalog else "store/order/created"
    item = callback(scope=scope)
    item["envelope"]["extra"] = extra

    queue_name, payload = encode_message(item, "message-id-1", 1_700_000_000_123)
    decoded = Message.decode(payload)
    reference = build_message(item)

    assert queue_name == reference.queue_name == decoded.queue_name
    assert decoded.actor_name == reference.actor_name
    assert decoded.args == (json.loads(json.dumps(item)),)
    assert decoded.kwargs == {}
    assert decoded.options == {"redis_message_id": "message-id-1"}
    assert (decoded.message_id, decoded.message_timestamp) == ("message-id-1", 1_700_000_000_123)
    assert list(json.loads(payload)) == list(reference.asdict())  # same keys, same order


def test_message_ids_are_uuid_shaped_and_distinct_across_generators() -> None:
    first, second = MessageIds(), MessageIds()
    ids = [first.next() for _ in range(1000)] + [second.next() for _ in range(1000)]

    assert all(UUID_SHAPE.match(value) for value in ids)
    assert len(set(ids)) == 2000


# --- group commit -----------------------------------------------------------------------------------


def test_simultaneous_callbacks_share_writes_and_each_is_enqueued_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    callbacks = [callback(data={"type": "order", "id": number}) for number in range(200)]

    outcomes, writes = asyncio.run(persist_all(redis_url, callbacks))

    assert outcomes == [True] * 200
    assert writes < 20  # one write in flight at a time: the rest wait and go together
    assert [item["envelope"]["data"]["id"] for item in queued_callbacks(redis_client)] == list(range(200))
    assert all(redis_client.exists(dedup_key(item["event_id"])) for item in callbacks)


def test_a_duplicate_inside_one_batch_is_enqueued_once(redis_url: str, redis_client: redis.Redis) -> None:
    original = callback("id:msg_twice")
    outcomes, writes = asyncio.run(persist_all(redis_url, [original, callback(), original]))

    assert writes == 1
    assert outcomes == [True, True, False]
    assert stored_messages(redis_client) == 2


def test_catalog_and_order_callbacks_in_one_batch_reach_their_own_queues(
    redis_url: str, redis_client: redis.Redis
) -> None:
    callbacks = [callback(scope="store/product/updated"), callback(scope="store/order/created")]

    asyncio.run(persist_all(redis_url, callbacks))

    assert redis_client.llen("dramatiq:bcwebhooks.catalog") == 1
    assert redis_client.llen("dramatiq:bcwebhooks.events") == 1


def test_a_refused_batch_fails_every_request_in_it_and_leaves_no_mark(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    state = redis.Redis.from_url(server.url)
    try:
        state.config_set("maxmemory", 1)  # every write is refused, as when memory runs out
        callbacks = [callback() for _ in range(30)]
        refused, _ = asyncio.run(persist_all(server.url, callbacks))
        marks = sum(state.exists(dedup_key(item["event_id"])) for item in callbacks)
        state.config_set("maxmemory", 0)
        retried, _ = asyncio.run(persist_all(server.url, callbacks))
        queued = len(queued_callbacks(state))
    finally:
        state.close()
        server.stop()

    assert all(isinstance(outcome, QueueUnavailable) for outcome in refused)
    assert marks == 0
    assert retried == [True] * 30
    assert queued == 30


def test_redis_gone_fails_every_waiting_request(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    server.stop()

    outcomes, _ = asyncio.run(persist_all(server.url, [callback() for _ in range(10)]))

    assert all(isinstance(outcome, QueueUnavailable) for outcome in outcomes)


def test_a_request_that_goes_away_does_not_stop_the_others(redis_url: str, redis_client: redis.Redis) -> None:
    async def scenario() -> list[Any]:
        queue = EventQueue(connect(redis_url), dedup_window_seconds=3600)
        try:
            tasks = [asyncio.create_task(queue.persist_once(callback())) for _ in range(5)]
            await asyncio.sleep(0)  # all five are waiting on the first write now
            tasks[2].cancel()
            return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await queue.close()

    outcomes = asyncio.run(scenario())

    assert isinstance(outcomes[2], asyncio.CancelledError)
    assert [outcomes[i] for i in (0, 1, 3, 4)] == [True] * 4


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_are_refused(client: Any, redis_client: redis.Redis, constant: bytes) -> None:
    raw = encode(envelope()).replace(b'"store_id": "1025646"', b'"store_id": "1025646", "x": ' + constant)
    response = client.post("/webhooks/bigcommerce", content=raw, headers=signed(raw))

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert stored_messages(redis_client) == 0
