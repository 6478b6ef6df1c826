"""Forwards against a real Redis and a real destination: created with the stream entry, never lost."""

from __future__ import annotations

import base64
import os
import time

import pytest
import redis
from dramatiq import Message
from standardwebhooks import Webhook

from service.events import LEDGER_KEY, LEDGER_MESSAGES_KEY, ledger_id
from tests.destinations import Destination
from tests.servers import RedisProcess
from workers import dlq
from workers.broker import build_broker
from workers.events import ProcessedEvent
from workers.ledger import MAX_REQUEUES, REQUEUES_KEY, DeliveryLedger, Reconciler, done_key, forward_id
from workers.outputs import (
    DeclaredOutput,
    DestinationRejected,
    DestinationUnavailable,
    Forwarding,
    HttpOutput,
    StreamOutput,
    forward,
    forward_lease_deadline,
    webhook_id_for,
)

FORWARD_QUEUE = "dramatiq:bcwebhooks.forwards"
STREAM = "bcwebhooks:test-stream"


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def declared(name: str, url: str, scopes: tuple[str, ...] = ("*",), **policy: float) -> DeclaredOutput:
    return DeclaredOutput(name, url, scopes, secret(), **policy)  # type: ignore[arg-type]


def event(event_id: str = "id:fwd", scope: str = "store/order/created") -> ProcessedEvent:
    return ProcessedEvent(
        event_id=event_id,
        webhook_id=None,
        scope=scope,
        store_hash="teststore",
        resource_type="order",
        resource_id="7",
        record={"id": 7},
        deleted=False,
        envelope={"scope": scope},
        received_at_ms=0,
        fetched_at_ms=0,
    )


def emit(client: redis.Redis, forwarding: Forwarding, processed: ProcessedEvent) -> str | None:
    output = StreamOutput(client, STREAM, 1000)
    works = forwarding.works_for(processed)
    key = done_key(processed.event_id)
    return output.emit_once(processed, key, "output:stream", 60, works, forward_lease_deadline())


def queued_forwards(client: redis.Redis) -> list[Message[object]]:
    ids = client.lrange(FORWARD_QUEUE, 0, -1)
    return [Message.decode(client.hget(f"{FORWARD_QUEUE}.msgs", rid)) for rid in ids]


def expire_all(client: redis.Redis) -> None:
    entries = client.zrange(LEDGER_KEY, 0, -1)
    if entries:
        client.zadd(LEDGER_KEY, dict.fromkeys(entries, 0))


def test_forwards_are_written_with_the_stream_entry_and_survive_a_redis_restart(
    own_redis: RedisProcess,
) -> None:
    client = redis.Redis.from_url(own_redis.url)
    forwarding = Forwarding.build(
        (
            declared("orders", "http://127.0.0.1:9/", ("store/order/*",), retries=3, min_backoff_ms=70),
            declared("products", "http://127.0.0.1:9/", ("store/product/*",)),
        ),
        client,
    )
    assert emit(client, forwarding, event()) is not None
    client.close()

    own_redis.stop()  # SIGTERM: what was acknowledged is in the append-only file
    own_redis.start()

    client = redis.Redis.from_url(own_redis.url)
    [message] = queued_forwards(client)
    assert message.args[:3] == ("orders", "id:fwd", "store/order/created")
    assert ProcessedEvent.from_json(message.args[3]) == event()
    assert (message.options["max_retries"], message.options["min_backoff"]) == (3, 70)
    work = ledger_id(forward_id("orders", "id:fwd"))
    assert client.zscore(LEDGER_KEY, work) is not None
    assert Message.decode(client.hget(LEDGER_MESSAGES_KEY, work)).message_id == message.message_id
    assert client.xlen(STREAM) == 1
    assert emit(client, forwarding, event()) is None  # a retry of the event writes neither again
    assert (len(queued_forwards(client)), client.xlen(STREAM)) == (1, 1)
    forwarding.close()
    client.close()


