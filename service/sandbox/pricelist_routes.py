"""Price lists and their records: list, read, create, update, delete, and the bulk record upsert.

The upsert runs one at a time per store, as on the platform: a second one started while the first is still
writing gets 429. Writes fire the documented store/priceList/* events.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.sandbox.access import PRODUCTS
from service.sandbox.changes import Event, get_record, now
from service.sandbox.data import Record, StoreData, iso
from service.sandbox.errors import ApiFailure, ChangeError
from service.sandbox.fields import INVALID, NUMBER, Field, checked, checked_list
from service.sandbox.http import (
    SandboxState,
    fire,
    found,
    id_in,
    int_list,
    json_body,
    keep,
    path_int,
    v3_list,
    v3_one,
)
from service.sandbox.modified import v3_modified

UPSERT_JOB = "price-list-records-upsert"
UPSERT_LIMIT = 1000
PRICE_LIST_FIELDS: dict[str, Field] = {"name": Field(str, max_length=255), "active": Field(bool)}
RECORD_FIELDS: dict[str, Field] = {
    "variant_id": Field(int),
    "sku": Field(str),
    "currency": Field(str, max_length=3),
    "price": Field(NUMBER, minimum=0),
    "sale_price": Field(NUMBER, minimum=0),
    "retail_price": Field(NUMBER, minimum=0),
    "map_price": Field(NUMBER, minimum=0),
    "bulk_pricing_tiers": Field(list, items=dict),
}


async def price_lists(request: Request, state: SandboxState) -> Any:
    ids, name = int_list(request, "id:in"), request.query_params.get("name")
    items = keep(
        state.store.price_lists.values(),
        ids=id_in(ids),
        name=(lambda p: p["name"] == name) if name else None,
        modified=v3_modified(request),
    )
    return v3_list(request, items)


async def price_list(request: Request, state: SandboxState) -> Any:
    return v3_one(found(state.store.price_lists.get(path_int(request, "price_list_id"))))


async def create_price_list(request: Request, state: SandboxState) -> Any:
    fields = checked(await json_body(request), PRICE_LIST_FIELDS, required=("name",))
    _unique_name(state.store, fields["name"], None)
    price_list_id = state.store.new_id("price_list")
    record = {
        "id": price_list_id,
        "active": True,
        "date_created": iso(now()),
        "date_modified": iso(now()),
        **fields,
    }
    state.store.price_lists[price_list_id] = record
    fire(state, [("store/priceList/created", {"price_list_id": price_list_id})])
    return v3_one(record)


async def update_price_list(request: Request, state: SandboxState) -> Any:
    record = get_record(state.store.price_lists, path_int(request, "price_list_id"), "price list")
    fields = checked(await json_body(request), PRICE_LIST_FIELDS, required=("name",))
    _unique_name(state.store, fields["name"], record["id"])
    was_active = record["active"]
    record.update(fields, date_modified=iso(now()))
    events: list[Event] = [("store/priceList/updated", {"price_list_id": record["id"]})]
    if record["active"] != was_active:
        switched = "store/priceList/activated" if record["active"] else "store/priceList/deactivated"
        events.append((switched, {"price_list_id": record["id"]}))
    fire(state, events)
    return v3_one(record)


async def delete_price_list(request: Request, state: SandboxState) -> Any:
    price_list_id = path_int(request, "price_list_id")
    get_record(state.store.price_lists, price_list_id, "price list")
    del state.store.price_lists[price_list_id]
    for key in [k for k in state.store.price_records if k[0] == price_list_id]:
        del state.store.price_records[key]
    fire(state, [("store/priceList/deleted", {"price_list_id": price_list_id})])
    return Response(status_code=204)


async def price_records(request: Request, state: SandboxState) -> Any:
    price_list_id = path_int(request, "price_list_id")
    get_record(state.store.price_lists, price_list_id, "price list")
    variant_ids, product_ids = int_list(request, "variant_id:in"), int_list(request, "product_id:in")
    currency = request.query_params.get("currency")
    items = keep(
        [r for (owner, _, _), r in sorted(state.store.price_records.items()) if owner == price_list_id],
        variants=id_in(variant_ids, "variant_id"),
        products=id_in(product_ids, "product_id"),
        currency=(lambda r: r["currency"] == currency.upper()) if currency else None,
        modified=v3_modified(request),
    )
    return v3_list(request, items)


async def price_record(request: Request, state: SandboxState) -> Any:
    key = (
        path_int(request, "price_list_id"),
        path_int(request, "variant_id"),
        request.path_params["currency"].upper(),
    )
    return v3_one(found(state.store.price_records.get(key)))


async def upsert_price_records(request: Request, state: SandboxState) -> Any:
    """Create or replace a batch of records; only one batch per store may be in progress."""
    price_list_id = path_int(request, "price_list_id")
    get_record(state.store.price_lists, price_list_id, "price list")
    entries = checked_list(await json_body(request), RECORD_FIELDS, ("currency", "price"), UPSERT_LIMIT)
    variants = _variants_of(state.store, entries)
    if UPSERT_JOB in state.running:
        raise ApiFailure(429, "A price list record upsert is already running for this store; retry later")
    state.running.add(UPSERT_JOB)
    try:
        await asyncio.sleep(state.bulk_seconds_per_record * len(entries))
        events = write_records(state.store, price_list_id, entries, variants)
    finally:
        state.running.discard(UPSERT_JOB)
    fire(state, events)
    return {"data": {}, "meta": {}}


def write_records(
    store: StoreData, price_list_id: int, entries: list[dict[str, Any]], variants: list[Record]
) -> list[Event]:
    """Store each entry for its variant; fires records/created and records/updated for the batch."""
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    for entry, variant in zip(entries, variants, strict=True):
        key = (price_list_id, variant["id"], entry["currency"].upper())
        before = store.price_records.get(key)
        record = {
            "price_list_id": price_list_id,
            "variant_id": variant["id"],
            "product_id": variant["product_id"],
            "sku": variant["sku"],
            "currency": key[2],
            "calculated_price": entry["price"],
            "date_created": before["date_created"] if before else iso(now()),
            "date_modified": iso(now()),
            **{k: v for k, v in entry.items() if k not in ("variant_id", "sku", "currency")},
        }
        store.price_records[key] = record
        # The callback schema names it currency_code; the receiver in this repository reads currency.
        mention = {"price_list_id": price_list_id, "variant_id": variant["id"], "currency_code": key[2]}
        mention["currency"] = key[2]
        (updated if before else created).append(mention)
    events: list[Event] = []
    if created:
        events.append(("store/priceList/records/created", created))
    if updated:
        events.append(("store/priceList/records/updated", updated))
    return events


def _variants_of(store: StoreData, entries: list[dict[str, Any]]) -> list[Record]:
    by_id, by_sku = store.variants(), {v["sku"]: v for v in store.variants().values()}
    found_variants, errors = [], {}
    for index, entry in enumerate(entries):
        variant = by_id.get(entry.get("variant_id", -1)) or by_sku.get(entry.get("sku", ""))
        if variant is None:
            errors[f"[{index}].variant_id"] = "give the variant_id or sku of an existing variant"
        else:
            found_variants.append(variant)
    if errors:
        raise ChangeError(422, INVALID, errors)
    return found_variants


def _unique_name(store: StoreData, name: str, own_id: int | None) -> None:
    if any(p["name"] == name and p["id"] != own_id for p in store.price_lists.values()):
        raise ChangeError(409, "A price list with this name already exists", {"name": "must be unique"})


ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v3/pricelists", PRODUCTS, price_lists),
    ("/v3/pricelists", PRODUCTS, create_price_list, "POST"),
    ("/v3/pricelists/{price_list_id}", PRODUCTS, price_list),
    ("/v3/pricelists/{price_list_id}", PRODUCTS, update_price_list, "PUT"),
    ("/v3/pricelists/{price_list_id}", PRODUCTS, delete_price_list, "DELETE"),
    ("/v3/pricelists/{price_list_id}/records", PRODUCTS, price_records),
    ("/v3/pricelists/{price_list_id}/records", PRODUCTS, upsert_price_records, "PUT"),
    ("/v3/pricelists/{price_list_id}/records/{variant_id}/{currency}", PRODUCTS, price_record),
)
