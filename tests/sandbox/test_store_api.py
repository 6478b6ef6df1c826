"""Seed 003's 40 endpoints in the sandbox: each behind its OAuth scope, with the seed's behaviours."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from service.sandbox.access import ALL_SCOPES, ApiAccount
from service.sandbox.app import SandboxConfig, create_sandbox_app

BASE = "/stores/sandbox"
FULL = {"X-Auth-Token": "sandbox-token"}
NEW_PRODUCT = {"name": "Scope Mug", "type": "physical", "weight": 1, "price": 5}
# (group, method, path, OAuth scope, JSON body, status) for the 40 endpoints of seed 003.
SEED_ENDPOINTS: list[tuple[str, str, str, str, Any, int]] = [
    ("products", "GET", "/v3/catalog/products", "store_v2_products", None, 200),
    ("products", "POST", "/v3/catalog/products", "store_v2_products", NEW_PRODUCT, 200),
    ("products", "GET", "/v3/catalog/products/1", "store_v2_products", None, 200),
    ("products", "PUT", "/v3/catalog/products/1", "store_v2_products", {"price": 3}, 200),
    ("products", "DELETE", "/v3/catalog/products/2", "store_v2_products", None, 204),
    ("variants", "GET", "/v3/catalog/products/1/variants", "store_v2_products", None, 200),
    ("variants", "POST", "/v3/catalog/products/1/variants", "store_v2_products", {"sku": "NEW-1"}, 200),
    ("variants", "PUT", "/v3/catalog/variants", "store_v2_products", [{"id": 1, "price": 4}], 200),
    ("categories", "GET", "/v3/catalog/trees", "store_v2_products", None, 200),
    ("categories", "GET", "/v3/catalog/trees/categories", "store_v2_products", None, 200),
    ("categories", "POST", "/v3/catalog/trees/categories", "store_v2_products", [{"name": "Sale"}], 201),
    ("categories", "PUT", "/v3/catalog/trees/categories", "store_v2_products", [{"category_id": 2}], 200),
    ("categories", "DELETE", "/v3/catalog/trees/categories?category_id:in=3", "store_v2_products", None, 202),
    ("brands", "GET", "/v3/catalog/brands", "store_v2_products", None, 200),
    ("brands", "POST", "/v3/catalog/brands", "store_v2_products", {"name": "Newco"}, 200),
    ("brands", "PUT", "/v3/catalog/brands/2", "store_v2_products", {"name": "Acme", "page_title": "B"}, 200),
    ("brands", "DELETE", "/v3/catalog/brands/3", "store_v2_products", None, 204),
    ("price lists", "GET", "/v3/pricelists", "store_v2_products", None, 200),
    (
        "price lists",
        "PUT",
        "/v3/pricelists/1/records",
        "store_v2_products",
        [{"variant_id": 1, "currency": "USD", "price": 1}],
        200,
    ),
    ("price lists", "POST", "/v3/pricelists", "store_v2_products", {"name": "VIP"}, 200),
    ("price lists", "DELETE", "/v3/pricelists/1", "store_v2_products", None, 204),
    ("orders", "GET", "/v2/orders", "store_v2_orders", None, 200),
    ("orders", "GET", "/v2/orders/100", "store_v2_orders", None, 200),
    (
        "orders",
        "POST",
        "/v2/orders",
        "store_v2_orders",
        {"billing_address": {"zip": "78701"}, "products": [{"product_id": 1, "quantity": 1}]},
        200,
    ),
    ("orders", "PUT", "/v2/orders/101", "store_v2_orders", {"status_id": 2}, 200),
    ("orders", "DELETE", "/v2/orders/102", "store_v2_orders", None, 204),
    ("customers", "GET", "/v3/customers", "store_v2_customers", None, 200),
    (
        "customers",
        "POST",
        "/v3/customers",
        "store_v2_customers",
        [{"email": "new@example.com", "first_name": "N", "last_name": "C"}],
        200,
    ),
    ("customers", "PUT", "/v3/customers", "store_v2_customers", [{"id": 1, "notes": "vip"}], 200),
    ("customers", "DELETE", "/v3/customers?id:in=2", "store_v2_customers", None, 204),
    ("carts", "POST", "/v3/carts", "store_cart", {"line_items": [{"product_id": 1, "quantity": 1}]}, 201),
    ("carts", "GET", "/v3/carts/{cart}", "store_cart", None, 200),
    ("carts", "POST", "/v3/carts/{cart}/items", "store_cart", {"line_items": [{"product_id": 3}]}, 201),
    ("carts", "DELETE", "/v3/carts/{cart}", "store_cart", None, 204),
    ("checkouts", "GET", "/v3/checkouts/{cart}", "store_checkout", None, 200),
    ("checkouts", "POST", "/v3/checkouts/{cart}/orders", "store_checkout", None, 200),
    ("webhooks", "GET", "/v3/hooks", "store_v2_information", None, 200),
    (
        "webhooks",
        "POST",
        "/v3/hooks",
        "store_v2_information",
        {"scope": "store/order/created", "destination": "https://example.com/hooks"},
        200,
    ),
    ("webhooks", "PUT", "/v3/hooks/{hook}", "store_v2_information", {"is_active": False}, 200),
    ("webhooks", "DELETE", "/v3/hooks/{hook}", "store_v2_information", None, 200),
]


def account(token: str, scopes: set[str]) -> ApiAccount:
    return ApiAccount(token, f"{token}-client", f"{token}-secret", frozenset(scopes))


@pytest.fixture
def api() -> Iterator[TestClient]:
    others = set(ALL_SCOPES)
    accounts = [
        account("sandbox-token", others),
        *(account(f"read-{s}", {f"{s}_read_only"}) for s in ALL_SCOPES),
        *(account(f"all-but-{s}", others - {s}) for s in ALL_SCOPES),
        *(account(f"only-{s}", {s}) for s in ALL_SCOPES),
    ]
    with TestClient(create_sandbox_app(SandboxConfig(accounts=accounts))) as client:
        yield client


def fill(api: TestClient, path: str, token: str) -> str:
    """Put a fresh cart or hook of the token's client into `{cart}` / `{hook}`."""
    if "{cart}" in path:
        body = {"customer_id": 1, "line_items": [{"product_id": 1, "quantity": 1}]}
        cart = api.post(f"{BASE}/v3/carts", headers=FULL, json=body).json()["data"]
        path = path.replace("{cart}", cart["id"])
    if "{hook}" in path:
        body = {"scope": "store/cart/created", "destination": f"https://example.com/{token}"}
        created = api.post(f"{BASE}/v3/hooks", headers={"X-Auth-Token": token}, json=body)
        if created.status_code == 403:  # the token may not create hooks: any id, the scope check comes first
            created = api.post(f"{BASE}/v3/hooks", headers=FULL, json=body)
        path = path.replace("{hook}", str(created.json()["data"]["id"]))
    return path


