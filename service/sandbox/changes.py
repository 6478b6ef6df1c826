"""Changes to the store and the webhook events each one fires, as the platform fires them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from service.sandbox.data import (
    ORDER_STATUSES,
    Record,
    StoreData,
    add_line_item,
    iso,
    new_cart,
    rfc2822,
)
from service.sandbox.errors import ChangeError

Event = tuple[str, Any]
PRODUCT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "type": str,
    "sku": str,
    "description": str,
    "weight": (int, float),
    "price": (int, float),
    "sale_price": (int, float),
    "inventory_level": int,
    "inventory_tracking": str,
    "is_visible": bool,
    "availability": str,
    "is_featured": bool,
    "warranty": str,
    "brand_id": int,
    "categories": list,
}
PRODUCT_TYPES = ("physical", "digital")


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(tz=UTC)


def create_product(store: StoreData, fields: Any) -> tuple[Record, list[Event]]:
    """Create a product (name, type, weight and price are required) with one variant."""
    fields = _product_fields(fields, required=("name", "type", "weight", "price"))
    if any(p["name"] == fields["name"] for p in store.products.values()):
        raise ChangeError(409, "The product name is a duplicate", {"name": "must be unique"})
    product_id = store.new_id("product")
    sku = fields.get("sku") or f"SKU-{product_id:05d}"
    variant = {
        "id": store.new_id("variant"),
        "product_id": product_id,
        "sku": sku,
        "price": fields["price"],
        "calculated_price": fields["price"],
        "inventory_level": fields.get("inventory_level", 0),
        "weight": fields["weight"],
        "option_values": [],
    }
    product = {
        "id": product_id,
        "sku": sku,
        "description": "",
        "sale_price": 0,
        "brand_id": 0,
        "categories": [],
        "inventory_level": 0,
        "inventory_tracking": "none",
        "is_visible": True,
        "availability": "available",
        "is_featured": False,
        "warranty": "",
        "custom_url": {"url": f"/product-{product_id}/"},
        "date_created": iso(now()),
        "date_modified": iso(now()),
        "variants": [variant],
        "images": [],
        **fields,
    }
    store.products[product_id] = product
    return product, [("store/product/created", {"type": "product", "id": product_id})]


def update_product(store: StoreData, product_id: int, fields: Any) -> tuple[Record, list[Event]]:
    """Update a product; fires product/updated, and inventory/updated when the level changed."""
    product = _get(store.products, product_id, "product")
    fields = _product_fields(fields, required=())
    if not fields:
        raise ChangeError(422, "No updatable fields", {"data": "provide at least one product field"})
    before = product["inventory_level"]
    product.update(fields, date_modified=iso(now()))
    events: list[Event] = [("store/product/updated", {"type": "product", "id": product_id})]
    if "inventory_level" in fields and fields["inventory_level"] != before:
        inventory = {"product_id": product_id, "method": "absolute", "value": fields["inventory_level"]}
        events.append(
            ("store/product/inventory/updated", {"type": "product", "id": product_id, "inventory": inventory})
        )
    return product, events


def delete_product(store: StoreData, product_id: int) -> list[Event]:
    """Remove a product; later reads answer 404."""
    _get(store.products, product_id, "product")
    del store.products[product_id]
    return [("store/product/deleted", {"type": "product", "id": product_id})]


def update_variant(store: StoreData, product_id: int, variant_id: int, fields: dict[str, Any]) -> list[Event]:
    """Change a variant (price, inventory); fires sku/updated and sku/inventory/updated when stock changed."""
    product = _get(store.products, product_id, "product")
    variant = next((v for v in product["variants"] if v["id"] == variant_id), None)
    if variant is None:
        raise ChangeError(404, f"Variant {variant_id} not found")
    before = variant["inventory_level"]
    variant.update(fields)
    sku = {"product_id": product_id, "variant_id": variant_id}
    events: list[Event] = [("store/sku/updated", {"type": "sku", "id": variant_id, "sku": sku})]
    if variant["inventory_level"] != before:
        inventory = {**sku, "method": "absolute", "value": variant["inventory_level"]}
        events.append(
            ("store/sku/inventory/updated", {"type": "sku", "id": variant_id, "inventory": inventory})
        )
    return events


def update_order(store: StoreData, order_id: int, fields: Any) -> tuple[Record, list[Event]]:
    """Update an order's status and/or notes; a status change also fires statusUpdated with both ids."""
    order = _get(store.orders, order_id, "order", v2=True)
    if not isinstance(fields, dict) or not fields:
        raise ChangeError(400, "The request body is empty", {"body": "provide status_id or staff_notes"})
    status_id = fields.get("status_id", order["status_id"])
    if not isinstance(status_id, int) or isinstance(status_id, bool) or status_id not in ORDER_STATUSES:
        raise ChangeError(
            400, "The field 'status_id' is invalid.", {"status_id": "The field 'status_id' is invalid."}
        )
    previous = order["status_id"]
    for key in ("staff_notes", "customer_message"):
        if key in fields:
            order[key] = str(fields[key])
    order.update(status_id=status_id, status=ORDER_STATUSES[status_id], date_modified=rfc2822(now()))
    events: list[Event] = [("store/order/updated", {"type": "order", "id": order_id})]
    if status_id != previous:
        status = {"previous_status_id": previous, "new_status_id": status_id}
        events.append(("store/order/statusUpdated", {"type": "order", "id": order_id, "status": status}))
    return order, events


