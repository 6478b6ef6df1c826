"""Reads integrations use beside seed 003's: the flat (deprecated) categories, a product's images, and a
channel's product listings."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from service.sandbox.access import CHANNELS, PRODUCTS
from service.sandbox.data import Record
from service.sandbox.http import SandboxState, found, id_in, int_list, keep, path_int, v3_list, v3_one


def flat_category(category: Record) -> Record:
    """A category as /v3/catalog/categories shows it (id, and custom_url instead of url)."""
    view = {k: v for k, v in category.items() if k not in ("category_id", "tree_id", "url")}
    url = category.get("url", {})
    custom_url = {"url": url.get("path", "/"), "is_customized": bool(url.get("is_customized", False))}
    return {"id": category["category_id"], **view, "custom_url": custom_url}


async def categories(request: Request, state: SandboxState) -> Any:
    ids, parents = int_list(request, "id:in"), int_list(request, "parent_id:in")
    items = keep(
        state.store.categories.values(), ids=id_in(ids, "category_id"), parents=id_in(parents, "parent_id")
    )
    return v3_list(request, [flat_category(c) for c in items])


async def category(request: Request, state: SandboxState) -> Any:
    return v3_one(flat_category(found(state.store.categories.get(path_int(request, "category_id")))))


async def product_images(request: Request, state: SandboxState) -> Any:
    product = found(state.store.products.get(path_int(request, "product_id")))
    return v3_list(request, product["images"])


async def product_image(request: Request, state: SandboxState) -> Any:
    product = found(state.store.products.get(path_int(request, "product_id")))
    image_id = path_int(request, "image_id")
    return v3_one(found(next((i for i in product["images"] if i["id"] == image_id), None)))


def listing(channel_id: int, product: Record) -> Record:
    """The listing of a product on a channel (every product of the sandbox is listed on its storefront)."""
    state = "active" if product["is_visible"] else "disabled"
    common = {"channel_id": channel_id, "product_id": product["id"], "state": state}
    dates = {"date_created": product["date_created"], "date_modified": product["date_modified"]}
    return {
        **common,
        "listing_id": product["id"],
        "external_id": "",
        "name": product["name"],
        "description": product["description"],
        **dates,
        "variants": [
            {**common, "variant_id": v["id"], "external_id": "", "name": product["name"], **dates}
            for v in product["variants"]
        ],
    }


async def listings(request: Request, state: SandboxState) -> Any:
    channel_id = path_int(request, "channel_id")
    found(state.store.channels.get(channel_id))
    products = sorted(state.store.products.values(), key=lambda p: p["id"])
    return v3_list(request, [listing(channel_id, p) for p in products])


ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v3/catalog/categories", PRODUCTS, categories),
    ("/v3/catalog/categories/{category_id}", PRODUCTS, category),
    ("/v3/catalog/products/{product_id}/images", PRODUCTS, product_images),
    ("/v3/catalog/products/{product_id}/images/{image_id}", PRODUCTS, product_image),
    ("/v3/channels/{channel_id}/listings", CHANNELS, listings),
)
