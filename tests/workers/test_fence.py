"""The version fence against a real Redis: never older, never the same version twice with a backfill."""

from __future__ import annotations

import json
import threading
from typing import Any

import redis

from workers.events import ProcessedEvent
from workers.fence import FENCE_TTL_SECONDS, fence_key, mark_for, modified_ms
from workers.ledger import done_key
from workers.outputs import StreamOutput

STREAM = "bcwebhooks:test-fence-stream"


def product_event(
    event_id: str, modified: str, price: float = 10.0, source: str = "webhook"
) -> ProcessedEvent:
    return ProcessedEvent(
        event_id=event_id,
        webhook_id=None,
        scope="store/product/updated",
        store_hash="fencestore",
        resource_type="product",
        resource_id="7",
        record={"id": 7, "price": price, "date_modified": modified},
        deleted=False,
        envelope={},
        received_at_ms=0,
        fetched_at_ms=0,
        source=source,
    )


def emit(output: StreamOutput, event: ProcessedEvent) -> str | None:
    mark = mark_for(event.store_hash, event.resource_type, event.resource_id, event.record, event.source)
    return output.emit_once(event, done_key(event.event_id), "output:stream", 60, fence=mark)


def delivered(client: redis.Redis) -> list[str]:
    entries: Any = client.xrange(STREAM)
    return [json.loads(fields[b"event"])["event_id"] for _, fields in entries]


def test_an_older_record_than_one_delivered_is_superseded(redis_client: redis.Redis) -> None:
    output = StreamOutput(redis_client, STREAM, 1000)
    newer = emit(output, product_event("new", "2026-11-23T10:00:05+00:00", 12.0))
    older = emit(output, product_event("old", "2026-11-23T10:00:01+00:00", 11.0))

    assert newer is not None and older == "fenced:superseded"
    assert delivered(redis_client) == ["new"]
    assert redis_client.sismember(done_key("old"), "fenced")
    assert 0 < int(redis_client.ttl(fence_key("fencestore"))) <= FENCE_TTL_SECONDS  # type: ignore[arg-type]


def test_a_backfill_does_not_deliver_a_version_already_delivered(redis_client: redis.Redis) -> None:
    output = StreamOutput(redis_client, STREAM, 1000)
    at = "2026-11-23T10:00:05+00:00"
    emit(output, product_event("live", at))
    again = emit(output, product_event("backfill-1", at, source="backfill"))
    late_live = emit(output, product_event("backfill-2", "2026-11-23T10:00:09+00:00", source="backfill"))
    repeated = emit(output, product_event("live-late", "2026-11-23T10:00:09+00:00"))

    assert again == "fenced:duplicate"
    assert late_live is not None and repeated == "fenced:duplicate"  # a live event after the backfill
    assert delivered(redis_client) == ["live", "backfill-2"]


def test_two_live_events_of_one_version_are_both_delivered(redis_client: redis.Redis) -> None:
    output = StreamOutput(redis_client, STREAM, 1000)
    at = "2026-11-23T10:00:05+00:00"

    assert emit(output, product_event("created", at)) is not None
    assert emit(output, product_event("updated", at)) is not None


def test_a_different_record_within_the_same_second_is_delivered(redis_client: redis.Redis) -> None:
    output = StreamOutput(redis_client, STREAM, 1000)
    at = "2026-11-23T10:00:05+00:00"
    emit(output, product_event("first", at, 10.0))

    assert emit(output, product_event("second", at, 10.5, source="backfill")) is not None


def test_concurrent_deliveries_of_one_version_write_one_entry(redis_client: redis.Redis) -> None:
    output = StreamOutput(redis_client, STREAM, 1000)
    at = "2026-11-23T10:00:05+00:00"
    results: list[str | None] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(emit(output, product_event(f"e{i}", at, source="backfill")))
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(delivered(redis_client)) == 1
    assert results.count("fenced:duplicate") == 7


def test_records_without_a_modification_time_or_deleted_are_not_fenced() -> None:
    assert mark_for("s", "cart", "c1", {"id": "c1"}, "webhook") is None
    assert mark_for("s", "product", "1", None, "webhook") is None
    order = {"order": {"id": 100, "date_modified": "Tue, 05 Jan 2026 09:00:00 +0000"}}
    mark = mark_for("s", "order", "100", order, "backfill")
    assert mark is not None and mark.version_ms == modified_ms("2026-01-05T09:00:00Z")
