"""The sandbox's v3 catalog endpoints: products, variants, inventory, categories, brands, price lists,
metafields and locations (module-level endpoints taking the request and the store's state)."""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.sandbox import changes, modified
from service.sandbox.data import Record
from service.sandbox.http import (
    SandboxState,
    fire,
    found,
    id_in,
    includes,
    int_list,
    json_body,
    keep,
    path_int,
    v3_list,
    v3_one,
)


def product_view(product: Record, include: set[str]) -> Record:
    view = {k: v for k, v in product.items() if k not in ("variants", "images")}
    if "variants" in include:
        view["variants"] = copy.deepcopy(product["variants"])
    if "images" in include:
        view["images"] = copy.deepcopy(product["images"])
    return view


async def products(request: Request, state: SandboxState) -> Any:
    q = request.query_params
    ids = int_list(request, "id:in")
    keyword, sku = q.get("keyword", "").lower(), q.get("sku")
    name_like, availability = q.get("name:like", "").lower(), q.get("availability")
    items = keep(
        sorted(state.store.products.values(), key=lambda p: p["id"]),
        ids=id_in(ids),
        keyword=(lambda p: keyword in f"{p['name']} {p['sku']} {p['description']}".lower())
        if keyword
        else None,
        sku=(lambda p: sku == p["sku"] or any(v["sku"] == sku for v in p["variants"])) if sku else None,
        name=(lambda p: name_like in p["name"].lower()) if name_like else None,
        availability=(lambda p: p["availability"] == availability) if availability else None,
        modified=modified.v3_modified(request, date_only_gets_now=True),
    )
    items = modified.ordered(items, modified.direction_sort(request))
    return v3_list(request, [product_view(p, includes(request)) for p in items])


async def product(request: Request, state: SandboxState) -> Any:
    return v3_one(
        product_view(found(state.store.products.get(path_int(request, "product_id"))), includes(request))
    )


async def create_product(request: Request, state: SandboxState) -> Any:
    created, events = changes.create_product(state.store, await json_body(request))
    fire(state, events)
    return v3_one(product_view(created, set()))


async def update_product(request: Request, state: SandboxState) -> Any:
    updated, events = changes.update_product(
        state.store, path_int(request, "product_id"), await json_body(request)
    )
    fire(state, events)
    return v3_one(product_view(updated, set()))


async def delete_product(request: Request, state: SandboxState) -> Any:
    fire(state, changes.delete_product(state.store, path_int(request, "product_id")))
    return Response(status_code=204)


async def variants(request: Request, state: SandboxState) -> Any:
    ids, product_ids = int_list(request, "id:in"), int_list(request, "product_id:in")
    items = keep(
        state.store.variants().values(),
        ids=id_in(ids),
        products=(lambda v: v["product_id"] in product_ids) if product_ids is not None else None,
    )
    return v3_list(request, items)


async def inventory_items(request: Request, state: SandboxState) -> Any:
    product_ids, variant_ids = int_list(request, "product_id:in"), int_list(request, "variant_id:in")
    rows = [
        {
            "identity": {"product_id": v["product_id"], "variant_id": v["id"], "sku": v["sku"]},
            "locations": [
                {
                    "location_id": 1,
                    "available_to_sell": v["inventory_level"],
                    "total_inventory_onhand": v["inventory_level"],
                }
            ],
        }
        for v in state.store.variants().values()
    ]
    rows = keep(
        rows,
        p=(lambda x: x["identity"]["product_id"] in product_ids) if product_ids is not None else None,
        v=(lambda x: x["identity"]["variant_id"] in variant_ids) if variant_ids is not None else None,
    )
    return v3_list(request, rows)


async def price_assignments(request: Request, state: SandboxState) -> Any:
    q = request.query_params
    wanted = {k: int(q[k]) for k in ("price_list_id", "channel_id", "customer_group_id") if k in q}
    items = [a for a in state.store.price_assignments if all(a[k] == v for k, v in wanted.items())]
    return v3_list(request, items)


async def locations(request: Request, state: SandboxState) -> Any:
    ids = int_list(request, "location_id:in")
    return v3_list(
        request,
        keep(state.store.locations.values(), ids=id_in(ids)),
    )


async def stored_instruments(request: Request, state: SandboxState) -> Any:
    customer = found(state.store.customers.get(path_int(request, "customer_id")))
    return [
        {
            "type": "stored_card",
            "token": f"tok-{customer['id']}",
            "is_default": True,
            "brand": "visa",
            "last_4": "4242",
            "expiry_month": 12,
            "expiry_year": 2030,
        }
    ]
