"""Backfill against the sandbox (a real HTTP server) and a real Redis: gaps in, processed events out,
resumable from its checkpoints, nothing lost and nothing twice."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from typing import Any, cast

import dramatiq
import httpx
import pytest
import redis
from dramatiq import Message

from service.backfill_command import gap_from_args, parse_moment
from service.events import BACKFILL_QUEUE_NAME, ledger_id
from service.gaps import GAPS_GROUP, GAPS_STREAM, Gap, gap_key, gap_progress, recent_gaps, request_backfill
from service.sandbox.access import DEFAULT_CLIENT_SECRET
from service.sandbox.app import SandboxConfig, create_sandbox_app
from service.settings import ConfigError, load_settings
from tests.conftest import make_settings
from tests.helpers import app_environ
from tests.servers import ThreadedUvicorn
from workers.backfill import BackfillIntake, run_slice
from workers.broker import build_app_context, build_context
from workers.events import ProcessedEvent
from workers.fence import FENCED
from workers.handlers import HandlerRegistry
from workers.ledger import LEDGER_KEY, Reconciler, backfill_id, done_key
from workers.processing import WorkerContext, deliver
from workers.sweeps import families_for

PRODUCTS, ORDERS, CUSTOMERS = 600, 30, 12


class Outbox:
    """A broker that keeps what is enqueued, for the test to run (or lose) by hand."""

    def __init__(self) -> None:
        self.messages: list[Message[Any]] = []

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        self.messages.append(message)
        return message

    def take(self) -> Message[Any]:
        return self.messages.pop(0)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    config = SandboxConfig(products=PRODUCTS, orders=ORDERS, customers=CUSTOMERS, quota=10_000)
    with ThreadedUvicorn(create_sandbox_app(config)) as server:
        yield server.base_url


@pytest.fixture
def context(sandbox: str, redis_url: str, redis_client: redis.Redis) -> Iterator[WorkerContext]:
    settings = make_settings(
        BIGCOMMERCE_STORE_HASH="sandbox",
        BIGCOMMERCE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        BIGCOMMERCE_API_URL=sandbox,
        BIGCOMMERCE_ACCESS_TOKEN="sandbox-token",
        BCWEBHOOKS_COALESCE_WINDOW_MS="0",
    )
    built = build_context(settings, redis_url)
    built.handlers = HandlerRegistry()
    yield built
    built.store_api.client.close()


def file_gap(client: redis.Redis, outbox: Outbox, context: WorkerContext, **gap: Any) -> str:
    gap_id = request_backfill(
        client, Gap("sandbox", **{"since": 0.0, "until": None, "reason": "test", **gap})
    )
    intake = BackfillIntake(context.ledger, cast(dramatiq.Broker, outbox), consumer="test")
    assert intake.poll(block_ms=0) == 1
    return gap_id


def run_all(outbox: Outbox, context: WorkerContext, limit: int = 100) -> None:
    for _ in range(limit):
        if not outbox.messages:
            return
        gap_id, family = outbox.take().args
        run_slice(gap_id, family, context, cast(dramatiq.Broker, outbox), seconds=0)
    raise AssertionError("the backfill did not finish")


def stream(client: redis.Redis, context: WorkerContext) -> list[ProcessedEvent]:
    entries: Any = client.xrange(context.output.name)
    return [ProcessedEvent.from_json(fields[b"event"]) for _, fields in entries]


def recovered(events: list[ProcessedEvent], resource_type: str) -> list[str]:
    return [
        e.resource_id or "" for e in events if e.source == "backfill" and e.resource_type == resource_type
    ]


def test_a_gap_round_trips_through_its_stream(redis_client: redis.Redis) -> None:
    gap = Gap("abc", 10.0, 20.0, "hook 3 deactivated", ("store/order/*",), requested_at=30.0)
    request_backfill(redis_client, gap)

    entries: Any = redis_client.xrange(GAPS_STREAM)
    assert Gap.from_json(entries[-1][1][b"gap"]) == gap
    with pytest.raises(ValueError, match="ends before it starts"):
        request_backfill(redis_client, Gap("abc", 20.0, 10.0, "backwards"))


def test_a_gap_becomes_one_event_per_changed_record_marked_backfill(
    sandbox: str, redis_client: redis.Redis, context: WorkerContext
) -> None:
    before = redis_client.time()[0]
    httpx.post(f"{sandbox}/_sandbox/changes", json={"products": 300, "orders": 7, "customers": 3})
    outbox = Outbox()
    gap_id = file_gap(redis_client, outbox, context, since=float(before))

    run_all(outbox, context)

    events = stream(redis_client, context)
    progress = gap_progress(redis_client, gap_id)
    assert sorted(map(int, recovered(events, "product"))) == list(range(1, 301))
    assert sorted(map(int, recovered(events, "order"))) == list(range(100, 107))
    assert sorted(map(int, recovered(events, "customer"))) == [1, 2, 3]
    product = next(e for e in events if e.resource_type == "product")
    assert product.scope == "store/product/updated" and "variants" in product.record
    assert all(f["state"] == "done" for f in progress.families.values())
    assert progress.families["products"]["calls"] <= 3  # 250 a page
    assert {"carts", "variants", "categories"} <= set(progress.unswept)
    assert redis_client.zcard(LEDGER_KEY) == 0
    assert recent_gaps(redis_client)[0].gap_id == gap_id


def test_a_killed_backfill_resumes_from_its_checkpoint_with_nothing_lost_or_twice(
    sandbox: str, redis_client: redis.Redis, context: WorkerContext
) -> None:
    before = redis_client.time()[0]
    httpx.post(f"{sandbox}/_sandbox/changes", json={"products": PRODUCTS})
    outbox = Outbox()
    gap_id = file_gap(redis_client, outbox, context, since=float(before), scopes=("store/product/*",))
    gap_id, family = outbox.take().args
    run_slice(gap_id, family, context, cast(dramatiq.Broker, outbox), seconds=0)  # one page
    outbox.messages.clear()  # the next slice's message is lost with its worker
    saved = gap_progress(redis_client, gap_id).families["products"]
    entries = redis_client.zrange(LEDGER_KEY, 0, -1)
    redis_client.zadd(LEDGER_KEY, dict.fromkeys(entries, 0))  # its lease runs out

    report = Reconciler(context.ledger, cast(dramatiq.Broker, outbox)).sweep()
    run_all(outbox, context)

    events = recovered(stream(redis_client, context), "product")
    assert saved["state"] == "running" and saved["listed"] == 250
    assert report.requeued == 1 and outbox.messages == []
    assert sorted(map(int, events)) == list(range(1, PRODUCTS + 1))  # every one, each once
    assert gap_progress(redis_client, gap_id).families["products"]["state"] == "done"


def test_a_page_read_again_after_a_lost_checkpoint_delivers_nothing_twice(
    sandbox: str, redis_client: redis.Redis, context: WorkerContext
) -> None:
    before = redis_client.time()[0]
    httpx.post(f"{sandbox}/_sandbox/changes", json={"customers": CUSTOMERS})
    outbox = Outbox()
    file_gap(redis_client, outbox, context, since=float(before), scopes=("store/customer/*",))
    message = outbox.take()
    gap_id, family = message.args
    run_slice(gap_id, family, context, cast(dramatiq.Broker, outbox), seconds=0)
    redis_client.hset(gap_key(gap_id), "family:customers", "{}")  # its checkpoint was never saved
    context.ledger.open(backfill_id(gap_id, family), message, 60_000)
    run_slice(gap_id, family, context, cast(dramatiq.Broker, outbox), seconds=0)

    events = recovered(stream(redis_client, context), "customer")
    assert sorted(map(int, events)) == list(range(1, CUSTOMERS + 1))
    progress = gap_progress(redis_client, gap_id).families["customers"]
    assert progress["delivered"] == 0 and progress["fenced"] == CUSTOMERS


def test_the_backfill_queue_is_named_for_the_workers() -> None:
    assert BACKFILL_QUEUE_NAME == "bcwebhooks.backfill"
    sweep, unswept = families_for(("store/cart/*",))
    assert sweep == [] and [u.name for u in unswept] == ["carts"]


def test_backfill_times_and_stores_from_the_command_line() -> None:
    now = 1_000_000.0
    single = make_settings(BIGCOMMERCE_STORE_HASH="abc", BIGCOMMERCE_ACCESS_TOKEN="t")
    args = argparse.Namespace(since="2h", until=None, store=None, scope=None, reason="on demand")

    assert parse_moment("90s", now) == now - 90
    assert parse_moment("2026-11-23T08:00:00Z", now) == parse_moment("2026-11-23T08:00:00", now)
    assert gap_from_args(args, single, now).since == now - 7200
    with pytest.raises(ConfigError, match="not a time"):
        parse_moment("yesterday", now)
    with pytest.raises(ConfigError, match="serves store abc"):
        gap_from_args(argparse.Namespace(**{**vars(args), "store": "other"}), single, now)


def test_a_live_event_older_than_the_delivered_record_finishes_as_superseded(
    sandbox: str, redis_client: redis.Redis, context: WorkerContext
) -> None:
    before = redis_client.time()[0]
    httpx.post(f"{sandbox}/_sandbox/changes", json={"products": 2})
    outbox = Outbox()
    file_gap(redis_client, outbox, context, since=float(before), scopes=("store/product/*",))
    run_all(outbox, context)
    backfilled = next(e for e in stream(redis_client, context) if e.resource_id == "1")
    stale = {**backfilled.record, "date_modified": "2026-01-05T09:00:00+00:00"}
    late = dataclasses.replace(backfilled, event_id="id:late", source="webhook", record=stale)
    redis_client.zadd(LEDGER_KEY, {ledger_id("id:late"): 0})  # accepted by the receiver, unfinished

    ran = deliver(late, context)

    assert ran == []
    assert redis_client.zscore(LEDGER_KEY, ledger_id("id:late")) is None  # finished: nothing is lost
    assert redis_client.sismember(done_key("id:late"), FENCED)
    assert "id:late" not in {e.event_id for e in stream(redis_client, context)}


def test_a_gap_of_families_no_sweep_can_recover_is_done_and_names_them(
    redis_client: redis.Redis, context: WorkerContext
) -> None:
    outbox = Outbox()
    gap_id = file_gap(redis_client, outbox, context, scopes=("store/cart/*", "store/sku/*"))

    progress = gap_progress(redis_client, gap_id)
    assert outbox.messages == [] and progress.done
    assert set(progress.unswept) == {"carts", "variants"}


def test_app_mode_backfills_with_the_store_s_own_token_and_fails_an_uninstalled_store(
    sandbox: str, redis_url: str, redis_client: redis.Redis
) -> None:
    settings = load_settings(app_environ(BIGCOMMERCE_API_URL=sandbox, BCWEBHOOKS_COALESCE_WINDOW_MS="0"))
    app = build_app_context(settings, redis_url)
    assert app.stores is not None
    app.stores.stores.record_install("sandbox", "sandbox-token", "store_v2_customers", {}, {})
    before = redis_client.time()[0]
    httpx.post(f"{sandbox}/_sandbox/changes", json={"customers": 2})
    outbox = Outbox()
    installed = file_gap(redis_client, outbox, app, since=float(before), scopes=("store/customer/*",))
    ghost = request_backfill(redis_client, Gap("ghost", 0.0, None, "test", ("store/customer/*",)))
    BackfillIntake(app.ledger, cast(dramatiq.Broker, outbox), consumer="test").poll(block_ms=0)

    run_all(outbox, app)

    events = stream(redis_client, app)
    assert {e.store_hash for e in events} == {"sandbox"}
    assert {"1", "2"} <= set(recovered(events, "customer"))
    assert gap_progress(redis_client, installed).done
    failed = gap_progress(redis_client, ghost).families["customers"]
    assert failed["state"] == "failed" and "uninstalled" in failed["error"]


def test_the_intake_creates_its_group_again_when_redis_lost_it(
    redis_client: redis.Redis, context: WorkerContext
) -> None:
    outbox = Outbox()
    intake = BackfillIntake(context.ledger, cast(dramatiq.Broker, outbox), consumer="test")
    intake.poll(block_ms=0)  # creates the group
    redis_client.delete(GAPS_STREAM)  # a promoted replica that never had it
    request_backfill(redis_client, Gap("sandbox", 0.0, None, "test", ("store/customer/*",)))

    assert intake.poll(block_ms=0) == 1


def test_a_request_a_dead_reader_held_is_claimed_and_opened_by_another(
    redis_client: redis.Redis, context: WorkerContext
) -> None:
    outbox = Outbox()
    first = BackfillIntake(context.ledger, cast(dramatiq.Broker, outbox), consumer="dead")
    first.poll(block_ms=0)  # creates the group
    gap_id = request_backfill(redis_client, Gap("sandbox", 0.0, None, "test", ("store/customer/*",)))
    redis_client.xreadgroup(GAPS_GROUP, "dead", {GAPS_STREAM: ">"}, count=1)  # read, never acknowledged

    second = BackfillIntake(context.ledger, cast(dramatiq.Broker, outbox), consumer="alive", claim_idle_ms=0)

    assert second.poll(block_ms=0) == 1
    assert gap_progress(redis_client, gap_id).opened
    assert [m.args for m in outbox.messages] == [(gap_id, "customers")]
    assert redis_client.xpending(GAPS_STREAM, GAPS_GROUP)["pending"] == 0


def test_unsorted_families_are_swept_too(
    sandbox: str, redis_client: redis.Redis, context: WorkerContext
) -> None:
    before = redis_client.time()[0]
    token = {"X-Auth-Token": "sandbox-token"}
    httpx.put(f"{sandbox}/stores/sandbox/v3/pricelists/1", headers=token, json={"name": "Wholesale 2"})
    httpx.post(f"{sandbox}/_sandbox/trigger", json={"scope": "store/subscriber/updated", "id": 3})
    outbox = Outbox()
    gap_id = file_gap(
        redis_client, outbox, context, since=float(before), scopes=("store/subscriber/*", "store/priceList/*")
    )

    run_all(outbox, context)

    events = stream(redis_client, context)
    assert recovered(events, "subscriber") == ["3"]
    assert recovered(events, "price_list") == ["1"]
    assert set(gap_progress(redis_client, gap_id).unswept) == {"price_list_assignments"}


def test_price_list_records_are_swept_one_price_list_at_a_time(
    sandbox: str, redis_client: redis.Redis, context: WorkerContext
) -> None:
    before = redis_client.time()[0]
    token = {"X-Auth-Token": "sandbox-token"}
    second = httpx.post(f"{sandbox}/stores/sandbox/v3/pricelists", headers=token, json={"name": "Retail"})
    second_id = second.json()["data"]["id"]
    for price_list_id in (1, second_id):
        body = [{"variant_id": 1, "currency": "usd", "price": 9.5}]
        answer = httpx.put(
            f"{sandbox}/stores/sandbox/v3/pricelists/{price_list_id}/records", headers=token, json=body
        )
        assert answer.status_code == 200
    outbox = Outbox()
    gap_id = file_gap(
        redis_client, outbox, context, since=float(before), scopes=("store/priceList/record/*",)
    )

    run_all(outbox, context)

    events = [e for e in stream(redis_client, context) if e.resource_type == "price_list_records"]
    assert sorted(e.resource_id or "" for e in events) == ["1:1:USD", f"{second_id}:1:USD"]
    assert events[0].scope in ("store/priceList/record/created", "store/priceList/record/updated")
    assert events[0].record[0]["price"] == 9.5
    assert gap_progress(redis_client, gap_id).families["price_list_records"]["state"] == "done"