def call(api: TestClient, method: str, path: str, token: str, body: Any) -> httpx.Response:
    return api.request(method, f"{BASE}{path}", headers={"X-Auth-Token": token}, json=body)


def test_seed_003_lists_40_endpoints_in_ten_groups() -> None:
    groups = {group for group, *_ in SEED_ENDPOINTS}

    assert len(SEED_ENDPOINTS) == 40
    assert len({(method, path) for _, method, path, *_ in SEED_ENDPOINTS}) == 40
    assert len(groups) == 10


@pytest.mark.parametrize(("group", "method", "path", "scope", "body", "status"), SEED_ENDPOINTS)
def test_each_endpoint_answers_with_its_scope_and_refuses_without_it(
    api: TestClient, group: str, method: str, path: str, scope: str, body: Any, status: int
) -> None:
    without = call(api, method, fill(api, path, f"all-but-{scope}"), f"all-but-{scope}", body)
    read_only = call(api, method, fill(api, path, f"read-{scope}"), f"read-{scope}", body)
    granted = call(api, method, fill(api, path, f"only-{scope}"), f"only-{scope}", body)

    assert without.status_code == 403
    assert read_only.status_code == (status if method == "GET" else 403)
    assert granted.status_code == status, granted.text


def test_variants_batch_update_changes_each_and_fires_product_updated(api: TestClient) -> None:
    variants = api.get(f"{BASE}/v3/catalog/variants?product_id:in=4,5", headers=FULL).json()["data"]
    body = [{"id": v["id"], "price": 1.5 + i} for i, v in enumerate(variants)]

    answer = api.put(f"{BASE}/v3/catalog/variants", headers=FULL, json=body)
    after = api.get(f"{BASE}/v3/catalog/variants?product_id:in=4,5", headers=FULL).json()["data"]
    fired = {(e["scope"], e["data"]["id"]) for e in api.get("/_sandbox/events").json()["events"]}

    assert answer.status_code == 200
    assert [v["price"] for v in after] == [1.5 + i for i in range(len(variants))]
    assert {("store/product/updated", 4), ("store/product/updated", 5)} <= fired


