"""A realistic store generated deterministically from a seed: catalog, customers, orders, carts, more."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from service.sandbox.orders import (
    new_order,
    order_coupon,
    order_line,
    rfc2822,
    shipping_address,
    v2_address,
)

Record = dict[str, Any]

BRANDS = (
    "Northwind",
    "Acme Outfitters",
    "Blue Harbor",
    "Cedar & Co",
    "Fieldcraft",
    "Lumen",
    "Orbit",
    "Tidewater",
)
CATEGORY_TREE = {
    "Apparel": ("Shirts", "Jackets", "Hats"),
    "Home": ("Kitchen", "Bedding", "Lighting"),
    "Outdoor": ("Camping", "Cycling"),
}
ADJECTIVES = (
    "Classic",
    "Everyday",
    "Trail",
    "Coastal",
    "Merino",
    "Canvas",
    "Heritage",
    "Urban",
    "Alpine",
    "Studio",
)
NOUNS = {
    "Shirts": ("Oxford Shirt", "Linen Shirt", "Flannel Shirt"),
    "Jackets": ("Rain Jacket", "Down Jacket", "Denim Jacket"),
    "Hats": ("Beanie", "Cap", "Sun Hat"),
    "Kitchen": ("Chef Knife", "Cast Iron Pan", "Kettle"),
    "Bedding": ("Duvet Cover", "Pillow", "Throw Blanket"),
    "Lighting": ("Desk Lamp", "Pendant Light", "Lantern"),
    "Camping": ("Tent", "Sleeping Bag", "Camp Stove"),
    "Cycling": ("Bike Light", "Saddle Bag", "Helmet"),
}
SIZES = ("S", "M", "L", "XL")
FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Iris",
    "Jonas",
    "Kemi",
    "Luis",
)
LAST_NAMES = (
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Walsh",
)
CITIES = (("Austin", "Texas", "78701"), ("Portland", "Oregon", "97205"), ("Denver", "Colorado", "80202"))
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    """v3 dates are ISO 8601."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class StoreData:
    """Every record of one store, keyed by id; lists hold sub-records in creation order."""

    store_hash: str
    information: Record
    brands: dict[int, Record] = field(default_factory=dict)
    categories: dict[int, Record] = field(default_factory=dict)
    products: dict[int, Record] = field(default_factory=dict)
    customers: dict[int, Record] = field(default_factory=dict)
    addresses: dict[int, Record] = field(default_factory=dict)
    orders: dict[int, Record] = field(default_factory=dict)
    order_products: dict[int, list[Record]] = field(default_factory=dict)
    order_addresses: dict[int, list[Record]] = field(default_factory=dict)
    order_coupons: dict[int, list[Record]] = field(default_factory=dict)
    shipments: dict[int, list[Record]] = field(default_factory=dict)
    messages: dict[int, list[Record]] = field(default_factory=dict)
    refunds: dict[int, Record] = field(default_factory=dict)
    transactions: dict[int, list[Record]] = field(default_factory=dict)
    carts: dict[str, Record] = field(default_factory=dict)
    subscribers: dict[int, Record] = field(default_factory=dict)
    channels: dict[int, Record] = field(default_factory=dict)
    price_lists: dict[int, Record] = field(default_factory=dict)
    locations: dict[int, Record] = field(default_factory=dict)
    price_records: dict[tuple[int, int, str], Record] = field(default_factory=dict)
    price_assignments: list[Record] = field(default_factory=list)
    metafields: dict[str, dict[int, Record]] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)

    def new_id(self, kind: str) -> int:
        """The next id of a kind of record (ids are never reused, as on the platform)."""
        self.next_ids[kind] = self.next_ids.get(kind, 0) + 1
        return self.next_ids[kind]

    def add_metafield(self, resource_type: str, resource_id: Any, key: str, value: str) -> Record:
        """Attach a metafield to any resource (`product`, `variant`, `order`, `cart`, `brand`, …)."""
        metafield_id = self.new_id("metafield")
        record = {
            "id": metafield_id,
            "resource_type": resource_type,
            "resource_id": str(resource_id),
            "namespace": "sandbox",
            "key": key,
            "value": value,
            "permission_set": "app_only",
            "date_created": iso(EPOCH),
            "date_modified": iso(EPOCH),
        }
        self.metafields.setdefault(f"{resource_type}:{resource_id}", {})[metafield_id] = record
        return record

    def metafield(self, resource_type: str, resource_id: Any, metafield_id: int) -> Record | None:
        """One metafield of a resource, or None."""
        return self.metafields.get(f"{resource_type}:{resource_id}", {}).get(metafield_id)

    def variants(self) -> dict[int, Record]:
        """Every variant by id, across products."""
        return {v["id"]: v for p in self.products.values() for v in p["variants"]}


