"""Scope → the REST call(s) that return the event's current record (BIGCOMMERCE.md §5), as a table.

Each rule names the resource type, how to read its id from `data`, and how to fetch it one at a time. Rules
whose resource the API can list by `id:in` also say so (`batch_path`), so that events for the same resource
type can be fetched together in one call.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.bigcommerce import ApiClient, NotFound
from service.payloads import PRICE_LIST_CURRENCY_KEYS

Data = Mapping[str, Any]
Fetch = Callable[[ApiClient, Any], Any]


@dataclass(frozen=True)
class Resolution:
    """What the resolver found: the record, or `deleted` when the resource is gone."""

    resource_type: str
    resource_id: str | None
    record: Any
    deleted: bool


@dataclass(frozen=True)
class Rule:
    """How one family of scopes is resolved.

    Parameters:
      pattern: a scope glob (`store/order/*`); the first matching rule wins.
      resource_type: what the record is.
      resource_id: reads the id from the callback's `data`.
      fetch: the call(s) returning the current record; None when there is nothing to fetch.
      batch_path: a v3 list path filtering by `id:in`, for fetching many of this type in one call.
      batch_params: extra query parameters so that a batch returns the same record shape as `fetch`.
      gone: the scope itself says the resource no longer exists (no fetch, `deleted: true`).
    """

    pattern: str
    resource_type: str
    resource_id: Callable[[Data], Any]
    fetch: Fetch | None
    batch_path: str | None = None
    gone: bool = False
    batch_params: tuple[tuple[str, str], ...] = ()


def _v3(client: ApiClient, path: str, params: Mapping[str, str | int | bool] | None = None) -> Any:
    body = client.get_json(path, params)
    return None if body is None else body.get("data")


def _first(items: Any) -> Any:
    return items[0] if isinstance(items, list) and items else None


def _order(client: ApiClient, order_id: Any) -> Any:
    order = client.get_json(f"/v2/orders/{int(order_id)}")
    if order is None:
        return None
    return {
        "order": order,
        "products": list(client.v2_items(f"/v2/orders/{int(order_id)}/products")),
        "shipping_addresses": list(client.v2_items(f"/v2/orders/{int(order_id)}/shipping_addresses")),
    }


def _order_message(client: ApiClient, data: Data) -> Any:
    message_id = int(data["message"]["order_message_id"])
    params = {"min_id": message_id, "max_id": message_id}
    return _first(client.get_json(f"/v2/orders/{int(data['id'])}/messages", params))


def _metafield(path: str) -> Fetch:
    return lambda client, data: _v3(
        client, path.format(rid=data["resource_id"], mid=int(data["metafield_id"]))
    )


METAFIELD_PATHS = {
    "product": "/v3/catalog/products/{rid}/metafields/{mid}",
    "category": "/v3/catalog/categories/{rid}/metafields/{mid}",
    "brand": "/v3/catalog/brands/{rid}/metafields/{mid}",
    "order": "/v3/orders/{rid}/metafields/{mid}",
    "cart": "/v3/carts/{rid}/metafields/{mid}",
    "channel": "/v3/channels/{rid}/metafields/{mid}",
    "location": "/v3/inventory/locations/{rid}/metafields/{mid}",
}


def _any_metafield(client: ApiClient, data: Data) -> Any:
    resource_type = str(data.get("resource_type", ""))
    if resource_type == "variant":
        return _variant_metafield(client, data)
    path = METAFIELD_PATHS.get(resource_type)
    return _metafield(path)(client, data) if path else None


def _variant_metafield(client: ApiClient, data: Data) -> Any:
    variant = _first(_v3(client, "/v3/catalog/variants", {"id:in": int(data["resource_id"])}))
    if variant is None:
        return None
    variant_path = f"/v3/catalog/products/{variant['product_id']}/variants/{variant['id']}"
    path = f"{variant_path}/metafields/{int(data['metafield_id'])}"
    return _v3(client, path)


def _affected_products(client: ApiClient, data: Data) -> Any:
    ids = ",".join(str(int(i)) for i in data.get("affected_product_ids", []))
    return (
        list(client.v3_items("/v3/catalog/products", {"id:in": ids, "include": "modifiers,options"}))
        if ids
        else []
    )


def _price_list_records(client: ApiClient, data: Any) -> Any:
    items = data if isinstance(data, list) else [data]
    records = []
    for item in items:
        price_list, variant = int(item["price_list_id"]), int(item["variant_id"])
        currency = next(item[key] for key in PRICE_LIST_CURRENCY_KEYS if key in item)  # checked on receipt
        path = f"/v3/pricelists/{price_list}/records/{variant}/{currency}"
        try:
            records.append(_v3(client, path))
        except NotFound:
            continue
    return records or None


def _sku_ids(data: Data) -> tuple[int, int]:
    inner = data.get("sku") or data.get("inventory") or {}
    return int(inner["product_id"]), int(inner["variant_id"])


def _channel_id(scope: str) -> int:
    return int(scope.split("/")[2])


def _id(key: str) -> Callable[[Data], Any]:
    return lambda data: data.get(key)


RULES: tuple[Rule, ...] = (
    Rule(
        "store/order/metafield/*",
        "order_metafield",
        _id("metafield_id"),
        _metafield(METAFIELD_PATHS["order"]),
    ),
    Rule(
        "store/order/message/*", "order_message", lambda d: d["message"]["order_message_id"], _order_message
    ),
    Rule(
        "store/order/refund/*",
        "refund",
        lambda d: d["refund"]["refund_id"],
        lambda c, d: _v3(c, f"/v3/orders/payment_actions/refunds/{int(d['refund']['refund_id'])}"),
    ),
    Rule(
        "store/order/transaction/*",
        "order_transactions",
        _id("order_id"),
        lambda c, d: list(c.v3_items(f"/v3/orders/{int(d['order_id'])}/transactions")) or None,
    ),
    Rule("store/order/*", "order", _id("id"), lambda c, d: _order(c, d["id"])),
    Rule("store/product/variant/metafield/*", "variant_metafield", _id("metafield_id"), _variant_metafield),
    Rule(
        "store/product/metafield/*",
        "product_metafield",
        _id("metafield_id"),
        _metafield(METAFIELD_PATHS["product"]),
    ),
    Rule(
        "store/product/inventory/*",
        "product",
        _id("id"),
        lambda c, d: _v3(c, f"/v3/catalog/products/{int(d['id'])}", {"include": "variants"}),
        "/v3/catalog/products",
        batch_params=(("include", "variants"),),
    ),
    Rule(
        "store/product/*",
        "product",
        _id("id"),
        lambda c, d: _v3(
            c, f"/v3/catalog/products/{int(d['id'])}", {"include": "variants,images,custom_fields"}
        ),
        "/v3/catalog/products",
        batch_params=(("include", "variants,images,custom_fields"),),
    ),
    Rule(
        "store/sku/*",
        "variant",
        lambda d: _sku_ids(d)[1],
        lambda c, d: _v3(c, "/v3/catalog/products/{}/variants/{}".format(*_sku_ids(d))),
        "/v3/catalog/variants",
    ),
    Rule(
        "store/category/metafield/*",
        "category_metafield",
        _id("metafield_id"),
        _metafield(METAFIELD_PATHS["category"]),
    ),
    Rule(
        "store/category/*",
        "category",
        _id("id"),
        lambda c, d: _first(_v3(c, "/v3/catalog/trees/categories", {"category_id:in": int(d["id"])})),
    ),
    Rule(
        "store/brand/metafield/*",
        "brand_metafield",
        _id("metafield_id"),
        _metafield(METAFIELD_PATHS["brand"]),
    ),
    Rule(
        "store/customer/address/*",
        "customer_address",
        _id("id"),
        lambda c, d: _first(_v3(c, "/v3/customers/addresses", {"id:in": int(d["id"])})),
        "/v3/customers/addresses",
    ),
    Rule(
        "store/customer/payment/instrument/*",
        "customer_stored_instruments",
        _id("id"),
        lambda c, d: c.get_json(f"/v3/customers/{int(d['id'])}/stored-instruments"),
    ),
    Rule(
        "store/customer/channel/login/access/*",
        "customer",
        _id("customer_id"),
        lambda c, d: _first(_v3(c, "/v3/customers", {"id:in": int(d["customer_id"])})),
    ),
    Rule(
        "store/customer/*",
        "customer",
        _id("id"),
        lambda c, d: _first(_v3(c, "/v3/customers", {"id:in": int(d["id"]), "include": "addresses"})),
        "/v3/customers",
    ),
    Rule("store/cart/converted", "order", _id("orderId"), lambda c, d: _order(c, d["orderId"])),
    Rule("store/cart/deleted", "cart", _id("id"), None, gone=True),
    Rule(
        "store/cart/metafield/*", "cart_metafield", _id("metafield_id"), _metafield(METAFIELD_PATHS["cart"])
    ),
    Rule(
        "store/cart/lineItem/*",
        "cart",
        _id("cartId"),
        lambda c, d: _v3(c, f"/v3/carts/{d['cartId']}", {"include": "line_items.physical_items.options"}),
    ),
    Rule(
        "store/cart/*",
        "cart",
        _id("id"),
        lambda c, d: _v3(c, f"/v3/carts/{d['id']}", {"include": "line_items.physical_items.options"}),
    ),
    Rule(
        "store/shipment/*",
        "shipment",
        _id("id"),
        lambda c, d: c.get_json(f"/v2/orders/{int(d['orderId'])}/shipments/{int(d['id'])}"),
    ),
    Rule(
        "store/subscriber/*",
        "subscriber",
        _id("id"),
        lambda c, d: _v3(c, f"/v3/customers/subscribers/{int(d['id'])}"),
    ),
    Rule("store/information/*", "store", lambda d: None, lambda c, d: c.get_json("/v2/store")),
    Rule("store/app/uninstalled", "store", lambda d: None, None),
    Rule("store/channel/*/order/*", "order", _id("order_id"), lambda c, d: _order(c, d["order_id"])),
    Rule("store/channel/*/cart/*", "cart", _id("cart_id"), lambda c, d: _v3(c, f"/v3/carts/{d['cart_id']}")),
    Rule(
        "store/channel/*/category/*",
        "category",
        _id("category_id"),
        lambda c, d: _first(
            _v3(c, "/v3/catalog/trees/categories", {"category_id:in": int(d["category_id"])})
        ),
    ),
    Rule(
        "store/channel/metafield/*",
        "channel_metafield",
        _id("metafield_id"),
        _metafield(METAFIELD_PATHS["channel"]),
    ),
    Rule("store/channel/created", "channel", _id("id"), lambda c, d: _v3(c, f"/v3/channels/{int(d['id'])}")),
    Rule("store/channel/updated", "channel", _id("id"), lambda c, d: _v3(c, f"/v3/channels/{int(d['id'])}")),
    Rule(
        "store/inventory/location/metafield/*",
        "location_metafield",
        _id("metafield_id"),
        _metafield(METAFIELD_PATHS["location"]),
    ),
    Rule(
        "store/inventory/location/*",
        "location",
        _id("location_id"),
        lambda c, d: _first(_v3(c, "/v3/inventory/locations", {"location_id:in": int(d["location_id"])})),
    ),
    Rule("store/metafield/*", "metafield", _id("metafield_id"), _any_metafield),
    Rule("store/modifier/*", "products", _id("id"), _affected_products),
    Rule("store/option/*", "products", _id("id"), _affected_products),
    Rule("store/priceLists/deleted", "price_lists", _id("price_list_ids"), None, gone=True),
    Rule("store/priceList/record*", "price_list_records", lambda d: None, _price_list_records),
    Rule(
        "store/priceList/assignment/*",
        "price_list_assignments",
        _id("price_list_id"),
        lambda c, d: (
            _v3(
                c,
                "/v3/pricelists/assignments",
                {k: int(d[k]) for k in ("price_list_id", "channel_id", "customer_group_id") if k in d},
            )
            or None
        ),
    ),
    Rule(
        "store/priceList/*",
        "price_list",
        _id("price_list_id"),
        lambda c, d: _v3(c, f"/v3/pricelists/{int(d['price_list_id'])}"),
    ),
    Rule("store/hook/deliveryException", "hook", _id("id"), lambda c, d: _v3(c, f"/v3/hooks/{int(d['id'])}")),
)


def rule_for(scope: str) -> Rule | None:
    """The first rule whose glob matches the scope, or None for a scope we do not know."""
    for rule in RULES:
        if fnmatch.fnmatchcase(scope, rule.pattern):
            return rule
    return None


def resolution_from_batch(scope: str, data: Any, found: dict[str, Any]) -> Resolution | None:
    """The resolution of one event from a batch fetch of its type (absent from the batch = gone)."""
    rule = rule_for(scope)
    if rule is None:
        return None
    resource_id = rule.resource_id(data if isinstance(data, Mapping) else {})
    resource = None if resource_id is None else str(resource_id)
    record = found.get(resource) if resource is not None else None
    return Resolution(rule.resource_type, resource, record, deleted=record is None)


def resolve(scope: str, data: Any, client: ApiClient) -> Resolution | None:
    """Fetch the current record for an event; None when the scope is unknown.

    404, 204 and empty lists mean the resource is gone: `deleted=True` with no record. Other API errors
    propagate (the caller decides between retrying and dead-lettering).
    """
    rule = rule_for(scope)
    if rule is None:
        return None
    mapping: Data = data if isinstance(data, Mapping) else {}
    resource_id = rule.resource_id(mapping)
    resource = None if resource_id is None else str(resource_id)
    if rule.gone:
        return Resolution(rule.resource_type, resource, None, deleted=True)
    if rule.fetch is None:
        return Resolution(rule.resource_type, resource, None, deleted=False)
    try:
        record = rule.fetch(client, data if isinstance(data, list) else mapping)
    except NotFound:
        record = None
    deleted = record is None or record == []
    return Resolution(rule.resource_type, resource, None if deleted else record, deleted)


def fetch_batch(client: ApiClient, rule: Rule, ids: list[Any]) -> dict[str, Any]:
    """Many records of one batchable type in `id:in` calls of up to 250; id → record (missing = gone)."""
    if rule.batch_path is None:
        raise ValueError(f"{rule.pattern} has no batch endpoint")
    found: dict[str, Any] = {}
    unique = sorted({int(i) for i in ids})
    for start in range(0, len(unique), 250):
        chunk = ",".join(str(i) for i in unique[start : start + 250])
        for item in client.v3_items(rule.batch_path, {**dict(rule.batch_params), "id:in": chunk}):
            found[str(item["id"])] = item
    return found
