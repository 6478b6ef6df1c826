"""Metafields of products, variants, categories, brands, orders, carts, channels, locations and customers:
each resource's list and single reads, typed as the REST specs say (resource_id an integer; a cart
metafield's id a string), unlike the webhook payloads, which carry resource_id as a string."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from service.sandbox.access import CARTS, CHANNELS, CUSTOMERS, ORDERS, PRODUCTS
from service.sandbox.data import Record
from service.sandbox.http import SandboxState, StoreHandler, found, path_int, v3_list, v3_one

# (owner kind, collection path, OAuth scope family); the owner's id is the path's {resource_id}.
OWNERS: tuple[tuple[str, str, str], ...] = (
    ("product", "/v3/catalog/products/{resource_id}/metafields", PRODUCTS),
    ("variant", "/v3/catalog/products/{product_id}/variants/{resource_id}/metafields", PRODUCTS),
    ("category", "/v3/catalog/categories/{resource_id}/metafields", PRODUCTS),
    ("brand", "/v3/catalog/brands/{resource_id}/metafields", PRODUCTS),
    ("order", "/v3/orders/{resource_id}/metafields", ORDERS),
    ("cart", "/v3/carts/{resource_id}/metafields", CARTS),
    ("channel", "/v3/channels/{resource_id}/metafields", CHANNELS),
    ("location", "/v3/inventory/locations/{resource_id}/metafields", PRODUCTS),
    ("customer", "/v3/customers/{resource_id}/metafields", CUSTOMERS),
)


def metafield_view(record: Record) -> Record:
    """A metafield as the REST API answers: the owner's numeric id as an integer."""
    view = dict(record)
    if record["resource_type"] == "cart":
        view["id"] = str(record["id"])
        view.pop("resource_id", None)
        view.pop("resource_type", None)
    elif str(record["resource_id"]).isdigit():
        view["resource_id"] = int(record["resource_id"])
    return view


def metafields_of(resource_type: str) -> StoreHandler:
    """The metafields of one resource of `resource_type` (path parameter `resource_id`)."""

    async def handler(request: Request, state: SandboxState) -> Any:
        owned = state.store.metafields.get(f"{resource_type}:{request.path_params['resource_id']}", {})
        return v3_list(request, [metafield_view(m) for _, m in sorted(owned.items())])

    return handler


def metafield_of(resource_type: str) -> StoreHandler:
    """One metafield of a resource of `resource_type`."""

    async def handler(request: Request, state: SandboxState) -> Any:
        resource_id = request.path_params["resource_id"]
        record = state.store.metafield(resource_type, resource_id, path_int(request, "metafield_id"))
        return v3_one(metafield_view(found(record)))

    return handler


ROUTES: tuple[tuple[Any, ...], ...] = tuple(
    route
    for owner, path, scope in OWNERS
    for route in (
        (path, scope, metafields_of(owner)),
        (f"{path}/{{metafield_id}}", scope, metafield_of(owner)),
    )
)