def generate_store(
    store_hash: str, seed: int, products: int = 60, customers: int = 40, orders: int = 50
) -> StoreData:
    """A store whose every record is determined by `seed` (the same seed gives the same store)."""
    rng = random.Random(seed)  # noqa: S311 (deterministic sample data, not security)
    data = StoreData(store_hash=store_hash, information=_information(store_hash))
    data.channels[1] = {
        "id": 1,
        "name": "Storefront",
        "type": "storefront",
        "platform": "bigcommerce",
        "status": "active",
        "is_listable_from_ui": True,
        "date_created": iso(EPOCH),
        "date_modified": iso(EPOCH),
    }
    for name in BRANDS:
        brand_id = data.new_id("brand")
        data.brands[brand_id] = {
            "id": brand_id,
            "name": name,
            "page_title": name,
            "meta_keywords": [],
            "image_url": "",
            "custom_url": {"url": f"/brands/{slug(name)}/", "is_customized": False},
        }
    _categories(data)
    for _ in range(products):
        _product(data, rng)
    for _ in range(customers):
        _customer(data, rng)
    for _ in range(orders):
        _order(data, rng)
    for _ in range(5):
        _cart(data, rng)
    for index in range(20):
        subscriber_id = data.new_id("subscriber")
        data.subscribers[subscriber_id] = {
            "id": subscriber_id,
            "email": f"reader{index + 1}@example.com",
            "first_name": rng.choice(FIRST_NAMES),
            "last_name": rng.choice(LAST_NAMES),
            "source": "storefront",
            "order_id": None,
            "channel_id": 1,
            "date_created": iso(EPOCH),
            "date_modified": iso(EPOCH),
        }
    data.locations[1] = {
        "id": 1,
        "code": "WH-1",
        "label": "Main warehouse",
        "type_id": "PHYSICAL",
        "enabled": True,
        "address": {"city": "Austin", "country_code": "US"},
    }
    price_list_id = data.new_id("price_list")
    data.price_lists[price_list_id] = {
        "id": price_list_id,
        "name": "Wholesale",
        "active": True,
        "date_created": iso(EPOCH),
        "date_modified": iso(EPOCH),
    }
    for variant in list(data.variants().values())[:10]:
        data.price_records[(price_list_id, variant["id"], "USD")] = {
            "price_list_id": price_list_id,
            "variant_id": variant["id"],
            "product_id": variant["product_id"],
            "currency": "USD",
            "price": round(variant["price"] * 0.8, 2),
            "calculated_price": round(variant["price"] * 0.8, 2),
            "sku": variant["sku"],
            "date_created": iso(EPOCH),
            "date_modified": iso(EPOCH),
        }
    data.price_assignments.append(
        {"id": 1, "price_list_id": price_list_id, "customer_group_id": 0, "channel_id": 1}
    )
    data.add_metafield("product", 1, "care", "Hand wash")
    data.add_metafield("brand", 1, "origin", "Portugal")
    data.add_metafield("order", 100, "gift", "yes")
    return data


def _information(store_hash: str) -> Record:
    return {
        "id": store_hash,
        "domain": f"{store_hash}.example.com",
        "secure_url": f"https://{store_hash}.example.com",
        "name": "Sandbox Outfitters",
        "first_name": "Sam",
        "last_name": "Sandbox",
        "address": "1 Test Way",
        "country": "United States",
        "country_code": "US",
        "phone": "555-0100",
        "admin_email": "admin@example.com",
        "order_email": "orders@example.com",
        "timezone": {"name": "America/Chicago"},
        "language": "en",
        "currency": "USD",
        "currency_symbol": "$",
        "weight_units": "LBS",
        "dimension_units": "Inches",
        "plan_name": "Standard",
        "plan_level": "Standard",
        "industry": "Apparel",
        "is_price_entered_with_tax": False,
    }


def _categories(data: StoreData) -> None:
    for parent_name, children in CATEGORY_TREE.items():
        parent_id = data.new_id("category")
        data.categories[parent_id] = _category(parent_id, 0, parent_name)
        for child_name in children:
            child_id = data.new_id("category")
            data.categories[child_id] = _category(child_id, parent_id, child_name)


