"""`trigger`: make the change behind a scope happen in the store, and return the events it fires."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from typing import Any

from service.sandbox import changes
from service.sandbox.changes import Event
from service.sandbox.data import Record, StoreData, add_line_item, iso, new_cart
from service.sandbox.orders import rfc2822
from service.sandbox.scopes import STORE_SCOPES, close_matches


class TriggerError(Exception):
    """The scope is unknown (the message lists close matches) or has no record to act on."""


def trigger_scope(store: StoreData, scope: str, record_id: Any = None) -> list[Event]:
    """Perform the change `scope` reports (on `record_id`, or a record of the store) and return its events."""
    if scope not in STORE_SCOPES:
        suggestions = ", ".join(close_matches(scope)) or "none"
        raise TriggerError(f"unknown scope {scope!r}; close matches: {suggestions}")
    for prefix, action in ACTIONS:
        if scope.startswith(prefix):
            return action(store, scope, record_id)
    return [(scope, _documented_data(store, scope, record_id))]


def _pick(records: dict[Any, Record], record_id: Any, kind: str) -> Record:
    if record_id is not None:
        key = int(record_id) if isinstance(next(iter(records), None), int) else record_id
        if key not in records:
            raise TriggerError(f"no {kind} with id {record_id}")
        return records[key]
    if not records:
        raise TriggerError(f"the store has no {kind}")
    return records[max(records) if isinstance(next(iter(records)), int) else next(iter(records))]


def _orders(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    action = scope.removeprefix("store/order/")
    if action == "created":
        source = _pick(store.orders, record_id, "order")
        order_id = store.new_id("order")
        store.orders[order_id] = {
            **copy.deepcopy(source),
            "id": order_id,
            "status_id": 11,
            "status": "Awaiting Fulfillment",
            "date_created": rfc2822(changes.now()),
        }
        store.order_products[order_id] = [
            {**line, "order_id": order_id} for line in store.order_products[source["id"]]
        ]
        store.order_addresses[order_id] = [
            {**a, "order_id": order_id} for a in store.order_addresses[source["id"]]
        ]
        store.shipments[order_id], store.messages[order_id], store.transactions[order_id] = [], [], []
        return [(scope, {"type": "order", "id": order_id})]
    order = _pick(store.orders, record_id, "order")
    if action == "statusUpdated":
        return changes.update_order(store, order["id"], {"status_id": 2 if order["status_id"] != 2 else 10})[
            1
        ]
    if action == "updated":
        return changes.update_order(store, order["id"], {"staff_notes": f"Updated {iso(changes.now())}"})[1][
            :1
        ]
    if action == "archived":
        order["is_deleted"] = True
        return [(scope, {"type": "order", "id": order["id"]})]
    if action == "message/created":
        message_id = store.new_id("message")
        store.messages.setdefault(order["id"], []).append(
            {
                "id": message_id,
                "order_id": order["id"],
                "subject": "Question",
                "message": "Where is my order?",
                "status": "unread",
                "date_created": rfc2822(changes.now()),
            }
        )
        return [(scope, {"type": "order", "id": order["id"], "message": {"order_message_id": message_id}})]
    if action == "refund/created":
        refund_id = store.new_id("refund")
        store.refunds[refund_id] = {
            "id": refund_id,
            "order_id": order["id"],
            "reason": "Return",
            "total_amount": 10.0,
            "created": iso(changes.now()),
            "items": [],
        }
        return [(scope, {"type": "order", "id": order["id"], "refund": {"refund_id": refund_id}})]
    if action.startswith("transaction/"):
        transaction_id = store.new_id("transaction")
        store.transactions.setdefault(order["id"], []).append(
            {
                "id": transaction_id,
                "order_id": str(order["id"]),
                "event": "capture",
                "amount": 10.0,
                "status": "ok",
                "currency": "USD",
                "gateway": "braintree",
                "date_created": iso(changes.now()),
            }
        )
        return [
            (
                scope,
                {
                    "type": "transaction",
                    "order_id": str(order["id"]),
                    "transaction_id": str(transaction_id),
                    "transaction_status": "complete",
                    "transaction_type": "capture",
                },
            )
        ]
    return [(scope, _documented_data(store, scope, order["id"]))]


def _products(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    action = scope.removeprefix("store/product/")
    if action == "created":
        return changes.create_product(
            store,
            {
                "name": f"Triggered product {uuid.uuid4().hex[:8]}",
                "type": "physical",
                "weight": 1.0,
                "price": 19.99,
            },
        )[1]
    product = _pick(store.products, record_id, "product")
    if action == "updated":
        return changes.update_product(store, product["id"], {"price": round(product["price"] + 1.0, 2)})[1][
            :1
        ]
    if action == "deleted":
        return changes.delete_product(store, product["id"])
    if action.startswith("inventory/"):
        level = product["inventory_level"] + 5
        events = changes.update_product(store, product["id"], {"inventory_level": level})[1]
        return [(scope, data) for s, data in events if s == "store/product/inventory/updated"]
    return [(scope, _documented_data(store, scope, product["id"]))]


def _skus(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    variants = store.variants()
    variant = _pick(variants, record_id, "variant")
    product_id = variant["product_id"]
    sku = {"product_id": product_id, "variant_id": variant["id"]}
    if scope in ("store/sku/updated", "store/sku/inventory/updated", "store/sku/inventory/order/updated"):
        events = changes.update_variant(
            store,
            product_id,
            variant["id"],
            {"inventory_level": variant["inventory_level"] + 3, "price": variant["price"]},
        )
        wanted = "store/sku/updated" if scope == "store/sku/updated" else "store/sku/inventory/updated"
        return [(scope, data) for s, data in events if s == wanted]
    if scope == "store/sku/deleted":
        store.products[product_id]["variants"].remove(variant)
    if scope == "store/sku/created":
        created = {**copy.deepcopy(variant), "id": store.new_id("variant"), "sku": f"{variant['sku']}-NEW"}
        store.products[product_id]["variants"].append(created)
        sku = {"product_id": product_id, "variant_id": created["id"]}
        return [(scope, {"type": "sku", "id": created["id"], "sku": sku})]
    return [(scope, {"type": "sku", "id": variant["id"], "sku": sku})]


def _customers(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    action = scope.removeprefix("store/customer/")
    if action == "created":
        tag = uuid.uuid4().hex[:8]
        return changes.create_customer(
            store, {"email": f"new.{tag}@example.com", "first_name": "New", "last_name": tag}
        )[1]
    if action.startswith("address/"):
        return _addresses(store, scope, record_id)
    customer = _pick(store.customers, record_id, "customer")
    if action == "updated":
        return changes.update_customer(store, customer["id"], {"notes": f"Updated {iso(changes.now())}"})
    if action == "deleted":
        del store.customers[customer["id"]]
    if action == "channel/login/access/updated":
        return [(scope, {"customer_id": customer["id"], "channel_ids": [1]})]
    return [(scope, {"type": "customer", "id": customer["id"]})]


def _addresses(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    address = _pick(store.addresses, record_id, "address")
    if scope.endswith("/created"):
        address = {**copy.deepcopy(address), "id": store.new_id("address"), "address1": "2 New Street"}
        store.addresses[address["id"]] = address
    elif scope.endswith("/updated"):
        address["address2"] = f"Suite {random.randint(1, 99)}"  # noqa: S311 (sample data)
    else:
        del store.addresses[address["id"]]
    return [
        (scope, {"type": "customer", "id": address["id"], "address": {"customer_id": address["customer_id"]}})
    ]


def _carts(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    action = scope.removeprefix("store/cart/")
    if action == "created":
        product = _pick(store.products, None, "product")
        cart = new_cart(store, 0, product, product["variants"][0], 1, cart_id=str(uuid.uuid4()))
        return [(scope, {"type": "cart", "id": cart["id"]})]
    cart = _pick(store.carts, record_id, "cart")
    data: dict[str, Any] = {"type": "cart", "id": cart["id"]}
    if action in ("updated", "lineItem/created"):
        product = _pick(store.products, None, "product")
        item = add_line_item(cart, product, product["variants"][0], 1, item_id=str(uuid.uuid4()))
        if action == "lineItem/created":
            data = {"type": "cart_line_item", "id": item["id"], "cartId": cart["id"]}
    elif action.startswith("lineItem/"):
        item = cart["line_items"]["physical_items"][0]
        if action == "lineItem/updated":
            item["quantity"] += 1
        else:
            cart["line_items"]["physical_items"].remove(item)
        data = {"type": "cart_line_item", "id": item["id"], "cartId": cart["id"]}
    elif action in ("deleted", "converted"):
        del store.carts[cart["id"]]
        if action == "converted":
            data["orderId"] = _orders(store, "store/order/created", None)[0][1]["id"]
    elif action == "abandoned":
        data["token"] = uuid.uuid4().hex
    elif action == "couponApplied":
        data["couponId"] = 1
    return [(scope, data)]


def _subscribers(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    if scope.endswith("/created"):
        subscriber_id = store.new_id("subscriber")
        store.subscribers[subscriber_id] = {
            "id": subscriber_id,
            "email": f"sub{subscriber_id}@example.com",
            "first_name": "New",
            "last_name": "Reader",
            "source": "storefront",
            "date_created": iso(changes.now()),
            "date_modified": iso(changes.now()),
        }
        return [(scope, {"type": "subscriber", "id": subscriber_id})]
    subscriber = _pick(store.subscribers, record_id, "subscriber")
    if scope.endswith("/deleted"):
        del store.subscribers[subscriber["id"]]
    else:
        subscriber["first_name"], subscriber["date_modified"] = "Updated", iso(changes.now())
    return [(scope, {"type": "subscriber", "id": subscriber["id"]})]


def _shipments(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    order = _pick(store.orders, record_id, "order")
    shipments = store.shipments.setdefault(order["id"], [])
    if scope.endswith("/created") or not shipments:
        shipments.append(
            {
                "id": store.new_id("shipment"),
                "order_id": order["id"],
                "tracking_number": "1Z999",
                "shipping_provider": "ups",
                "date_created": rfc2822(changes.now()),
                "items": [],
            }
        )
    shipment = shipments[-1]
    if scope.endswith("/updated"):
        shipment["tracking_number"] = f"1Z{uuid.uuid4().int % 10**10}"
    if scope.endswith("/deleted"):
        shipments.remove(shipment)
    return [(scope, {"type": "shipment", "id": shipment["id"], "orderId": order["id"]})]


def _information(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    if scope == "store/information/updated":
        store.information["name"] = f"Sandbox Outfitters {iso(changes.now())}"
    return [(scope, {"type": "store"})]


def _categories(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    if scope.startswith("store/category/metafield/"):
        return _metafields(store, scope, record_id)
    category = _pick(store.categories, record_id, "category")
    if scope.endswith("/created"):
        category = {
            **category,
            "category_id": store.new_id("category"),
            "name": f"New {uuid.uuid4().hex[:6]}",
        }
        store.categories[category["category_id"]] = category
    elif scope.endswith("/updated"):
        category["sort_order"] += 1
    else:
        del store.categories[category["category_id"]]
    return [(scope, {"type": "category", "id": category["category_id"]})]


METAFIELD_OWNERS = {
    "store/order/metafield/": "order",
    "store/product/variant/metafield/": "variant",
    "store/product/metafield/": "product",
    "store/category/metafield/": "category",
    "store/brand/metafield/": "brand",
    "store/cart/metafield/": "cart",
    "store/inventory/location/metafield/": "location",
    "store/channel/metafield/": "channel",
    "store/metafield/": "location",
}


def _metafields(store: StoreData, scope: str, record_id: Any) -> list[Event]:
    """Create, change or delete a metafield on a resource, and report it the documented way."""
    owner = next(kind for prefix, kind in METAFIELD_OWNERS.items() if scope.startswith(prefix))
    resources: dict[str, dict[Any, Record]] = {
        "order": store.orders,
        "variant": store.variants(),
        "product": store.products,
        "category": store.categories,
        "brand": store.brands,
        "cart": store.carts,
        "location": store.locations,
        "channel": store.channels,
    }
    resource_id = record_id if record_id is not None else next(iter(resources[owner]))
    existing = store.metafields.setdefault(f"{owner}:{resource_id}", {})
    if scope.endswith("/created") or not existing:
        metafield = store.add_metafield(
            owner, resource_id, f"key{store.next_ids.get('metafield', 0) + 1}", "v1"
        )
    else:
        metafield = existing[max(existing)]
    if scope.endswith("/updated"):
        metafield["value"] = f"updated {iso(changes.now())}"
    if scope.endswith("/deleted"):
        del existing[metafield["id"]]
    data = {"metafield_id": metafield["id"], "resource_id": str(resource_id)}
    return [(scope, {**data, "resource_type": owner} if scope.startswith("store/metafield/") else data)]


# The callback schema names it currency_code, the docs currency; the receiver takes either: send both.
USD = {"currency_code": "USD", "currency": "USD"}


def _documented_data(store: StoreData, scope: str, record_id: Any) -> Any:
    """The documented `data` shape for scopes whose change the sandbox does not model."""
    if "/metafield/" in scope:
        resource = "location" if scope.startswith("store/metafield/") else None
        data: dict[str, Any] = {"metafield_id": 1, "resource_id": str(record_id or 1)}
        return {**data, "resource_type": resource} if resource else data
    if scope.startswith("store/priceLists/"):
        return {"price_list_ids": [next(iter(store.price_lists))]}
    if scope.startswith("store/priceList/records/"):
        return [
            {"price_list_id": 1, "variant_id": v, "currency_code": "USD", "currency": "USD"}
            for v in list(store.variants())[:2]
        ]
    if scope.startswith("store/priceList/record/"):
        return {
            "price_list_id": 1,
            "variant_id": next(iter(store.variants())),
            "currency_code": "USD",
            "currency": "USD",
        }
    if scope.startswith("store/priceList/assignment/"):
        return {"price_list_id": 1, "channel_id": 1, "customer_group_id": 0}
    if scope.startswith("store/priceList/"):
        return {"price_list_id": next(iter(store.price_lists))}
    if scope in ("store/modifier/updated", "store/option/updated"):
        kind = "shared_modifier" if "modifier" in scope else "local_option"
        return {"type": kind, "id": 1, "affected_product_ids": list(store.products)[:2]}
    if scope.startswith("store/channel/"):
        return {"type": "channel", "id": int(record_id or 1)}
    if scope.startswith("store/inventory/location/"):
        return {"location_id": int(record_id or 1)}
    if scope == "store/customer/payment/instrument/default/updated":
        return {"type": "customer", "id": int(record_id or next(iter(store.customers)))}
    if scope == "store/hook/deliveryException":
        return {
            "type": "webhook",
            "id": int(record_id or 1),
            "error_code": 90001,
            "message": "Triggered by hand",
        }
    return {"type": "store"}


ACTIONS: tuple[tuple[str, Callable[[StoreData, str, Any], list[Event]]], ...] = (
    ("store/order/metafield/", _metafields),
    ("store/order/", _orders),
    ("store/product/metafield/", _metafields),
    ("store/product/variant/metafield/", _metafields),
    ("store/product/", _products),
    ("store/sku/", _skus),
    ("store/customer/payment/", lambda s, scope, i: [(scope, _documented_data(s, scope, i))]),
    ("store/customer/", _customers),
    ("store/cart/metafield/", _metafields),
    ("store/brand/metafield/", _metafields),
    ("store/metafield/", _metafields),
    ("store/channel/metafield/", _metafields),
    ("store/inventory/location/metafield/", _metafields),
    ("store/cart/", _carts),
    ("store/subscriber/", _subscribers),
    ("store/shipment/", _shipments),
    ("store/information/", _information),
    ("store/app/", _information),
    ("store/category/", _categories),
)
