"""Every StoreApi operation against the sandbox over real HTTP, area by area, through a handler's StoreApi
that declared write access to that area only: results typed and unwrapped, each call on its endpoint."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from service.bigcommerce import (
    AREAS,
    ApiClient,
    MissingScope,
    NotFound,
    StoreApi,
    ValidationFailed,
    operations,
    parse_access,
)
from service.bigcommerce.guard import Operation
from service.sandbox.access import ApiAccount
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.servers import ThreadedUvicorn, wait_for


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig())) as server:
        yield server.base_url


@pytest.fixture
def client(sandbox: str) -> Iterator[ApiClient]:
    with ApiClient(sandbox, "sandbox", "sandbox-token", max_attempts=1) as api_client:
        yield api_client


def writer(client: ApiClient, area: str) -> StoreApi:
    """A handler's StoreApi that may write (and read) `area` and nothing else."""
    return StoreApi(client).for_handler(f"tests.{area}", parse_access({area: "write"}, area))


def assert_every_operation_ran_on_its_endpoint(logs: list[dict[str, Any]], area: str, sandbox: str) -> None:
    """Each operation of `area` was called and succeeded, and the sandbox served each call's endpoint."""
    calls = [line for line in logs if line["event"] == "handler.api_call"]
    assert {line["method"] for line in calls if line["outcome"] == "ok"} == {
        op.name for op in operations() if op.area == area
    }
    served = httpx.get(f"{sandbox}/_sandbox/requests").json()["requests"]
    seen = {f"{r['method']} {r['path']}" for r in served}
    assert [line["resource"] for line in calls if line["resource"] not in seen] == []


def test_products(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "products")
    with capture_logs() as logs:
        assert [p["id"] for p in api.products.list(ids=[1, 2])] == [1, 2]
        first = api.products.get(1, include="variants")
        assert first["id"] == 1 and first["variants"][0]["product_id"] == 1
        created = api.products.create(
            {"name": "Typed widget", "type": "physical", "weight": 1.5, "price": 9.5}
        )
        assert created["name"] == "Typed widget" and isinstance(created["id"], int)
        assert api.products.update(created["id"], {"price": 12.25})["price"] == 12.25
        assert [p["id"] for p in api.products.list(name="Typed widget")] == [created["id"]]
        api.products.delete(created["id"])
        with pytest.raises(NotFound):
            api.products.get(created["id"])
        with pytest.raises(ValidationFailed) as refused:
            api.products.create({"name": "x" * 256, "type": "physical", "weight": 1, "price": 1})
    assert "name" in refused.value.errors
    assert_every_operation_ran_on_its_endpoint(logs, "products", sandbox)


def test_variants(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "variants")
    with capture_logs() as logs:
        listed = api.variants.list(2)
        assert listed and all(v["product_id"] == 2 for v in listed)
        assert api.variants.get(2, listed[0]["id"])["sku"] == listed[0]["sku"]
        created = api.variants.create(2, {"sku": "TYPED-VARIANT-1", "price": 4.5})
        assert (created["product_id"], created["sku"], created["price"]) == (2, "TYPED-VARIANT-1", 4.5)
        assert api.variants.update(2, created["id"], {"inventory_level": 7})["inventory_level"] == 7
        batch = api.variants.update_many(
            [{"id": created["id"], "price": 5.0}, {"id": listed[0]["id"], "purchasing_disabled": True}]
        )
        assert (batch[0]["id"], batch[0]["price"]) == (created["id"], 5.0)
        assert batch[1]["purchasing_disabled"] is True
    assert_every_operation_ran_on_its_endpoint(logs, "variants", sandbox)


def test_categories(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "categories")
    with capture_logs() as logs:
        (tree,) = api.categories.trees()
        assert tree["id"] == 1 and tree["channels"] == [1]
        existing = api.categories.list(tree_ids=[tree["id"]])
        assert existing and all(c["tree_id"] == 1 for c in existing)
        created = api.categories.create(
            [
                {"name": "Typed shelf", "parent_id": 0, "tree_id": 1},
                {"name": "Typed bin", "parent_id": 0, "tree_id": 1},
            ]
        )
        ids = [c["category_id"] for c in created]
        assert [c["name"] for c in created] == ["Typed shelf", "Typed bin"]
        api.categories.update([{"category_id": ids[0], "description": "typed"}])
        read_back = api.categories.list(category_ids=ids)
        assert [c["category_id"] for c in read_back] == ids
        assert read_back[0]["description"] == "typed"
        api.categories.delete(ids)
        assert api.categories.list(category_ids=ids) == []
    assert_every_operation_ran_on_its_endpoint(logs, "categories", sandbox)