def _category(category_id: int, parent_id: int, name: str) -> Record:
    return {
        "category_id": category_id,
        "parent_id": parent_id,
        "tree_id": 1,
        "name": name,
        "is_visible": True,
        "url": {"path": f"/{slug(name)}/", "is_customized": False},
        "sort_order": 0,
    }


def _product(data: StoreData, rng: random.Random) -> Record:
    leaf_ids = [c["category_id"] for c in data.categories.values() if c["parent_id"]]
    category_id = rng.choice(leaf_ids)
    category = data.categories[category_id]
    product_id = data.new_id("product")
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS[category['name']])} {product_id}"
    price = round(rng.uniform(9, 240), 2)
    base_sku = f"SKU-{product_id:05d}"
    variants: list[Record] = []
    for size in rng.sample(SIZES, rng.randint(1, 3)):
        variant_id = data.new_id("variant")
        variants.append(
            {
                "id": variant_id,
                "product_id": product_id,
                "sku": f"{base_sku}-{size}",
                "price": price,
                "calculated_price": price,
                "inventory_level": rng.randint(0, 80),
                "weight": 1.0,
                "calculated_weight": 1.0,
                "sku_id": variant_id,
                "purchasing_disabled": False,
                "option_values": [
                    {"id": variant_id, "option_id": 1, "label": size, "option_display_name": "Size"}
                ],
            }
        )
    product = {
        "id": product_id,
        "name": name,
        "type": "physical",
        "sku": base_sku,
        "description": f"<p>{name}.</p>",
        "weight": round(rng.uniform(0.2, 6), 2),
        "price": price,
        "sale_price": 0,
        "brand_id": rng.choice(list(data.brands)),
        "categories": [category_id],
        "inventory_level": sum(v["inventory_level"] for v in variants),
        "inventory_tracking": "variant",
        "is_visible": True,
        "availability": rng.choice(["available"] * 4 + ["preorder"]),
        "is_featured": rng.random() < 0.1,
        "warranty": "",
        "custom_url": {"url": f"/{slug(name)}/"},
        "date_created": iso(EPOCH),
        "date_modified": iso(EPOCH),
        "variants": variants,
        "images": [
            {
                "id": product_id * 10 + i,
                "product_id": product_id,
                "is_thumbnail": i == 0,
                "url_standard": f"https://cdn.example.com/products/{product_id}/{i}.jpg",
            }
            for i in range(rng.randint(1, 2))
        ],
    }
    data.products[product_id] = product
    return product


def _customer(data: StoreData, rng: random.Random) -> Record:
    customer_id = data.new_id("customer")
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    customer = {
        "id": customer_id,
        "email": f"{first.lower()}.{last.lower()}.{customer_id}@example.com",
        "first_name": first,
        "last_name": last,
        "company": "",
        "phone": f"+1512555{customer_id:04d}",
        "customer_group_id": 0,
        "notes": "",
        "accepts_product_review_abandoned_cart_emails": True,
        "date_created": iso(EPOCH),
        "date_modified": iso(EPOCH),
        "channel_ids": [1],
    }
    data.customers[customer_id] = customer
    for _ in range(rng.randint(1, 2)):
        _address(data, rng, customer)
    return customer


def _address(data: StoreData, rng: random.Random, customer: Record) -> Record:
    address_id = data.new_id("address")
    city, state, postcode = rng.choice(CITIES)
    address = {
        "id": address_id,
        "customer_id": customer["id"],
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "address1": f"{rng.randint(1, 999)} Main St",
        "address2": "",
        "city": city,
        "state_or_province": state,
        "postal_code": postcode,
        "country": "United States",
        "country_code": "US",
        "phone": customer["phone"],
        "address_type": "residential",
    }
    data.addresses[address_id] = address
    return address


