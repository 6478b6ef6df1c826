"""A store in a catalog storm gets the bulk lane; other stores' catalog events keep the catalog queue."""

from __future__ import annotations

import asyncio
import uuid

import redis
from dramatiq import Message

from service.events import CATALOG_BULK_QUEUE_NAME, CATALOG_QUEUE_NAME, QUEUE_NAME, PersistedCallback
from service.lanes import StormLanes
from service.queue import DRAMATIQ_NAMESPACE, EventQueue, connect
from tests.helpers import envelope


class Clock:
    def __init__(self) -> None:
        self.ms = 10_000

    def __call__(self) -> int:
        return self.ms


def test_a_store_past_the_threshold_in_a_window_goes_to_the_bulk_lane_until_the_window_ends() -> None:
    clock = Clock()
    lanes = StormLanes(threshold=3, window_ms=1000, clock=clock)

    storm = [lanes.bulk("stores/big") for _ in range(5)]
    quiet = [lanes.bulk("stores/small") for _ in range(3)]
    clock.ms += 1000
    next_window = lanes.bulk("stores/big")

    assert storm == [False, False, False, True, True]
    assert quiet == [False, False, False]
    assert next_window is False


def test_a_threshold_of_zero_turns_lanes_off() -> None:
    lanes = StormLanes(threshold=0)

    assert not any(lanes.bulk("stores/big") for _ in range(100))


def test_counts_of_past_windows_are_dropped_when_many_stores_are_tracked() -> None:
    clock = Clock()
    lanes = StormLanes(threshold=1, clock=clock)
    for index in range(10_000):
        lanes.bulk(f"stores/s{index}")
    clock.ms += 1000

    lanes.bulk("stores/new")

    assert lanes._counts == {"stores/new": (clock.ms // 1000, 1)}


def callback(scope: str, store: str) -> PersistedCallback:
    event_id = f"id:msg_{uuid.uuid4().hex}"
    return PersistedCallback(
        event_id=event_id,
        webhook_id=event_id[3:],
        received_at_ms=1,
        envelope=envelope(scope=scope, producer=f"stores/{store}"),
    )


def test_the_receivers_queue_sends_only_the_storming_stores_catalog_callbacks_to_the_bulk_lane(
    redis_url: str, redis_client: redis.Redis
) -> None:
    storm = [callback("store/product/updated", "big") for _ in range(25)]
    orders = [callback("store/order/created", "big") for _ in range(25)]
    quiet = [callback("store/product/updated", "small") for _ in range(3)]

    async def persist() -> None:
        queue = EventQueue(connect(redis_url), 3600, lanes=StormLanes(threshold=20, window_ms=60_000))
        try:
            for item in [*storm, *orders, *quiet]:
                assert await queue.persist_once(item)
        finally:
            await queue.close()

    asyncio.run(persist())

    def queued(queue: str) -> list[str]:
        key = f"{DRAMATIQ_NAMESPACE}:{queue}"
        payloads = [redis_client.hget(f"{key}.msgs", id_) for id_ in redis_client.lrange(key, 0, -1)]
        messages = [Message.decode(payload) for payload in payloads if payload is not None]
        assert all(message.queue_name == queue for message in messages)
        return [message.args[0]["event_id"] for message in messages]

    assert queued(CATALOG_QUEUE_NAME) == [c["event_id"] for c in [*storm[:20], *quiet]]
    assert queued(CATALOG_BULK_QUEUE_NAME) == [c["event_id"] for c in storm[20:]]
    assert queued(QUEUE_NAME) == [c["event_id"] for c in orders]
