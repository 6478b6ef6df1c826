"""The delivery ledger against a real Redis: what the receiver writes, what the reconciler does with it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import redis
from dramatiq import Message

from service.events import LEDGER_KEY, LEDGER_MESSAGES_KEY, PersistedCallback, ledger_id
from service.queue import EventQueue, QueueUnavailable, connect, dedup_key
from tests.helpers import QUEUE_KEYS, queued_callbacks
from workers import dlq
from workers.broker import build_broker
from workers.events import ProcessedEvent
from workers.ledger import (
    DEAD_INDEX_KEY,
    DEAD_KEY,
    FLUSH_ACTOR_NAME,
    HEARTBEATS_KEY,
    MAX_REQUEUES,
    REQUEUES_KEY,
    DeliveryLedger,
    Reconciler,
    done_key,
    flush_id,
)
from workers.outputs import StreamOutput

MAIN_QUEUE = QUEUE_KEYS[0]


def callback(event_id: str, scope: str = "store/order/created") -> PersistedCallback:
    envelope = {"scope": scope, "producer": "stores/teststore", "data": {"type": "order", "id": 7}}
    return PersistedCallback(event_id=event_id, webhook_id=None, received_at_ms=0, envelope=envelope)


def accept(redis_url: str, *callbacks: PersistedCallback) -> None:
    async def persist() -> None:
        queue = EventQueue(connect(redis_url), 3600)
        try:
            for item in callbacks:
                await queue.persist_once(item)
        finally:
            await queue.close()

    asyncio.run(persist())


def expire_all(client: redis.Redis) -> None:
    entries = client.zrange(LEDGER_KEY, 0, -1)
    if entries:
        client.zadd(LEDGER_KEY, dict.fromkeys(entries, 0))


@pytest.fixture
def ledger(redis_client: redis.Redis) -> DeliveryLedger:
    return DeliveryLedger(redis_client, 3600)


@pytest.fixture
def reconciler(redis_url: str, ledger: DeliveryLedger) -> Reconciler:
    return Reconciler(ledger, build_broker(redis_url))


def test_an_accepted_event_is_in_the_ledger_with_its_message_until_it_is_finished(
    redis_url: str, redis_client: redis.Redis, ledger: DeliveryLedger
) -> None:
    accept(redis_url, callback("id:a"))

    deadline = redis_client.zscore(LEDGER_KEY, ledger_id("id:a"))
    stored = Message.decode(redis_client.hget(LEDGER_MESSAGES_KEY, ledger_id("id:a")))
    assert deadline is not None and deadline > time.time() * 1000
    assert stored.args[0]["event_id"] == "id:a"
    assert ledger.pending() == 1

    ledger.finish("id:a")

    assert ledger.pending() == 0
    assert redis_client.hget(LEDGER_MESSAGES_KEY, ledger_id("id:a")) is None
    assert ledger.is_complete("id:a")
    assert not ledger.claim("id:a")  # a duplicate message for it is skipped


def test_a_write_failing_inside_the_script_leaves_no_dedup_mark_behind(
    redis_url: str, redis_client: redis.Redis
) -> None:
    redis_client.set(MAIN_QUEUE, "a string where Dramatiq's list should be")

    with pytest.raises(QueueUnavailable):
        accept(redis_url, callback("id:wrong-type"))

    assert not redis_client.exists(dedup_key("id:wrong-type"))  # BigCommerce's retry will be accepted
    redis_client.delete(MAIN_QUEUE)
    accept(redis_url, callback("id:wrong-type"))
    assert [c["event_id"] for c in queued_callbacks(redis_client)] == ["id:wrong-type"]


def test_the_reconciler_extends_the_lease_of_an_event_whose_message_still_waits(
    redis_url: str, redis_client: redis.Redis, reconciler: Reconciler
) -> None:
    accept(redis_url, callback("id:waiting"))
    expire_all(redis_client)

    report = reconciler.sweep()

    assert (report.waiting, report.requeued) == (1, 0)
    assert redis_client.llen(MAIN_QUEUE) == 1
    assert redis_client.zscore(LEDGER_KEY, ledger_id("id:waiting")) > time.time() * 1000


def test_the_reconciler_requeues_an_event_whose_message_was_acked_without_finishing(
    redis_url: str, redis_client: redis.Redis, reconciler: Reconciler
) -> None:
    accept(redis_url, callback("id:lost"), callback("id:kept"))
    lost = redis_client.lpop(MAIN_QUEUE)
    redis_client.hdel(f"{MAIN_QUEUE}.msgs", lost)  # what an ack does, here without a delivery
    expire_all(redis_client)

    report = reconciler.sweep()

    assert (report.waiting, report.requeued) == (1, 1)
    assert sorted(c["event_id"] for c in queued_callbacks(redis_client)) == ["id:kept", "id:lost"]
    tracked = Message.decode(redis_client.hget(LEDGER_MESSAGES_KEY, ledger_id("id:lost")))
    assert tracked.options["redis_message_id"] != lost.decode()  # the ledger follows the new message
    assert reconciler.sweep().requeued == 0  # its lease was extended with the new message


def test_the_reconciler_requeues_an_event_stranded_in_a_live_workers_ack_set(
    redis_url: str, redis_client: redis.Redis, reconciler: Reconciler
) -> None:
    accept(redis_url, callback("id:stranded"))
    stranded = redis_client.lpop(MAIN_QUEUE)  # a fetch whose reply never reached the worker
    redis_client.sadd("dramatiq:__acks__.live-worker.bcwebhooks.events", stranded)
    redis_client.zadd(HEARTBEATS_KEY, {"live-worker": int(time.time() * 1000)})
    expire_all(redis_client)

    assert reconciler.sweep().requeued == 1

    assert [c["event_id"] for c in queued_callbacks(redis_client)] == ["id:stranded"]
    assert not redis_client.sismember("dramatiq:__acks__.live-worker.bcwebhooks.events", stranded)
    assert not redis_client.hexists(f"{MAIN_QUEUE}.msgs", stranded)  # the stranded copy is released


def test_the_reconciler_requeues_an_event_whose_message_is_stored_but_neither_queued_nor_held(
    redis_url: str, redis_client: redis.Redis, reconciler: Reconciler
) -> None:
    # Dramatiq drops a consumer's delayed and prefetched messages when its connection fails; once the ack set
    # holding one is gone (or belongs to no live worker), only its body is left in the message hash.
    accept(redis_url, callback("id:orphan"))
    orphan = redis_client.lpop(MAIN_QUEUE)
    expire_all(redis_client)

    report = reconciler.sweep()

    assert (report.waiting, report.requeued) == (0, 1)
    assert [c["event_id"] for c in queued_callbacks(redis_client)] == ["id:orphan"]
    assert not redis_client.hexists(f"{MAIN_QUEUE}.msgs", orphan)  # the stranded body is released


def test_an_event_requeued_too_often_is_dead_lettered_with_the_reason(
    redis_url: str, redis_client: redis.Redis, reconciler: Reconciler, ledger: DeliveryLedger
) -> None:
    accept(redis_url, callback("id:cursed"))
    redis_client.delete(MAIN_QUEUE, f"{MAIN_QUEUE}.msgs")
    redis_client.hset(REQUEUES_KEY, ledger_id("id:cursed"), MAX_REQUEUES)
    expire_all(redis_client)

    assert reconciler.sweep().dead_lettered == 1

    [letter] = dlq.list_dead_letters(redis_client)
    assert (letter.kind, letter.event_id, letter.scope) == ("event", "id:cursed", "store/order/created")
    assert f"not finished after {MAX_REQUEUES} re-enqueues" in letter.reason["error"]
    assert ledger.pending() == 0


def test_a_dead_letter_replayed_goes_back_into_the_ledger_and_the_queue(
    redis_url: str, redis_client: redis.Redis, ledger: DeliveryLedger
) -> None:
    accept(redis_url, callback("id:replayed"))
    message = Message.decode(redis_client.hget(LEDGER_MESSAGES_KEY, ledger_id("id:replayed")))
    redis_client.delete(MAIN_QUEUE, f"{MAIN_QUEUE}.msgs")
    assert ledger.dead_letter("id:replayed", {"error": "boom", "message": message.encode().decode()})
    assert not ledger.dead_letter("id:replayed", {"error": "twice"})  # it already left the ledger

    [letter] = dlq.list_dead_letters(redis_client)
    assert dlq.replay(redis_client, build_broker(redis_url), [letter]) == 1

    assert dlq.list_dead_letters(redis_client) == []
    assert ledger.pending() == 1
    assert [c["event_id"] for c in queued_callbacks(redis_client)] == ["id:replayed"]


def test_damaged_dead_letters_of_every_kind_are_listed_shown_and_purged(redis_client: redis.Redis) -> None:
    redis_client.hset(DEAD_KEY, "not-json", b"\xff{")
    redis_client.zadd(DEAD_INDEX_KEY, {"not-json": 1, "no-record": 2})
    redis_client.zadd("dramatiq:bcwebhooks.catalog.XQ", {"rid-1": 3, "rid-2": 4})
    redis_client.hset("dramatiq:bcwebhooks.catalog.XQ.msgs", "rid-1", b"[1, 2")
    flush = Message(
        queue_name="bcwebhooks.catalog",
        actor_name="flush_batch",
        args=("product", "token"),
        kwargs={},
        options={"redis_message_id": "rid-2"},
    )
    redis_client.hset("dramatiq:bcwebhooks.catalog.XQ.msgs", "rid-2", flush.encode())

    letters = dlq.list_dead_letters(redis_client)

    assert [letter.kind for letter in letters] == ["event", "event", "message", "message"]
    assert [letter.describe()["error"] for letter in letters][:2] == [
        "unreadable dead letter record",
        "record gone",
    ]
    assert letters[3].scope == "flush_batch"
    assert dlq.find(redis_client, letters[2].id) is not None
    assert dlq.replay(redis_client, build_broker("redis://127.0.0.1:1"), letters[:3]) == 0  # nothing readable
    assert dlq.purge(redis_client, letters) == 4
    assert dlq.list_dead_letters(redis_client) == []


def test_the_stream_output_writes_each_event_once(redis_client: redis.Redis) -> None:
    output = StreamOutput(redis_client, "bcwebhooks:test-stream", 1000)
    event = ProcessedEvent(
        event_id="id:once",
        webhook_id=None,
        scope="store/order/created",
        store_hash="teststore",
        resource_type="order",
        resource_id="7",
        record={"id": 7},
        deleted=False,
        envelope={},
        received_at_ms=0,
        fetched_at_ms=0,
    )
    key = done_key(event.event_id)

    first = output.emit_once(event, key, "output:stream", 60)
    second = output.emit_once(event, key, "output:stream", 60)

    entries: Any = redis_client.xrange("bcwebhooks:test-stream")
    assert first is not None and second is None
    assert [json.loads(fields[b"event"])["event_id"] for _, fields in entries] == ["id:once"]


def test_a_batch_flush_stranded_in_a_live_workers_delay_queue_is_sent_again(
    redis_client: redis.Redis, reconciler: Reconciler, ledger: DeliveryLedger
) -> None:
    flush = Message(
        queue_name="bcwebhooks.catalog.DQ",
        actor_name=FLUSH_ACTOR_NAME,
        args=("product", "token-1"),
        kwargs={},
        options={"redis_message_id": "rid-flush", "eta": 1},
    )
    ledger.open(flush_id("product", "token-1"), flush, lease_ms=0)
    redis_client.hset("dramatiq:bcwebhooks.catalog.DQ.msgs", "rid-flush", flush.encode())
    redis_client.sadd("dramatiq:__acks__.live-worker.bcwebhooks.catalog.DQ", "rid-flush")
    redis_client.zadd(HEARTBEATS_KEY, {"live-worker": int(time.time() * 1000)})
    expire_all(redis_client)

    assert reconciler.sweep().requeued == 1

    [rid] = redis_client.lrange("dramatiq:bcwebhooks.catalog", 0, -1)
    sent = Message.decode(redis_client.hget("dramatiq:bcwebhooks.catalog.msgs", rid))
    assert (sent.actor_name, sent.args, "eta" in sent.options) == (
        FLUSH_ACTOR_NAME,
        ("product", "token-1"),
        False,
    )
    assert redis_client.hlen("dramatiq:bcwebhooks.catalog.DQ.msgs") == 0  # the stranded copy is released
    assert ledger.claim(flush_id("product", "token-1"))  # still tracked until the flush has run
    ledger.forget(flush_id("product", "token-1"))
    assert ledger.pending() == 0
