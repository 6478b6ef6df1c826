"""Product variants: a product's list, create, update one, and the batch update on /v3/catalog/variants.

Every variant write fires store/sku/* for the variant and store/product/updated for its product.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from service.sandbox import changes
from service.sandbox.access import PRODUCTS
from service.sandbox.changes import INT32, Event
from service.sandbox.data import Record, StoreData
from service.sandbox.errors import ChangeError
from service.sandbox.fields import INVALID, NUMBER, Field, checked, checked_list
from service.sandbox.http import SandboxState, fire, found, json_body, path_int, v3_list, v3_one

PRICE = Field(NUMBER, minimum=0, nullable=True)
VARIANT_FIELDS: dict[str, Field] = {
    "sku": Field(str, max_length=255),
    "price": PRICE,
    "sale_price": PRICE,
    "retail_price": PRICE,
    "cost_price": PRICE,
    "weight": PRICE,
    "inventory_level": Field(int, maximum=INT32, nullable=True),
    "inventory_warning_level": Field(int, maximum=INT32, nullable=True),
    "is_free_shipping": Field(bool),
    "purchasing_disabled": Field(bool),
    "purchasing_disabled_message": Field(str, max_length=255),
    "upc": Field(str, max_length=14, nullable=True),
    "gtin": Field(str, max_length=14, nullable=True),
    "mpn": Field(str, nullable=True),
    "bin_picking_number": Field(str, max_length=255, nullable=True),
    "option_values": Field(list, items=dict),
    "product_id": Field(int),
}
BATCH_FIELDS = {**VARIANT_FIELDS, "id": Field(int)}
BATCH_LIMIT = 50


async def product_variants(request: Request, state: SandboxState) -> Any:
    product = found(state.store.products.get(path_int(request, "product_id")))
    return v3_list(request, product["variants"])


async def product_variant(request: Request, state: SandboxState) -> Any:
    item = found(state.store.products.get(path_int(request, "product_id")))
    variant_id = path_int(request, "variant_id")
    return v3_one(found(next((v for v in item["variants"] if v["id"] == variant_id), None)))


async def create_variant(request: Request, state: SandboxState) -> Any:
    product_id = path_int(request, "product_id")
    product = changes.get_record(state.store.products, product_id, "product")
    fields = checked(await json_body(request), VARIANT_FIELDS, required=("sku",))
    variant, events = add_variant(state.store, product, fields)
    fire(state, events)
    return v3_one(variant)


async def update_variant(request: Request, state: SandboxState) -> Any:
    product_id, variant_id = path_int(request, "product_id"), path_int(request, "variant_id")
    fields = checked(await json_body(request), VARIANT_FIELDS)
    variant, events = change_variant(state.store, product_id, variant_id, fields)
    fire(state, events)
    return v3_one(variant)


async def update_variants(request: Request, state: SandboxState) -> Any:
    """The batch update: every entry names its variant by `id`; all are checked before any is changed."""
    entries = checked_list(await json_body(request), BATCH_FIELDS, required=("id",), limit=BATCH_LIMIT)
    known = state.store.variants()
    missing = {f"[{i}].id": "no such variant" for i, e in enumerate(entries) if e["id"] not in known}
    if missing:
        raise ChangeError(422, INVALID, missing)
    updated, events = [], []
    for entry in entries:
        fields = {k: v for k, v in entry.items() if k not in ("id", "product_id")}
        variant, fired = change_variant(state.store, known[entry["id"]]["product_id"], entry["id"], fields)
        updated.append(variant)
        events.extend(fired)
    fire(state, events)
    return {"data": updated, "meta": {}}


def add_variant(store: StoreData, product: Record, fields: dict[str, Any]) -> tuple[Record, list[Event]]:
    """A new variant of `product` (its SKU unique in the store); fires sku/created and product/updated."""
    if any(v["sku"] == fields["sku"] for v in store.variants().values()):
        raise ChangeError(409, "The SKU is a duplicate", {"sku": f"{fields['sku']} is already in use"})
    variant_id = store.new_id("variant")
    price = fields.get("price") if fields.get("price") is not None else product["price"]
    variant = {
        "id": variant_id,
        "product_id": product["id"],
        "sku": fields["sku"],
        "sku_id": variant_id,
        "price": price,
        "calculated_price": price,
        "inventory_level": 0,
        "weight": product["weight"],
        "calculated_weight": product["weight"],
        "purchasing_disabled": False,
        "option_values": [],
        **{k: v for k, v in fields.items() if k != "product_id"},
    }
    product["variants"].append(variant)
    sku = {"product_id": product["id"], "variant_id": variant_id}
    return variant, [
        ("store/sku/created", {"type": "sku", "id": variant_id, "sku": sku}),
        ("store/product/updated", {"type": "product", "id": product["id"]}),
    ]


def change_variant(
    store: StoreData, product_id: int, variant_id: int, fields: dict[str, Any]
) -> tuple[Record, list[Event]]:
    """Apply `fields` to one variant; fires sku/updated (+ inventory) and product/updated."""
    events = changes.update_variant(store, product_id, variant_id, fields)
    variant = next(v for v in store.products[product_id]["variants"] if v["id"] == variant_id)
    if "price" in fields and fields["price"] is not None:
        variant["calculated_price"] = fields["price"]
    return variant, [*events, ("store/product/updated", {"type": "product", "id": product_id})]


ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v3/catalog/products/{product_id}/variants", PRODUCTS, product_variants),
    ("/v3/catalog/products/{product_id}/variants", PRODUCTS, create_variant, "POST"),
    ("/v3/catalog/products/{product_id}/variants/{variant_id}", PRODUCTS, product_variant),
    ("/v3/catalog/products/{product_id}/variants/{variant_id}", PRODUCTS, update_variant, "PUT"),
    ("/v3/catalog/variants", PRODUCTS, update_variants, "PUT"),
)
