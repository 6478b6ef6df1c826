"""Category trees and the bulk writes of their categories (/v3/catalog/trees/categories).

Creates answer 201, updates 200 and deletes 202, each for a whole batch, checked as a whole first; every
category written fires store/category/created, updated or deleted.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from service.sandbox.access import PRODUCTS
from service.sandbox.changes import INT32, Event
from service.sandbox.data import Record, StoreData, slug
from service.sandbox.errors import ChangeError
from service.sandbox.fields import INVALID, Field, checked_list
from service.sandbox.http import SandboxState, fire, id_in, int_list, json_body, keep, v3_list

DEFAULT_TREE = {"id": 1, "name": "Default tree", "channels": [1]}
CATEGORY_FIELDS: dict[str, Field] = {
    "name": Field(str, max_length=50),
    "parent_id": Field(int, minimum=0),
    "tree_id": Field(int),
    "description": Field(str),
    "views": Field(int),
    "sort_order": Field(int, minimum=-INT32 - 1, maximum=INT32),
    "page_title": Field(str),
    "meta_keywords": Field(list, items=str),
    "meta_description": Field(str, max_length=65535),
    "layout_file": Field(str, max_length=50),
    "image_url": Field(str),
    "is_visible": Field(bool),
    "search_keywords": Field(str, max_length=255),
    "url": Field(dict),
}
UPDATE_FIELDS = {**CATEGORY_FIELDS, "category_id": Field(int)}
BATCH_LIMIT = 1000


async def trees(request: Request, state: SandboxState) -> Any:
    return v3_list(request, [DEFAULT_TREE])


async def tree_categories(request: Request, state: SandboxState) -> Any:
    ids, trees_in = int_list(request, "category_id:in"), int_list(request, "tree_id:in")
    parents = int_list(request, "parent_id:in")
    items = keep(
        state.store.categories.values(),
        ids=id_in(ids, "category_id"),
        trees=id_in(trees_in, "tree_id"),
        parents=id_in(parents, "parent_id"),
    )
    return v3_list(request, items)


async def create_categories(request: Request, state: SandboxState) -> Any:
    entries = checked_list(await json_body(request), CATEGORY_FIELDS, ("name",), BATCH_LIMIT)
    _check_parents(state.store, entries)
    created, events = [], []
    for entry in entries:
        category, fired = add_category(state.store, entry)
        created.append(category)
        events.extend(fired)
    fire(state, events)
    return JSONResponse(_batch(created), status_code=201)


async def update_categories(request: Request, state: SandboxState) -> Any:
    entries = checked_list(await json_body(request), UPDATE_FIELDS, ("category_id",), BATCH_LIMIT)
    missing = {
        f"[{i}].category_id": "no such category"
        for i, entry in enumerate(entries)
        if entry["category_id"] not in state.store.categories
    }
    if missing:
        raise ChangeError(422, INVALID, missing)
    _check_parents(state.store, entries)
    updated = []
    for entry in entries:
        category = state.store.categories[entry["category_id"]]
        category.update({k: v for k, v in entry.items() if k != "category_id"})
        updated.append(category)
    fire(state, [("store/category/updated", _event(c)) for c in updated])
    return _batch(updated)


async def delete_categories(request: Request, state: SandboxState) -> Any:
    ids, trees_in = int_list(request, "category_id:in"), int_list(request, "tree_id:in")
    parents = int_list(request, "parent_id:in")
    if ids is None and trees_in is None and parents is None:
        raise ChangeError(
            422,
            INVALID,
            {"category_id:in": "give category_id:in, tree_id:in or parent_id:in"},
        )
    doomed = keep(
        list(state.store.categories.values()),
        ids=id_in(ids, "category_id"),
        trees=id_in(trees_in, "tree_id"),
        parents=id_in(parents, "parent_id"),
    )
    events: list[Event] = []
    for category in doomed:
        events.extend(remove_category(state.store, category["category_id"]))
    fire(state, events)
    return JSONResponse({"meta": {"total": len(doomed), "success": len(doomed), "failed": 0}}, 202)


def add_category(store: StoreData, fields: dict[str, Any]) -> tuple[Record, list[Event]]:
    """A new category in its tree (tree 1 unless given), under `parent_id` (0: top level)."""
    category_id = store.new_id("category")
    category = {
        "category_id": category_id,
        "parent_id": 0,
        "tree_id": DEFAULT_TREE["id"],
        "is_visible": True,
        "sort_order": 0,
        "url": {"path": f"/{slug(fields['name'])}-{category_id}/", "is_customized": False},
        **fields,
    }
    store.categories[category_id] = category
    return category, [("store/category/created", _event(category))]


def remove_category(store: StoreData, category_id: int) -> list[Event]:
    """Delete a category and its descendants, and unlink them from products."""
    doomed = _descendants(store, category_id)
    events: list[Event] = []
    for gone in doomed:
        if store.categories.pop(gone, None) is not None:
            events.append(("store/category/deleted", {"type": "category", "id": gone}))
    for product in store.products.values():
        product["categories"] = [c for c in product["categories"] if c not in doomed]
    return events


def _descendants(store: StoreData, category_id: int) -> list[int]:
    found_ids = [category_id]
    for child in [c for c in store.categories.values() if c["parent_id"] == category_id]:
        found_ids.extend(_descendants(store, child["category_id"]))
    return found_ids


def _check_parents(store: StoreData, entries: list[dict[str, Any]]) -> None:
    errors = {
        f"[{i}].parent_id": "no such parent category"
        for i, entry in enumerate(entries)
        if entry.get("parent_id") and entry["parent_id"] not in store.categories
    }
    errors.update(
        {
            f"[{i}].tree_id": "no such tree"
            for i, entry in enumerate(entries)
            if "tree_id" in entry and entry["tree_id"] != DEFAULT_TREE["id"]
        }
    )
    if errors:
        raise ChangeError(422, INVALID, errors)


def _event(category: Record) -> dict[str, Any]:
    return {"type": "category", "id": category["category_id"]}


def _batch(items: list[Record]) -> dict[str, Any]:
    return {"data": items, "meta": {"total": len(items), "success": len(items), "failed": 0}}


ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v3/catalog/trees", PRODUCTS, trees),
    ("/v3/catalog/trees/categories", PRODUCTS, tree_categories),
    ("/v3/catalog/trees/categories", PRODUCTS, create_categories, "POST"),
    ("/v3/catalog/trees/categories", PRODUCTS, update_categories, "PUT"),
    ("/v3/catalog/trees/categories", PRODUCTS, delete_categories, "DELETE"),
)