def test_brands(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "brands")
    with capture_logs() as logs:
        assert api.brands.list()
        created = api.brands.create({"name": "Typed Brand Co"})
        assert api.brands.get(created["id"])["name"] == "Typed Brand Co"
        assert api.brands.list(name="Typed Brand Co") == [api.brands.get(created["id"])]
        renamed = api.brands.update(created["id"], {"name": "Typed Brand Ltd", "page_title": "Typed"})
        assert (renamed["name"], renamed["page_title"]) == ("Typed Brand Ltd", "Typed")
        api.brands.delete(created["id"])
        with pytest.raises(NotFound):
            api.brands.get(created["id"])
    assert_every_operation_ran_on_its_endpoint(logs, "brands", sandbox)


def test_price_lists(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "price_lists")
    variant = StoreApi(client).variants.list(3)[0]
    with capture_logs() as logs:
        created = api.price_lists.create({"name": "Typed wholesale", "active": True})
        assert api.price_lists.get(created["id"])["name"] == "Typed wholesale"
        assert created["id"] in [p["id"] for p in api.price_lists.list()]
        renamed = api.price_lists.update(created["id"], {"name": "Typed trade", "active": False})
        assert (renamed["name"], renamed["active"]) == ("Typed trade", False)
        api.price_lists.upsert_records(
            created["id"], [{"variant_id": variant["id"], "currency": "USD", "price": 7.25}]
        )
        (record,) = api.price_lists.records(created["id"], variant_ids=[variant["id"]])
        assert (record["variant_id"], record["currency"], record["price"]) == (variant["id"], "USD", 7.25)
        assert api.price_lists.record(created["id"], variant["id"], "USD")["price"] == 7.25
        api.price_lists.delete(created["id"])
        with pytest.raises(NotFound):
            api.price_lists.get(created["id"])
    assert_every_operation_ran_on_its_endpoint(logs, "price_lists", sandbox)


def test_webhooks(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "webhooks")
    destination = "https://example.test/webhooks/bigcommerce"
    with capture_logs() as logs:
        created = api.webhooks.create("store/order/created", destination, headers={"X-Secret": "v"})
        assert (created["scope"], created["destination"], created["is_active"]) == (
            "store/order/created",
            destination,
            True,
        )
        assert api.webhooks.get(created["id"])["id"] == created["id"]
        assert [h["id"] for h in api.webhooks.list(destination=destination)] == [created["id"]]
        assert api.webhooks.update(created["id"], {"is_active": False})["is_active"] is False
        admin = api.webhooks.admin()
        assert created["id"] in [h["id"] for h in admin["hooks_list"]]
        assert api.webhooks.delete(created["id"])["id"] == created["id"]
        assert api.webhooks.list(destination=destination) == []
    assert_every_operation_ran_on_its_endpoint(logs, "webhooks", sandbox)


ADDRESS = {
    "first_name": "Ada",
    "last_name": "Typed",
    "street_1": "1 Main St",
    "city": "Austin",
    "state": "Texas",
    "zip": "78701",
    "country": "United States",
    "country_iso2": "US",
    "email": "ada.typed@example.com",
}


def test_orders(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "orders")
    with capture_logs() as logs:
        created = api.orders.create(
            {
                "billing_address": ADDRESS,
                "products": [{"product_id": 1, "quantity": 2}],
                "staff_notes": "typed",
            }
        )
        order_id = created["id"]
        got = api.orders.get(order_id)
        assert (got["staff_notes"], got["billing_address"]["zip"]) == ("typed", "78701")
        assert got["products"]["url"].startswith(sandbox)
        (line,) = api.orders.products(order_id)
        assert (line["order_id"], line["product_id"], line["quantity"]) == (order_id, 1, 2)
        assert api.orders.shipping_addresses(order_id)[0]["order_id"] == order_id
        assert api.orders.coupons(order_id) == []
        assert api.orders.update(order_id, {"status_id": 2})["status_id"] == 2
        assert order_id in [o["id"] for o in api.orders.list(status_id=2)]
        assert api.orders.count(status_id=2)["count"] >= 1
        assert 2 in [status["id"] for status in api.orders.statuses()]
        api.orders.archive(order_id)
        assert order_id not in [o["id"] for o in api.orders.list()]
    assert_every_operation_ran_on_its_endpoint(logs, "orders", sandbox)


def test_customers(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "customers")
    with capture_logs() as logs:
        (created,) = api.customers.create(
            [{"email": "grace.typed@example.com", "first_name": "Grace", "last_name": "Typed"}]
        )
        assert created["email"] == "grace.typed@example.com" and isinstance(created["id"], int)
        (updated,) = api.customers.update([{"id": created["id"], "company": "Typed Inc"}])
        assert updated["company"] == "Typed Inc"
        assert [c["id"] for c in api.customers.list(email="grace.typed@example.com")] == [created["id"]]
        assert [c["id"] for c in api.customers.list(name="grace typed")] == [created["id"]]
        api.customers.delete([created["id"]])
        assert api.customers.list(ids=[created["id"]]) == []
    assert_every_operation_ran_on_its_endpoint(logs, "customers", sandbox)


