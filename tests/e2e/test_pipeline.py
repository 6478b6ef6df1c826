"""Signed callback → receiver → Redis → worker → sandbox API → stream entry, with failures on the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dramatiq
import httpx
import pytest

from service.app import DELIVERY_EXCEPTION_PATH
from service.bigcommerce import parse_access
from service.deadletters import request_replay
from service.sandbox.access import DEFAULT_CLIENT_SECRET
from tests.e2e.conftest import MAX_RETRIES, NO_PRODUCTS_TOKEN, TOKEN, Stack
from tests.servers import wait_for
from workers import dlq
from workers.events import ProcessedEvent

pytestmark = pytest.mark.e2e


def test_changes_come_out_of_the_stream_with_their_current_records(stack: Stack) -> None:
    for scope in ("store/product/*", "store/order/*", "store/customer/*", "store/cart/*"):
        stack.hook(scope)

    stack.trigger("store/product/updated", 5)
    stack.trigger("store/order/statusUpdated", 110)
    stack.trigger("store/customer/created")
    stack.trigger("store/cart/created")
    wait_for(lambda: len(stack.stream()) == 5, 15, "five processed events")

    events = {event.scope: event for event in stack.stream()}
    product = httpx.get(f"{stack.sandbox}/stores/sandbox/v3/catalog/products/5", headers=TOKEN).json()["data"]
    assert events["store/product/updated"].record["price"] == product["price"]
    status = events["store/order/statusUpdated"]
    assert status.record["order"]["id"] == 110 and status.record["products"]
    assert status.envelope["data"]["status"]["new_status_id"] == status.record["order"]["status_id"]
    assert events["store/customer/created"].record["email"].startswith("new.")
    assert events["store/cart/created"].resource_type == "cart"
    assert all(e.store_hash == "sandbox" and e.webhook_id and not e.deleted for e in events.values())
    assert dlq.list_dead_letters(stack.redis) == []


def test_a_deleted_resource_is_delivered_as_deleted(stack: Stack) -> None:
    stack.hook("store/product/*")

    stack.trigger("store/product/deleted", 9)
    wait_for(lambda: len(stack.stream()) == 1, 15, "the processed event")

    [event] = stack.stream()
    assert (event.scope, event.resource_id, event.deleted, event.record) == (
        "store/product/deleted",
        "9",
        True,
        None,
    )


def test_429_and_5xx_from_the_api_are_recovered_without_loss_or_duplicates(stack: Stack) -> None:
    stack.hook("store/customer/*")
    stack.fault(429, 2, "/v3/customers")
    stack.fault(503, 2, "/v3/customers")

    stack.trigger("store/customer/updated", 3)
    wait_for(lambda: len(stack.stream()) == 1, 30, "the processed event")

    [event] = stack.stream()
    assert event.record["id"] == 3
    stats = httpx.get(f"{stack.sandbox}/_sandbox/stats").json()
    assert stats["calls"]["/v3/customers"] == 5  # two 429s, two 503s, then the answer
    assert dlq.list_dead_letters(stack.redis) == []


@pytest.mark.parametrize("stack", [{"token": NO_PRODUCTS_TOKEN}], indirect=True)
def test_a_missing_scope_is_dead_lettered_at_once_naming_the_scope(stack: Stack) -> None:
    stack.hook("store/product/*")

    stack.trigger("store/product/updated", 2)
    wait_for(lambda: bool(dlq.list_dead_letters(stack.redis)), 15, "the dead letter")

    [letter] = dlq.list_dead_letters(stack.redis)
    assert letter.scope == "store/product/updated"
    assert "store_v2_products_read_only or store_v2_products" in letter.reason["error"]
    assert letter.reason["retries"] == 0
    assert stack.stream() == []


def test_a_failing_handler_is_retried_without_rerunning_others_then_dead_lettered_and_replayed(
    stack: Stack,
) -> None:
    calls = {"audit": 0, "flaky": 0}
    broken = {"on": True}

    def audit(event: ProcessedEvent, api: Any) -> None:
        calls["audit"] += 1

    def flaky(event: ProcessedEvent, api: Any) -> None:
        calls["flaky"] += 1
        if broken["on"]:
            raise RuntimeError("downstream unavailable")

    stack.context.handlers.add(audit, "store/order/*", name="audit")
    stack.context.handlers.add(flaky, "store/order/statusUpdated", name="flaky")
    stack.hook("store/order/statusUpdated")

    stack.trigger("store/order/statusUpdated", 120)
    wait_for(lambda: bool(dlq.list_dead_letters(stack.redis)), 20, "the dead letter")

    [letter] = dlq.list_dead_letters(stack.redis)
    assert letter.reason["error"] == "RuntimeError: downstream unavailable"
    assert letter.reason["retries"] == MAX_RETRIES + 1
    assert (calls["audit"], calls["flaky"]) == (1, MAX_RETRIES + 1)
    assert len(stack.stream()) == 1  # the stream output succeeded on the first try and is not repeated

    broken["on"] = False
    assert dlq.replay(stack.redis, dramatiq.get_broker(), [letter]) == 1
    wait_for(lambda: calls["flaky"] == MAX_RETRIES + 2, 15, "the replayed handler")

    assert dlq.list_dead_letters(stack.redis) == []
    assert (calls["audit"], len(stack.stream())) == (1, 1)


def test_a_replay_requested_through_redis_is_carried_out_by_a_worker(stack: Stack) -> None:
    stack.hook("store/order/statusUpdated")
    stack.fault(403, 1, "/v2/orders")  # the token lacks the scope, once
    stack.trigger("store/order/statusUpdated", 121)
    wait_for(lambda: bool(dlq.list_dead_letters(stack.redis)), 15, "the dead letter")
    [letter] = dlq.list_dead_letters(stack.redis)

    request_replay(stack.redis, ["not-a-dead-letter", letter.id])  # what the dashboard's button sends
    wait_for(lambda: len(stack.stream()) == 1, 15, "the replayed event")

    assert dlq.list_dead_letters(stack.redis) == []
    assert stack.stream()[0].scope == "store/order/statusUpdated"


def test_handlers_can_write_back_through_the_api(stack: Stack) -> None:
    def note_on_order(event: ProcessedEvent, api: Any) -> None:
        if event.scope == "store/order/created":
            api.update_order(int(event.resource_id or 0), staff_notes="seen by bcwebhooks")

    orders_write = parse_access({"orders": "write"}, "note")
    stack.context.handlers.add(note_on_order, "store/order/created", name="note", access=orders_write)
    stack.hook("store/order/created")

    [event] = stack.trigger("store/order/created")
    order_id = event["data"]["id"]

    def noted() -> bool:
        order = httpx.get(f"{stack.sandbox}/stores/sandbox/v2/orders/{order_id}", headers=TOKEN).json()
        return bool(order["staff_notes"] == "seen by bcwebhooks")

    wait_for(noted, 15, "the handler's write")
    assert json.loads(json.dumps(stack.stream()[0].record))["order"]["id"] == order_id


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("stack", [{"token": NO_PRODUCTS_TOKEN}], indirect=True)
def test_dlq_and_tail_commands(stack: Stack, redis_url: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_URL": redis_url,
        "BIGCOMMERCE_STORE_HASH": "sandbox",
        "BIGCOMMERCE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
    }
    stack.hook("store/product/*")
    stack.hook("store/order/*")
    stack.trigger("store/product/updated", 2)
    stack.trigger("store/order/updated", 101)
    wait_for(lambda: bool(dlq.list_dead_letters(stack.redis)) and len(stack.stream()) == 1, 15, "one of each")

    listed = cli("dlq", "list", env=env)
    [letter] = json.loads(cli("dlq", "list", "--json", env=env).stdout)
    shown = json.loads(cli("dlq", "show", letter["id"], env=env).stdout)
    tail = cli("tail", "--from-start", "--count", "1", env=env)
    grouped = cli("tail", "--group", "crm", "--from-start", "--count", "1", "--json", env=env)
    pending = stack.redis.xpending(stack.context.output.name, "crm")
    nothing = cli("dlq", "replay", "--scope", "store/cart/*", env=env)
    purged = cli("dlq", "purge", "--all", env=env)

    assert listed.stdout.startswith("1 dead letter(s)") and "MissingScope" in listed.stdout
    assert letter["scope"] == "store/product/updated" and "store_v2_products" in letter["error"]
    assert shown["message"]["args"][0]["envelope"]["scope"] == "store/product/updated"
    assert "store/order/updated" in tail.stdout and "order:101" in tail.stdout
    assert json.loads(grouped.stdout)["resource_id"] == "101"
    assert pending["pending"] == 0  # read through the group and acknowledged
    assert nothing.returncode == 1 and "nothing matches" in nothing.stderr
    assert purged.stdout.strip() == "purged 1 dead letter(s)"
    assert dlq.list_dead_letters(stack.redis) == []


ONE_SCOPE_PER_FAMILY = {
    "store/order/created": "order",
    "store/order/message/created": "order_message",
    "store/order/refund/created": "refund",
    "store/order/transaction/created": "order_transactions",
    "store/order/metafield/created": "order_metafield",
    "store/product/updated": "product",
    "store/product/inventory/updated": "product",
    "store/product/variant/metafield/created": "variant_metafield",
    "store/sku/updated": "variant",
    "store/category/updated": "category",
    "store/brand/metafield/created": "brand_metafield",
    "store/customer/updated": "customer",
    "store/customer/address/created": "customer_address",
    "store/cart/lineItem/created": "cart",
    "store/cart/converted": "order",
    "store/shipment/created": "shipment",
    "store/subscriber/created": "subscriber",
    "store/information/updated": "store",
    "store/channel/updated": "channel",
    "store/metafield/created": "metafield",
    "store/modifier/updated": "products",
    "store/priceList/record/updated": "price_list_records",
}


def test_one_scope_of_every_family_comes_out_of_the_stream_with_its_record(stack: Stack) -> None:
    for scope in ONE_SCOPE_PER_FAMILY:
        stack.hook(scope)
    # Converting the cart deletes it: the line-item event must be processed before, or its cart is gone.
    last = "store/cart/converted"
    for scope in ONE_SCOPE_PER_FAMILY:
        if scope != last:
            stack.trigger(scope)
    wait_for(lambda: len(stack.stream()) == len(ONE_SCOPE_PER_FAMILY) - 1, 30, "every family's event")
    stack.trigger(last)
    wait_for(lambda: len(stack.stream()) == len(ONE_SCOPE_PER_FAMILY), 30, "the converted cart's order")

    events = {event.scope: event for event in stack.stream()}
    assert {scope: events[scope].resource_type for scope in ONE_SCOPE_PER_FAMILY} == ONE_SCOPE_PER_FAMILY
    assert [scope for scope, event in events.items() if event.deleted or not event.record] == []
    assert dlq.list_dead_letters(stack.redis) == []


def test_an_unknown_scope_is_delivered_without_a_record(stack: Stack) -> None:
    from tests.helpers import encode, envelope, signed

    for index in range(2):
        raw = encode(
            envelope(
                scope="store/brand/created", producer="stores/sandbox", data={"type": "brand", "id": index}
            )
        )
        response = httpx.post(stack.receiver, content=raw, headers=signed(raw, secret=DEFAULT_CLIENT_SECRET))
        assert response.status_code == 200
    wait_for(lambda: len(stack.stream()) == 2, 15, "both events")

    assert [(e.scope, e.resource_type, e.record, e.deleted) for e in stack.stream()] == [
        ("store/brand/created", None, None, False)
    ] * 2


def test_after_hooks_apply_changes_and_delivery_exceptions_come_out_processed(
    stack: Stack, redis_url: str, tmp_path: Any
) -> None:
    exceptions = stack.receiver.replace("/webhooks/bigcommerce", DELIVERY_EXCEPTION_PATH)
    declaration = tmp_path / "hooks.toml"
    declaration.write_text(
        f'receiver = "{stack.receiver}"\n[[hook]]\nscope = "store/product/*"\n'
        f'[delivery_exception]\nenabled = true\nreceiver = "{exceptions}"\n'
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_URL": redis_url,
        "BIGCOMMERCE_STORE_HASH": "sandbox",
        "BIGCOMMERCE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "BIGCOMMERCE_ACCESS_TOKEN": "sandbox-token",
        "BIGCOMMERCE_API_URL": stack.sandbox,
    }
    applied = cli("hooks", "apply", "--file", str(declaration), "--allow-http", env=env)
    assert applied.returncode == 0, applied.stderr
    broken = {"scope": "store/subscriber/*", "destination": "http://127.0.0.1:9/refused"}  # a hook that fails
    hook_id = httpx.post(f"{stack.sandbox}/stores/sandbox/v3/hooks", headers=TOKEN, json=broken).json()[
        "data"
    ]["id"]

    stack.trigger("store/product/updated", 8)
    stack.trigger("store/subscriber/created")
    wait_for(lambda: len(stack.stream()) == 2, 20, "the change and the delivery exception")

    events = {event.scope: event for event in stack.stream()}
    assert events["store/product/updated"].record["id"] == 8
    failure = events["store/hook/deliveryException"]
    assert failure.envelope["data"]["error_code"] == 90001
    assert (failure.resource_type, failure.record["id"]) == ("hook", hook_id)


def test_an_order_event_overtakes_a_catalog_backlog(stack: Stack) -> None:
    from tests.helpers import encode, envelope, signed

    def post(scope: str, data: dict[str, Any]) -> None:
        raw = encode(envelope(scope=scope, producer="stores/sandbox", data=data))
        assert (
            httpx.post(
                stack.receiver, content=raw, headers=signed(raw, secret=DEFAULT_CLIENT_SECRET)
            ).status_code
            == 200
        )

    def slow_catalog_handler(event: ProcessedEvent, api: Any) -> None:
        time.sleep(0.15)  # a catalog handler slow enough for a backlog to build up

    stack.context.handlers.add(slow_catalog_handler, "store/product/*", name="slow")
    with ThreadPoolExecutor(8) as pool:  # a burst, faster than the worker drains it
        list(pool.map(lambda i: post("store/product/updated", {"type": "product", "id": i + 1}), range(60)))
    post("store/order/updated", {"type": "order", "id": 100})
    wait_for(lambda: len(stack.stream()) == 61, 30, "every event")

    events = stack.stream()
    order = next(e for e in events if e.scope == "store/order/updated")
    overtaken = [e for e in events[events.index(order) + 1 :] if e.received_at_ms < order.received_at_ms]
    assert len(overtaken) >= 5, len(overtaken)  # FIFO overtakes none
