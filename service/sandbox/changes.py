"""Changes to the store and the webhook events each one fires, as the platform fires them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from service.sandbox.data import Record, StoreData, add_line_item, iso, new_cart
from service.sandbox.errors import ChangeError
from service.sandbox.fields import INVALID, NUMBER, Field, checked, field_errors
from service.sandbox.orders import ORDER_STATUSES, rfc2822

Event = tuple[str, Any]
INT32 = 2_147_483_647
# The writable product fields the sandbox models, with the bounds of the published request schema.
PRODUCT_FIELDS: dict[str, Field] = {
    "name": Field(str, max_length=250),
    "type": Field(str, choices=("physical", "digital")),
    "sku": Field(str, max_length=255),
    "description": Field(str),
    "weight": Field(NUMBER, minimum=0, maximum=9_999_999_999),
    "price": Field(NUMBER, minimum=0),
    "sale_price": Field(NUMBER, minimum=0),
    "inventory_level": Field(int, minimum=0, maximum=INT32),
    "inventory_tracking": Field(str, choices=("none", "product", "variant")),
    "is_visible": Field(bool),
    "availability": Field(str, choices=("available", "disabled", "preorder")),
    "is_featured": Field(bool),
    "warranty": Field(str, max_length=65535),
    "brand_id": Field(int, minimum=0, maximum=1_000_000_000),
    "categories": Field(list, max_length=1000, items=int),
}


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
    product = get_record(store.products, product_id, "product")
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
    get_record(store.products, product_id, "product")
    del store.products[product_id]
    return [("store/product/deleted", {"type": "product", "id": product_id})]


def update_variant(store: StoreData, product_id: int, variant_id: int, fields: dict[str, Any]) -> list[Event]:
    """Change a variant (price, inventory); fires sku/updated and sku/inventory/updated when stock changed."""
    product = get_record(store.products, product_id, "product")
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


ORDER_UPDATE_FIELDS: dict[str, Field] = {
    "status_id": Field(int, choices=tuple(ORDER_STATUSES)),
    "staff_notes": Field(str, max_length=65535),
    "customer_message": Field(str),
    "payment_method": Field(str),
    "customer_id": Field(int, minimum=0),
    "external_source": Field(str, nullable=True),
}


def update_order(store: StoreData, order_id: int, fields: Any) -> tuple[Record, list[Event]]:
    """Update an order's status and/or notes; a status change also fires statusUpdated with both ids."""
    order = get_record(store.orders, order_id, "order", v2=True)
    if not isinstance(fields, dict) or not fields:
        raise ChangeError(400, "The request body is empty", {"body": "provide status_id or staff_notes"})
    body = checked(fields, ORDER_UPDATE_FIELDS)
    previous: int = order["status_id"]
    status_id: int = body["status_id"] if "status_id" in body else previous
    order.update({k: v for k, v in body.items() if k != "status_id"})
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
    customer = get_record(store.customers, customer_id, "customer")
    customer.update(fields, date_modified=iso(now()))
    return [("store/customer/updated", {"type": "customer", "id": customer_id})]


CART_FIELDS: dict[str, Field] = {
    "customer_id": Field(int, minimum=0),
    "line_items": Field(list, items=dict),
    "channel_id": Field(int, minimum=1),
    "currency": Field(dict),
    "locale": Field(str),
}
ITEM_FIELDS: dict[str, Field] = {
    "product_id": Field(int),
    "variant_id": Field(int),
    "quantity": Field(int, minimum=1),
    "list_price": Field(NUMBER, minimum=0),
    "name": Field(str, max_length=250),
    "option_selections": Field(list, items=dict),
}


def _cart_items(fields: Any, allowed: dict[str, Field]) -> list[dict[str, Any]]:
    body = checked(fields, allowed, required=("line_items",))
    errors: dict[str, str] = {}
    for index, item in enumerate(body["line_items"]):
        errors.update(field_errors(item, ITEM_FIELDS, ("product_id",), where=f"line_items[{index}]."))
    if not body["line_items"]:
        errors["line_items"] = "at least one line item is required"
    if errors:
        raise ChangeError(422, INVALID, errors)
    items: list[dict[str, Any]] = body["line_items"]
    return items


def create_cart(store: StoreData, fields: Any) -> tuple[Record, list[Event]]:
    """Create a cart with line items; cart/created also fires cart/updated, as documented."""
    items = _cart_items(fields, CART_FIELDS)
    product, variant, quantity = _line(store, items[0])
    cart_id = str(uuid.uuid4())
    cart = new_cart(store, int(fields.get("customer_id", 0)), product, variant, quantity, cart_id=cart_id)
    cart["channel_id"] = fields.get("channel_id", 1)
    for extra in items[1:]:
        add_line_item(cart, *_line(store, extra), item_id=str(uuid.uuid4()))
    data = {"type": "cart", "id": cart_id}
    return cart, [("store/cart/created", data), ("store/cart/updated", data)]


def add_cart_items(store: StoreData, cart_id: str, fields: Any) -> tuple[Record, list[Event]]:
    """Add line items to a cart; fires lineItem/created per item and cart/updated."""
    cart = get_record(store.carts, cart_id, "cart")
    items = _cart_items(fields, {"line_items": CART_FIELDS["line_items"]})
    lines = [_line(store, entry) for entry in items]
    events: list[Event] = []
    for line in lines:
        item = add_line_item(cart, *line, item_id=str(uuid.uuid4()))
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
    checked(fields, PRODUCT_FIELDS, required)
    if isinstance(fields.get("name"), str) and not fields["name"].strip():
        raise ChangeError(422, INVALID, {"name": "name must not be empty"})
    return dict(fields)


def get_record(records: dict[Any, Record], key: Any, kind: str, v2: bool = False) -> Record:
    """The record under `key`, or a 404 in the generation's wording."""
    record = records.get(key)
    if record is None:
        raise ChangeError(404, "The requested resource was not found." if v2 else f"The {kind} was not found")
    return record


def change_many(
    store: StoreData, products: int = 0, orders: int = 0, customers: int = 0
) -> tuple[dict[str, list[int]], list[Event]]:
    """Change the first `products`, `orders` and `customers` records (by id) as ordinary writes would: a
    product's price, an order's staff notes, a customer's notes; the ids changed and the events fired."""
    changed: dict[str, list[int]] = {"products": [], "orders": [], "customers": []}
    events: list[Event] = []
    stamp = now().strftime("%H:%M:%S.%f")
    for product_id in sorted(store.products)[:products]:
        price = round(float(store.products[product_id]["price"]) + 0.01, 2)
        events.extend(update_product(store, product_id, {"price": price})[1])
        changed["products"].append(product_id)
    for order_id in sorted(store.orders)[:orders]:
        events.extend(update_order(store, order_id, {"staff_notes": f"bulk change {stamp}"})[1])
        changed["orders"].append(order_id)
    for customer_id in sorted(store.customers)[:customers]:
        events.extend(update_customer(store, customer_id, {"notes": f"bulk change {stamp}"}))
        changed["customers"].append(customer_id)
    return changed, events