def test_carts(client: ApiClient, sandbox: str) -> None:
    api = writer(client, "carts")
    with capture_logs() as logs:
        created = api.carts.create([{"product_id": 1, "quantity": 1}])
        cart_id = created["id"]
        assert [item["product_id"] for item in created["line_items"]["physical_items"]] == [1]
        grown = api.carts.add_items(cart_id, [{"product_id": 2, "quantity": 3}])
        assert sorted(i["product_id"] for i in grown["line_items"]["physical_items"]) == [1, 2]
        assert api.carts.get(cart_id)["id"] == cart_id
        api.carts.delete(cart_id)
        with pytest.raises(NotFound):
            api.carts.get(cart_id)
    assert_every_operation_ran_on_its_endpoint(logs, "carts", sandbox)


def test_checkouts_convert_a_cart_into_an_order(client: ApiClient, sandbox: str) -> None:
    customer_id = StoreApi(client).customers.list()[0]["id"]
    cart = StoreApi(client).carts.create([{"product_id": 3, "quantity": 2}], customer_id=customer_id)
    api = writer(client, "checkouts")
    with capture_logs() as logs:
        checkout = api.checkouts.get(cart["id"])
        assert checkout["id"] == cart["id"] and checkout["cart"]["id"] == cart["id"]
        placed = api.checkouts.create_order(cart["id"])
        assert isinstance(placed["id"], int)
    assert_every_operation_ran_on_its_endpoint(logs, "checkouts", sandbox)
    order = StoreApi(client).orders.get(placed["id"])
    assert (order["customer_id"], order["cart_id"]) == (customer_id, cart["id"])
    with pytest.raises(NotFound):
        StoreApi(client).carts.get(cart["id"])


FAMILIES = sorted({area.scope for area in AREAS.values()})


@pytest.fixture(scope="module")
def scoped_sandbox() -> Iterator[dict[str, ApiClient]]:
    """Per scope family, a token with every other scope, and one with only that family's read-only form."""
    others = [
        ApiAccount(f"without-{family}", f"c-{family}", "s", frozenset(f for f in FAMILIES if f != family))
        for family in FAMILIES
    ]
    readers = [
        ApiAccount(f"read-{family}", f"r-{family}", "s", frozenset({f"{family}_read_only"}))
        for family in FAMILIES
    ]
    config = SandboxConfig(accounts=[*others, *readers], quota=100_000)  # ~150 calls: no 429 waits
    with ThreadedUvicorn(create_sandbox_app(config)) as server:
        clients = {
            a.token: ApiClient(server.base_url, "sandbox", a.token, max_attempts=1) for a in others + readers
        }
        yield clients
        for api_client in clients.values():
            api_client.close()


def call(clients: dict[str, ApiClient], token: str, method: str, path: str) -> None:
    clients[token].request(method, path, json=None if method in ("GET", "DELETE") else {})


@pytest.mark.parametrize("op", operations(), ids=lambda op: op.name)
def test_the_sandbox_enforces_each_operation_s_scope(
    op: Operation, scoped_sandbox: dict[str, ApiClient]
) -> None:
    family = op.scope.removesuffix("_read_only")
    path = op.path.format_map(defaultdict(lambda: "1"))

    with pytest.raises(MissingScope) as refused:
        call(scoped_sandbox, f"without-{family}", op.http_method, path)
    assert family in refused.value.needed
    if op.level == "write":
        with pytest.raises(MissingScope):
            call(scoped_sandbox, f"read-{family}", op.http_method, path)
    else:
        try:
            call(scoped_sandbox, f"read-{family}", op.http_method, path)
        except NotFound:
            pass  # the read-only scope let it through; record 1 of this kind need not exist


def test_a_second_price_record_upsert_in_parallel_waits_a_second_not_the_quota_window() -> None:
    app = create_sandbox_app(SandboxConfig())
    state = app.state.sandbox
    state.bulk_seconds_per_record = 0.01  # 200 records hold the store's upsert job for 2 s
    variants = list(state.store.variants())[:200]
    first = [{"variant_id": v, "currency": "USD", "price": 1.0} for v in variants]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with ThreadedUvicorn(app) as server, ThreadPoolExecutor(1) as pool:
        api = StoreApi(ApiClient(server.base_url, "sandbox", "sandbox-token"))
        second = StoreApi(ApiClient(server.base_url, "sandbox", "sandbox-token", sleep=sleep))
        price_list = api.price_lists.create({"name": "Typed bulk"})
        running = pool.submit(api.price_lists.upsert_records, price_list["id"], first)
        wait_for(lambda: bool(state.running), 10, "the first upsert to hold the job")
        second.price_lists.upsert_records(
            price_list["id"], [{"variant_id": variants[0], "currency": "EUR", "price": 2}]
        )
        running.result(30)
        currencies = {r["currency"] for r in api.price_lists.records(price_list["id"])}

    assert waits and set(waits) == {1.0}, waits  # 429s, each waited a second (the quota was not spent)
    assert currencies == {"USD", "EUR"}
