"""Every documented scope family resolves to its current record through the sandbox store's real API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.bigcommerce import ApiClient
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.servers import ThreadedUvicorn
from workers.resolvers import RULES, fetch_batch, resolve, rule_for

TOKEN = "sandbox-token"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig(allow_http=True))) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def client(sandbox: str) -> Iterator[ApiClient]:
    with ApiClient(sandbox, "sandbox", TOKEN) as api:
        yield api


def fire(sandbox: str, scope: str, record_id: Any = None) -> dict[str, Any]:
    """Make the change in the sandbox; return the `data` of the event it fires for `scope`."""
    response = httpx.post(f"{sandbox}/_sandbox/trigger", json={"scope": scope, "id": record_id})
    assert response.status_code == 200, response.text
    return next(e["data"] for e in response.json()["events"] if e["scope"] == scope)


def check_order(record: Any) -> bool:
    order_id = record["order"]["id"]
    lines, addresses = record["products"], record["shipping_addresses"]
    return bool(lines) and all(x["order_id"] == order_id for x in [*lines, *addresses])


@pytest.mark.parametrize(
    ("scope", "resource_type", "check"),
    [
        ("store/order/created", "order", check_order),
        ("store/order/statusUpdated", "order", lambda r: r["order"]["status_id"] in (2, 10)),
        ("store/order/message/created", "order_message", lambda r: r["message"] == "Where is my order?"),
        ("store/order/refund/created", "refund", lambda r: r["reason"] == "Return"),
        ("store/order/transaction/created", "order_transactions", lambda r: r[-1]["event"] == "capture"),
        ("store/order/metafield/created", "order_metafield", lambda r: r["resource_type"] == "order"),
        ("store/product/updated", "product", lambda r: "variants" in r and "images" in r),
        ("store/product/inventory/updated", "product", lambda r: r["inventory_level"] >= 5),
        ("store/product/metafield/created", "product_metafield", lambda r: r["resource_type"] == "product"),
        (
            "store/product/variant/metafield/created",
            "variant_metafield",
            lambda r: r["resource_type"] == "variant",
        ),
        ("store/sku/updated", "variant", lambda r: "sku" in r and "product_id" in r),
        ("store/sku/inventory/updated", "variant", lambda r: r["inventory_level"] >= 3),
        ("store/category/updated", "category", lambda r: "category_id" in r and "tree_id" in r),
        ("store/brand/metafield/created", "brand_metafield", lambda r: r["resource_type"] == "brand"),
        (
            "store/customer/updated",
            "customer",
            lambda r: r["notes"].startswith("Updated") and "addresses" in r,
        ),
        ("store/customer/address/created", "customer_address", lambda r: r["address1"] == "2 New Street"),
        (
            "store/customer/payment/instrument/default/updated",
            "customer_stored_instruments",
            lambda r: r[0]["is_default"],
        ),
        ("store/cart/created", "cart", lambda r: r["line_items"]["physical_items"]),
        ("store/cart/lineItem/created", "cart", lambda r: len(r["line_items"]["physical_items"]) >= 2),
        ("store/cart/converted", "order", check_order),
        ("store/subscriber/created", "subscriber", lambda r: r["first_name"] == "New"),
        ("store/shipment/created", "shipment", lambda r: r["tracking_number"]),
        ("store/information/updated", "store", lambda r: r["name"].startswith("Sandbox Outfitters ")),
        ("store/channel/updated", "channel", lambda r: r["name"] == "Storefront"),
        ("store/metafield/created", "metafield", lambda r: r["resource_type"] == "location"),
        ("store/modifier/updated", "products", lambda r: len(r) == 2),
        ("store/option/updated", "products", lambda r: len(r) == 2),
        ("store/priceList/updated", "price_list", lambda r: r["name"] == "Wholesale"),
        ("store/priceList/record/updated", "price_list_records", lambda r: r[0]["currency"] == "USD"),
        ("store/priceList/records/updated", "price_list_records", lambda r: len(r) == 2),
        ("store/priceList/assignment/updated", "price_list_assignments", lambda r: r[0]["channel_id"] == 1),
        ("store/inventory/location/updated", "location", lambda r: r["label"] == "Main warehouse"),
    ],
)
def test_scope_resolves_to_the_current_record(
    sandbox: str, client: ApiClient, scope: str, resource_type: str, check: Any
) -> None:
    data = fire(sandbox, scope)

    resolution = resolve(scope, data, client)

    assert resolution is not None
    assert (resolution.resource_type, resolution.deleted) == (resource_type, False)
    assert resolution.record
    assert check(resolution.record)


def test_delivery_exception_resolves_to_the_hook(sandbox: str, client: ApiClient) -> None:
    hook = httpx.post(
        f"{sandbox}/stores/sandbox/v3/hooks",
        headers={"X-Auth-Token": TOKEN},
        json={"scope": "store/order/*", "destination": "https://example.com/hooks"},
    ).json()["data"]

    resolution = resolve(
        "store/hook/deliveryException", {"type": "webhook", "id": hook["id"], "error_code": 90001}, client
    )

    assert resolution is not None and resolution.record["destination"] == "https://example.com/hooks"


@pytest.mark.parametrize(
    "scope",
    [
        "store/product/deleted",
        "store/customer/deleted",
        "store/subscriber/deleted",
        "store/sku/deleted",
        "store/category/deleted",
        "store/shipment/deleted",
        "store/product/metafield/deleted",
    ],
)
def test_gone_resources_resolve_as_deleted_without_a_record(
    sandbox: str, client: ApiClient, scope: str
) -> None:
    data = fire(sandbox, scope)

    resolution = resolve(scope, data, client)

    assert resolution is not None
    assert (resolution.deleted, resolution.record) == (True, None)


def test_a_deleted_cart_is_not_fetched(client: ApiClient) -> None:
    resolution = resolve("store/cart/deleted", {"type": "cart", "id": "0934-gone"}, client)

    assert resolution is not None and (resolution.deleted, resolution.resource_id) == (True, "0934-gone")


def test_status_updated_keeps_its_data_and_app_uninstalled_passes_through(client: ApiClient) -> None:
    uninstalled = resolve("store/app/uninstalled", {"type": "store"}, client)

    assert uninstalled is not None and (uninstalled.record, uninstalled.deleted) == (None, False)
    assert (
        resolve("store/brand/created", {"type": "brand", "id": 1}, client) is None
    )  # not a documented scope


def test_every_documented_scope_has_a_rule() -> None:
    from service.bigcommerce.webhook_scopes import STORE_SCOPES

    missing = [scope for scope in STORE_SCOPES if rule_for(scope) is None]

    assert missing == []


def test_batch_fetch_returns_the_same_records_as_single_fetches(client: ApiClient) -> None:
    rule = rule_for("store/customer/updated")
    assert rule is not None and rule.batch_path

    batch = fetch_batch(client, rule, [1, 2, 3, 3, 999_999])
    singles = {str(i): client.get_json("/v3/customers", {"id:in": i})["data"][0] for i in (1, 2, 3)}

    assert batch == singles  # 999999 is absent: gone


def test_batchable_rules_name_id_in_endpoints() -> None:
    assert {rule.batch_path for rule in RULES if rule.batch_path} == {
        "/v3/catalog/products",
        "/v3/catalog/variants",
        "/v3/customers",
        "/v3/customers/addresses",
    }
