"""The list sweeps of a backfill: per family, the endpoint that filters by modification time (BIGCOMMERCE.md
9.1), how to ask it for one page, and which families have no such filter (9.2) and so cannot be swept.

A sorted family is read by a cursor on date_modified (ascending) rather than by page numbers alone: each
request asks for records modified at or after the last one seen, so a record changed during the sweep (it
moves to the end) cannot shift an unread one onto a page already read. Only when a whole page shares one
date_modified does the page number advance. Records read twice at a cursor boundary are skipped by their
deterministic event ids and the version fence. Families without a sort are paged by number.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.bigcommerce import ApiClient
from workers.fence import modified_ms

PAGE_LIMIT = 250
OVERLAP_SECONDS = 300.0  # the sweep starts this long before the gap: clocks and filter bounds are fuzzy

Record = dict[str, Any]


@dataclass(frozen=True)
class Family:
    """One family of records a backfill can sweep.

    Parameters:
      name: how progress and results name it ("products").
      resource_type: the processed event's resource_type (as the resolvers name it).
      scope_prefix: its events' scope without the verb ("store/product/"): the backfill's events are
        `<prefix>created` or `<prefix>updated`, and a gap's scope globs select the family through it.
      path: the list endpoint.
      filters: the query parameters selecting records modified in [since, until] (Unix seconds).
      sorted: whether the endpoint sorts by date_modified (else pages are read by number).
      record: the processed event's record for one list item (the live event's shape).
      v2: a v2 list (a flat array, 204 when empty) rather than v3 (data + meta).
      resource_id: the processed event's resource_id for one list item.
      parents: for a list per parent (price-list records: one per price list), the parents' ids; `path`
        names the parent `{parent}`.
    """

    name: str
    resource_type: str
    scope_prefix: str
    path: str
    filters: Callable[[float, float], dict[str, str]]
    sorted: bool
    record: Callable[[Record], Any] = lambda item: item
    v2: bool = False
    resource_id: Callable[[Record], str] = lambda item: str(item["id"])
    parents: Callable[[ApiClient], list[int]] | None = None

    def covered_by(self, globs: tuple[str, ...]) -> bool:
        """Whether any of a gap's scope globs selects this family's events."""
        scopes = (f"{self.scope_prefix}created", f"{self.scope_prefix}updated")
        return any(fnmatch.fnmatchcase(scope, glob) for glob in globs for scope in scopes)

    def page(
        self, client: ApiClient, since: float, until: float, page: int, parent: int | None = None
    ) -> list[Record]:
        """One page of records modified in [since, until] (of one parent's list), oldest first when the
        endpoint sorts."""
        params: dict[str, str | int | bool] = {
            **self.filters(since, until),
            "page": page,
            "limit": PAGE_LIMIT,
        }
        body = client.get_json(self.path.format(parent=parent), params)
        if body is None:
            return []
        items = body if self.v2 else body.get("data", [])
        return list(items) if isinstance(items, list) else []

    def scope_of(self, item: Record) -> str:
        """`created` when the record was never modified after its creation, else `updated`."""
        created = item.get("date_created") == item.get("date_modified")
        return self.scope_prefix + ("created" if created else "updated")


@dataclass(frozen=True)
class Unswept:
    """A family no time filter can recover (BIGCOMMERCE.md 9.2), and why."""

    name: str
    scopes: tuple[str, ...]
    why: str

    def covered_by(self, globs: tuple[str, ...]) -> bool:
        """Whether any of a gap's scope globs selects this family's events."""
        return any(fnmatch.fnmatchcase(scope, glob) for glob in globs for scope in self.scopes)


def iso(moment: float) -> str:
    """A filter value: ISO-8601 with an explicit UTC offset."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _v2_window(since: float, until: float) -> dict[str, str]:
    return {"min_date_modified": iso(since), "max_date_modified": iso(until)}


def _v3_window(since: float, until: float) -> dict[str, str]:
    return {"date_modified:min": iso(since), "date_modified:max": iso(until)}


FAMILIES: tuple[Family, ...] = (
    Family(
        "orders",
        "order",
        "store/order/",
        "/v2/orders",
        lambda s, u: {**_v2_window(s, u), "sort": "date_modified:asc"},
        sorted=True,
        record=lambda item: {"order": item},  # the list's order; its products are not fetched again
        v2=True,
    ),
    Family(
        "products",
        "product",
        "store/product/",
        "/v3/catalog/products",
        lambda s, u: {
            **_v3_window(s, u),
            "sort": "date_modified",
            "direction": "asc",
            "include": "variants,images,custom_fields",  # the live event's record shape
        },
        sorted=True,
    ),
    Family(
        "customers",
        "customer",
        "store/customer/",
        "/v3/customers",
        lambda s, u: {**_v3_window(s, u), "sort": "date_modified:asc", "include": "addresses"},
        sorted=True,
    ),
    Family("subscribers", "subscriber", "store/subscriber/", "/v3/customers/subscribers", _v3_window, False),
    Family("channels", "channel", "store/channel/", "/v3/channels", _v3_window, sorted=False),
    Family("price_lists", "price_list", "store/priceList/", "/v3/pricelists", _v3_window, sorted=False),
    Family(
        "price_list_records",
        "price_list_records",  # as the live events name it, whose record is a list of records
        "store/priceList/record/",
        "/v3/pricelists/{parent}/records",
        _v3_window,
        sorted=False,
        record=lambda item: [item],
        resource_id=lambda item: f"{item['price_list_id']}:{item['variant_id']}:{item['currency']}",
        parents=lambda client: sorted(int(p["id"]) for p in client.v3_items("/v3/pricelists")),
    ),
)

UNSWEPT: tuple[Unswept, ...] = (
    Unswept("variants", ("store/sku/updated", "store/sku/inventory/updated"), "variants have no date field"),
    Unswept("categories", ("store/category/updated",), "no date filter"),
    Unswept("brands", ("store/brand/metafield/updated",), "no date filter"),
    Unswept("customer_addresses", ("store/customer/address/updated",), "no date filter"),
    Unswept("carts", ("store/cart/updated", "store/cart/lineItem/updated"), "no list endpoint"),
    Unswept("shipments", ("store/shipment/created",), "listed per order only, no date filter"),
    Unswept("transactions", ("store/order/transaction/created",), "listed per order only, no date filter"),
    Unswept("inventory", ("store/product/inventory/updated",), "no date filter on inventory levels"),
    Unswept("price_list_assignments", ("store/priceList/assignment/updated",), "no date filter"),
)


def families_for(globs: tuple[str, ...]) -> tuple[list[Family], list[Unswept]]:
    """The families a gap's scope globs select: those a sweep recovers, and those it cannot."""
    return [f for f in FAMILIES if f.covered_by(globs)], [u for u in UNSWEPT if u.covered_by(globs)]


def family_named(name: str) -> Family:
    """A sweepable family by name (KeyError for an unknown one)."""
    for family in FAMILIES:
        if family.name == name:
            return family
    raise KeyError(name)


def modified_of(item: Record) -> float:
    """A list item's date_modified in Unix seconds."""
    return modified_ms(str(item["date_modified"])) / 1000