def test_variants_batch_update_with_an_unknown_id_changes_nothing(api: TestClient) -> None:
    before = api.get(f"{BASE}/v3/catalog/variants?id:in=1", headers=FULL).json()["data"][0]["price"]

    answer = api.put(f"{BASE}/v3/catalog/variants", headers=FULL, json=[{"id": 1, "price": 2}, {"id": 999}])

    assert answer.status_code == 422 and "[1].id" in answer.json()["errors"]
    assert api.get(f"{BASE}/v3/catalog/variants?id:in=1", headers=FULL).json()["data"][0]["price"] == before


def test_category_tree_bulk_writes_create_update_and_delete_with_events(api: TestClient) -> None:
    created = api.post(
        f"{BASE}/v3/catalog/trees/categories",
        headers=FULL,
        json=[{"name": "Sale", "parent_id": 1, "tree_id": 1}, {"name": "New", "tree_id": 1}],
    ).json()["data"]
    ids = [c["category_id"] for c in created]
    api.put(
        f"{BASE}/v3/catalog/trees/categories",
        headers=FULL,
        json=[{"category_id": ids[0], "name": "Sale!"}, {"category_id": ids[1], "is_visible": False}],
    )
    deleted = api.delete(f"{BASE}/v3/catalog/trees/categories?category_id:in={ids[0]},{ids[1]}", headers=FULL)
    left = api.get(f"{BASE}/v3/catalog/trees/categories?category_id:in={ids[0]}", headers=FULL)
    scopes = [e["scope"] for e in api.get("/_sandbox/events").json()["events"]]

    assert deleted.status_code == 202
    assert left.json()["data"] == []
    for action in ("created", "updated", "deleted"):
        assert scopes.count(f"store/category/{action}") == 2
        assert scopes.count(f"store/channel/1/category/{action}") == 2


def test_price_list_record_upserts_run_one_at_a_time_per_store() -> None:
    async def race() -> tuple[list[int], int, dict[str, Any]]:
        app = create_sandbox_app(SandboxConfig())
        variants = list(app.state.sandbox.store.variants())[:100]
        body = [{"variant_id": v, "currency": "USD", "price": 2.5} for v in variants]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            url = f"{BASE}/v3/pricelists/1/records"
            first, second = await asyncio.gather(
                client.put(url, headers=FULL, json=body), client.put(url, headers=FULL, json=body)
            )
            after = await client.put(url, headers=FULL, json=body[:1])
        refused = first if first.status_code == 429 else second
        return sorted([first.status_code, second.status_code]), after.status_code, refused.json()

    pair, after, refused = asyncio.run(race())

    assert pair == [200, 429]
    assert after == 200
    assert refused["status"] == 429 and "already running" in refused["title"]