def _order(data: StoreData, rng: random.Random) -> None:
    data.next_ids.setdefault("order", 99)  # BigCommerce order ids start at 100
    order_id = data.new_id("order")
    customer = data.customers[rng.choice(list(data.customers))]
    status_id = rng.choice([1, 2, 2, 7, 9, 10, 10, 11, 11, 4, 5])
    created = EPOCH + timedelta(hours=order_id * 7)
    lines = []
    for product in rng.sample(list(data.products.values()), rng.randint(1, 3)):
        variant = rng.choice(product["variants"])
        lines.append(order_line(data, order_id, product, variant, rng.randint(1, 3)))
    subtotal = sum(float(line["total_inc_tax"]) for line in lines)
    address = next(a for a in data.addresses.values() if a["customer_id"] == customer["id"])
    order = new_order(
        data,
        order_id,
        lines,
        v2_address(address, customer["email"]),
        created,
        customer_id=customer["id"],
        status_id=status_id,
    )
    data.order_products[order_id] = lines
    data.order_addresses[order_id] = [shipping_address(data, order, order["items_total"])]
    if order_id % 5 == 0:  # every fifth order used a coupon (no draw from rng: the seed's store is unchanged)
        order_coupon(data, order, "SAVE10", 10.0)
    data.shipments[order_id] = []
    if status_id in (2, 10):
        shipment_id = data.new_id("shipment")
        data.shipments[order_id].append(
            {
                "id": shipment_id,
                "order_id": order_id,
                "tracking_number": f"1Z{rng.randint(10**9, 10**10)}",
                "shipping_provider": "ups",
                "date_created": rfc2822(created + timedelta(days=1)),
                "items": [{"order_product_id": line["id"], "quantity": line["quantity"]} for line in lines],
            }
        )
    data.messages[order_id] = []
    if rng.random() < 0.3:
        message_id = data.new_id("message")
        data.messages[order_id].append(
            {
                "id": message_id,
                "order_id": order_id,
                "customer_id": customer["id"],
                "subject": "Gift wrap?",
                "message": "Can you gift wrap this?",
                "status": "unread",
                "date_created": rfc2822(created),
            }
        )
    data.transactions[order_id] = [
        {
            "id": data.new_id("transaction"),
            "order_id": str(order_id),  # a string in the v3 transactions schema
            "event": "purchase",
            "method": "credit_card",
            "amount": round(subtotal + 7.5, 2),
            "currency": "USD",
            "gateway": "braintree",
            "status": "ok",
            "date_created": iso(created),
        }
    ]
    if status_id == 4:
        refund_id = data.new_id("refund")
        data.refunds[refund_id] = {
            "id": refund_id,
            "order_id": order_id,
            "user_id": 1,
            "created": iso(created),
            "reason": "Customer return",
            "total_amount": round(subtotal, 2),
            "items": [{"item_type": "PRODUCT", "item_id": lines[0]["id"], "quantity": 1}],
        }


def _cart(data: StoreData, rng: random.Random) -> Record:
    product = rng.choice(list(data.products.values()))
    return new_cart(
        data, rng.choice(list(data.customers)), product, product["variants"][0], 1, cart_id=_uuid(rng)
    )


def new_cart(
    data: StoreData, customer_id: int, product: Record, variant: Record, quantity: int, cart_id: str
) -> Record:
    """A cart holding one physical line item."""
    cart = {
        "id": cart_id,
        "customer_id": customer_id,
        "channel_id": 1,
        "email": "",
        "currency": {"code": "USD"},
        "tax_included": False,
        "base_amount": 0.0,
        "discount_amount": 0.0,
        "manual_discount_amount": 0.0,
        "cart_amount": 0.0,
        "coupons": [],
        "discounts": [],
        "locale": "en",
        "version": 1,
        "created_time": iso(EPOCH),
        "updated_time": iso(EPOCH),
        "line_items": {
            "physical_items": [],
            "digital_items": [],
            "gift_certificates": [],
            "custom_items": [],
        },
    }
    add_line_item(cart, product, variant, quantity, item_id=f"{cart_id[:8]}-item-1")
    data.carts[cart_id] = cart
    return cart


def add_line_item(cart: Record, product: Record, variant: Record, quantity: int, item_id: str) -> Record:
    """Append a physical line item and refresh the cart's totals."""
    item = {
        "id": item_id,
        "product_id": product["id"],
        "variant_id": variant["id"],
        "sku": variant["sku"],
        "name": product["name"],
        "quantity": quantity,
        "list_price": variant["price"],
        "extended_list_price": round(variant["price"] * quantity, 2),
    }
    cart["line_items"]["physical_items"].append(item)
    total = round(sum(i["extended_list_price"] for i in cart["line_items"]["physical_items"]), 2)
    cart["base_amount"] = cart["cart_amount"] = total
    return item


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def slug(text: str) -> str:
    """A URL path segment made from a name."""
    return "-".join(text.lower().replace("&", "and").split())