def create_customer(store: StoreData, fields: Any) -> tuple[Record, list[Event]]:
    """Create a customer (email, first_name and last_name required; email unique)."""
    if not isinstance(fields, dict):
        raise ChangeError(422, "Invalid customer", {"body": "each customer must be an object"})
    missing = {k: f"{k} is required" for k in ("email", "first_name", "last_name") if not fields.get(k)}
    if missing:
        raise ChangeError(422, "Missing Required Fields", missing)
    if any(c["email"].lower() == str(fields["email"]).lower() for c in store.customers.values()):
        raise ChangeError(422, "The email address is already in use", {"email": "already in use"})
    customer_id = store.new_id("customer")
    customer = {
        "id": customer_id,
        "company": "",
        "phone": "",
        "customer_group_id": 0,
        "notes": "",
        "date_created": iso(now()),
        "date_modified": iso(now()),
        "channel_ids": [1],
        **{
            k: v
            for k, v in fields.items()
            if k in ("email", "first_name", "last_name", "company", "phone", "notes")
        },
    }
    store.customers[customer_id] = customer
    return customer, [("store/customer/created", {"type": "customer", "id": customer_id})]


def update_customer(store: StoreData, customer_id: int, fields: dict[str, Any]) -> list[Event]:
    """Change a customer's details; fires customer/updated."""
    customer = _get(store.customers, customer_id, "customer")
    customer.update(fields, date_modified=iso(now()))
    return [("store/customer/updated", {"type": "customer", "id": customer_id})]


def create_cart(store: StoreData, fields: Any) -> tuple[Record, list[Event]]:
    """Create a cart with line items; cart/created also fires cart/updated, as documented."""
    items = fields.get("line_items") if isinstance(fields, dict) else None
    if not isinstance(items, list) or not items:
        raise ChangeError(
            422, "Missing Required Fields", {"line_items": "at least one line item is required"}
        )
    product, variant, quantity = _line(store, items[0])
    cart_id = str(uuid.uuid4())
    cart = new_cart(store, int(fields.get("customer_id", 0)), product, variant, quantity, cart_id=cart_id)
    for extra in items[1:]:
        add_line_item(cart, *_line(store, extra), item_id=str(uuid.uuid4()))
    data = {"type": "cart", "id": cart_id}
    return cart, [("store/cart/created", data), ("store/cart/updated", data)]


def add_cart_items(store: StoreData, cart_id: str, fields: Any) -> tuple[Record, list[Event]]:
    """Add line items to a cart; fires lineItem/created per item and cart/updated."""
    cart = _get(store.carts, cart_id, "cart")
    items = fields.get("line_items") if isinstance(fields, dict) else None
    if not isinstance(items, list) or not items:
        raise ChangeError(
            422, "Missing Required Fields", {"line_items": "at least one line item is required"}
        )
    events: list[Event] = []
    for entry in items:
        item = add_line_item(cart, *_line(store, entry), item_id=str(uuid.uuid4()))
        events.append(
            ("store/cart/lineItem/created", {"type": "cart_line_item", "id": item["id"], "cartId": cart_id})
        )
    cart["updated_time"] = iso(now())
    return cart, [*events, ("store/cart/updated", {"type": "cart", "id": cart_id})]


def _line(store: StoreData, entry: Any) -> tuple[Record, Record, int]:
    if not isinstance(entry, dict) or "product_id" not in entry:
        raise ChangeError(422, "Missing Required Fields", {"line_items.product_id": "required"})
    product = store.products.get(entry["product_id"])
    if product is None:
        raise ChangeError(
            422, "Product not found", {"line_items.product_id": f"no product {entry['product_id']}"}
        )
    variant_id = entry.get("variant_id", product["variants"][0]["id"])
    variant = next((v for v in product["variants"] if v["id"] == variant_id), None)
    if variant is None:
        raise ChangeError(422, "Variant not found", {"line_items.variant_id": f"no variant {variant_id}"})
    quantity = entry.get("quantity", 1)
    if not isinstance(quantity, int) or quantity < 1:
        raise ChangeError(422, "Invalid quantity", {"line_items.quantity": "must be a positive integer"})
    return product, variant, quantity


def _product_fields(fields: Any, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(fields, dict):
        raise ChangeError(422, "JSON data is missing or invalid", {"body": "must be a JSON object"})
    errors = {name: f"{name} is required" for name in required if name not in fields}
    for name, value in fields.items():
        expected = PRODUCT_FIELDS.get(name)
        if expected is not None and (
            not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool)
        ):
            errors[name] = f"{name} has the wrong type"
    if "type" in fields and fields["type"] not in PRODUCT_TYPES:
        errors["type"] = "type must be physical or digital"
    if isinstance(fields.get("price"), int | float) and fields["price"] < 0:
        errors["price"] = "price must not be negative"
    if errors:
        raise ChangeError(422, "JSON data is missing or invalid", errors)
    return {k: v for k, v in fields.items() if k in PRODUCT_FIELDS}


def _get(records: dict[Any, Record], key: Any, kind: str, v2: bool = False) -> Record:
    record = records.get(key)
    if record is None:
        raise ChangeError(404, "The requested resource was not found." if v2 else f"The {kind} was not found")
    return record