def test_checkout_conversion_places_the_order_and_fires_order_created(api: TestClient) -> None:
    body = {"customer_id": 1, "line_items": [{"product_id": 2, "quantity": 2}]}
    cart = api.post(f"{BASE}/v3/carts", headers=FULL, json=body).json()["data"]
    checkout = api.get(f"{BASE}/v3/checkouts/{cart['id']}", headers=FULL).json()["data"]

    converted = api.post(f"{BASE}/v3/checkouts/{cart['id']}/orders", headers=FULL)
    order_id = converted.json()["data"]["id"]
    order = api.get(f"{BASE}/v2/orders/{order_id}", headers=FULL).json()
    events = api.get("/_sandbox/events").json()["events"]

    assert checkout["cart"]["id"] == cart["id"]
    assert order["cart_id"] == cart["id"] and order["items_total"] == 2
    assert order["total_inc_tax"] == f"{checkout['grand_total']:.4f}"
    assert {"scope": "store/order/created", "data": {"type": "order", "id": order_id}} in events
    assert {"scope": "store/channel/1/order/created", "data": {"order_id": order_id}} in events
    assert any(e["scope"] == "store/cart/converted" and e["data"]["orderId"] == order_id for e in events)
    assert api.get(f"{BASE}/v3/carts/{cart['id']}", headers=FULL).status_code == 404


def test_deleting_an_order_archives_it(api: TestClient) -> None:
    archived = api.delete(f"{BASE}/v2/orders/105", headers=FULL)
    still_there = api.get(f"{BASE}/v2/orders/105", headers=FULL).json()
    listed = [o["id"] for o in api.get(f"{BASE}/v2/orders?limit=250", headers=FULL).json()]
    deleted = [o["id"] for o in api.get(f"{BASE}/v2/orders?is_deleted=true", headers=FULL).json()]
    scopes = [e["scope"] for e in api.get("/_sandbox/events").json()["events"]]

    assert archived.status_code == 204
    assert still_there["is_deleted"] is True
    assert 105 not in listed and deleted == [105]
    assert "store/order/archived" in scopes


def test_v2_answers_are_flat_and_v3_answers_are_enveloped(api: TestClient) -> None:
    order = api.get(f"{BASE}/v2/orders/100", headers=FULL).json()
    orders = api.get(f"{BASE}/v2/orders", headers=FULL).json()
    product = api.get(f"{BASE}/v3/catalog/products/1", headers=FULL).json()
    v2_error = api.get(f"{BASE}/v2/orders/1", headers=FULL).json()
    v3_error = api.get(f"{BASE}/v3/catalog/products/99999", headers=FULL).json()

    assert order["id"] == 100 and isinstance(orders, list)
    assert set(product) == {"data", "meta"}
    assert isinstance(v2_error, list) and v2_error[0]["status"] == 404
    assert v3_error["status"] == 404 and "title" in v3_error


def test_order_links_point_at_the_store_that_answered(api: TestClient) -> None:
    order = api.get(f"{BASE}/v2/orders/100", headers=FULL).json()

    for name in ("products", "shipping_addresses", "coupons"):
        assert order[name]["url"] == f"http://testserver{BASE}/v2/orders/100/{name}"
        assert order[name]["resource"] == f"/orders/100/{name}"


def test_a_channel_specific_hook_receives_the_channel_s_cart_events(api: TestClient) -> None:
    body = {"scope": "store/channel/1/cart/*", "destination": "https://example.com/channel"}
    assert api.post(f"{BASE}/v3/hooks", headers=FULL, json=body).status_code == 200
    cart = api.post(f"{BASE}/v3/carts", headers=FULL, json={"line_items": [{"product_id": 1}]}).json()["data"]

    subscribers = app_state(api).hooks.subscribers("store/channel/1/cart/created")
    channel_events = [e for e in api.get("/_sandbox/events").json()["events"] if "/channel/" in e["scope"]]

    assert [h.scope for h in subscribers] == ["store/channel/1/cart/*"]
    assert {"scope": "store/channel/1/cart/created", "data": {"cart_id": cart["id"]}} in channel_events


@pytest.mark.parametrize(
    "scope",
    [
        "store/channel/metafield/created",
        "store/channel/metafield/*",
        "store/inventory/location/metafield/updated",
        "store/inventory/location/metafield/*",
        "store/channel/2/order/statusUpdated",
    ],
)
def test_hooks_accept_the_documented_scopes(api: TestClient, scope: str) -> None:
    body = {"scope": scope, "destination": "https://example.com/hooks"}

    assert api.post(f"{BASE}/v3/hooks", headers=FULL, json=body).status_code == 200


def app_state(api: TestClient) -> Any:
    return api.app.state.sandbox  # type: ignore[attr-defined]
