"""Catalog brands: list, read, create, update and delete (brands fire no webhooks of their own)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.sandbox.access import PRODUCTS
from service.sandbox.changes import get_record
from service.sandbox.data import Record, StoreData, slug
from service.sandbox.errors import ChangeError
from service.sandbox.fields import Field, checked
from service.sandbox.http import (
    SandboxState,
    found,
    id_in,
    int_list,
    json_body,
    keep,
    path_int,
    v3_list,
    v3_one,
)

BRAND_FIELDS: dict[str, Field] = {
    "name": Field(str, max_length=255),
    "page_title": Field(str, max_length=255),
    "meta_keywords": Field(list, items=str),
    "meta_description": Field(str, max_length=65535),
    "search_keywords": Field(str, max_length=65535),
    "image_url": Field(str),
    "custom_url": Field(dict),
}


async def brands(request: Request, state: SandboxState) -> Any:
    ids, name = int_list(request, "id:in"), request.query_params.get("name")
    items = keep(
        state.store.brands.values(),
        ids=id_in(ids),
        name=(lambda b: b["name"] == name) if name else None,
    )
    return v3_list(request, items)


async def brand(request: Request, state: SandboxState) -> Any:
    return v3_one(found(state.store.brands.get(path_int(request, "brand_id"))))


async def create_brand(request: Request, state: SandboxState) -> Any:
    fields = checked(await json_body(request), BRAND_FIELDS, required=("name",))
    _unique_name(state.store, fields["name"], None)
    brand_id = state.store.new_id("brand")
    record = {
        "id": brand_id,
        "page_title": fields["name"],
        "meta_keywords": [],
        "meta_description": "",
        "search_keywords": "",
        "image_url": "",
        "custom_url": {"url": f"/brands/{slug(fields['name'])}/", "is_customized": False},
        **fields,
    }
    state.store.brands[brand_id] = record
    return v3_one(record)


async def update_brand(request: Request, state: SandboxState) -> Any:
    record = get_record(state.store.brands, path_int(request, "brand_id"), "brand")
    fields = checked(await json_body(request), BRAND_FIELDS, required=("name",))
    _unique_name(state.store, fields["name"], record["id"])
    record.update(fields)
    return v3_one(record)


async def delete_brand(request: Request, state: SandboxState) -> Any:
    brand_id = path_int(request, "brand_id")
    get_record(state.store.brands, brand_id, "brand")
    del state.store.brands[brand_id]
    for product in state.store.products.values():
        if product["brand_id"] == brand_id:
            product["brand_id"] = 0
    return Response(status_code=204)


def _unique_name(store: StoreData, name: str, own_id: int | None) -> None:
    if not name.strip():
        raise ChangeError(422, "JSON data is missing or invalid", {"name": "name must not be empty"})
    clash: Record | None = next(
        (b for b in store.brands.values() if b["name"] == name and b["id"] != own_id), None
    )
    if clash is not None:
        raise ChangeError(409, "Brand name is a duplicate", {"name": f"brand {clash['id']} has that name"})


ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v3/catalog/brands", PRODUCTS, brands),
    ("/v3/catalog/brands", PRODUCTS, create_brand, "POST"),
    ("/v3/catalog/brands/{brand_id}", PRODUCTS, brand),
    ("/v3/catalog/brands/{brand_id}", PRODUCTS, update_brand, "PUT"),
    ("/v3/catalog/brands/{brand_id}", PRODUCTS, delete_brand, "DELETE"),
)