def test_a_lost_forward_is_sent_again_and_delivered_once_with_its_stable_id(
    redis_url: str, redis_client: redis.Redis
) -> None:
    ledger = DeliveryLedger(redis_client, 3600)
    with Destination() as destination:
        forwarding = Forwarding.build((declared("crm", destination.url),), redis_client)
        emit(redis_client, forwarding, event())
        lost = redis_client.lpop(FORWARD_QUEUE)  # acked without being delivered (a worker died)
        redis_client.hdel(f"{FORWARD_QUEUE}.msgs", lost)
        expire_all(redis_client)

        assert Reconciler(ledger, build_broker(redis_url)).sweep().requeued == 1

        [message] = queued_forwards(redis_client)
        assert forward(forwarding.outputs, ledger, *message.args[:2], message.args[3])
        assert not forward(forwarding.outputs, ledger, *message.args[:2], message.args[3])  # a duplicate
        [received] = destination.received
        assert received.webhook_id == webhook_id_for("crm", "id:fwd")
        Webhook(forwarding.outputs["crm"].declared.secret).verify(received.body, received.headers)
        assert ledger.pending() == 0
        forwarding.close()


def test_a_forward_requeued_too_often_is_dead_lettered_for_its_destination(
    redis_url: str, redis_client: redis.Redis
) -> None:
    ledger = DeliveryLedger(redis_client, 3600)
    forwarding = Forwarding.build((declared("crm", "http://127.0.0.1:9/"),), redis_client)
    emit(redis_client, forwarding, event())
    redis_client.delete(FORWARD_QUEUE, f"{FORWARD_QUEUE}.msgs")
    redis_client.hset(REQUEUES_KEY, ledger_id(forward_id("crm", "id:fwd")), MAX_REQUEUES)
    expire_all(redis_client)

    assert Reconciler(ledger, build_broker(redis_url)).sweep().dead_lettered == 1

    [letter] = dlq.select(redis_client, None, None, False, destination="crm")
    assert (letter.kind, letter.event_id, letter.scope) == ("forward", "id:fwd", "store/order/created")
    assert dlq.replay(redis_client, build_broker(redis_url), [letter]) == 1
    [message] = queued_forwards(redis_client)
    assert (message.args[0], "retries" in message.options) == ("crm", False)
    assert ledger.pending() == 1
    forwarding.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, DestinationUnavailable),
        (503, DestinationUnavailable),
        (408, DestinationUnavailable),
        (429, DestinationUnavailable),
        (400, DestinationRejected),
        (404, DestinationRejected),
        (410, DestinationRejected),
        (301, DestinationRejected),
    ],
)
def test_answers_are_retried_or_refused_by_what_another_attempt_could_change(
    redis_client: redis.Redis, status: int, error: type[Exception]
) -> None:
    with Destination() as destination:
        output = HttpOutput(declared("crm", destination.url), redis_client)
        destination.fail_next(1, status)

        with pytest.raises(error, match=f"answered {status}"):
            output.post("msg_1", "{}")
        assert output.post("msg_1", "{}") == 200
        output.close()


def test_a_destination_that_does_not_answer_in_time_is_retried(redis_client: redis.Redis) -> None:
    with Destination() as destination:
        output = HttpOutput(declared("crm", destination.url, timeout=0.2), redis_client)
        destination.hold()
        try:
            with pytest.raises(DestinationUnavailable, match=r"no answer within 0\.2 s"):
                output.post("msg_1", "{}")
        finally:
            destination.release()
        output.close()


def test_a_destination_takes_at_most_its_concurrency_and_a_dead_holders_slot_frees_itself(
    redis_client: redis.Redis,
) -> None:
    output = HttpOutput(declared("crm", "http://127.0.0.1:9/", concurrency=2), redis_client)
    first, second = output.acquire_slot(), output.acquire_slot()
    assert first and second and output.acquire_slot() is None

    output.release_slot(first)
    third = output.acquire_slot()
    assert third is not None and output.acquire_slot() is None
    redis_client.zadd(output.slots_key, {second: int(time.time() * 1000) - 1})  # its worker died
    assert output.acquire_slot() is not None
    output.close()
