"""v2 orders: list, count, read, create, update, archive, their sub-lists, and the order statuses.

Orders answer with every documented field and with resource links to the store that answered; DELETE
archives (is_deleted) rather than erasing, and archived orders leave the default list.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.sandbox import modified
from service.sandbox.access import ORDERS
from service.sandbox.changes import Event, get_record, now
from service.sandbox.changes import update_order as change_order
from service.sandbox.data import Record, StoreData
from service.sandbox.errors import ChangeError
from service.sandbox.fields import INVALID, NUMBER, Field, checked, field_errors
from service.sandbox.http import (
    SandboxState,
    api_base,
    fire,
    found,
    json_body,
    keep,
    parse_date,
    path_int,
    v2_list,
)
from service.sandbox.orders import (
    ORDER_STATUSES,
    new_order,
    order_line,
    order_view,
    rfc2822,
    shipping_address,
    v2_address,
)

ADDRESS_FIELDS = {
    name: Field(str)
    for name in (
        "first_name", "last_name", "company", "street_1", "street_2", "city", "state", "zip", "country",
        "country_iso2", "phone", "email",
    )
}  # fmt: skip
ORDER_FIELDS: dict[str, Field] = {
    "billing_address": Field(dict),
    "products": Field(list, items=dict),
    "customer_id": Field(int, minimum=0),
    "status_id": Field(int, choices=tuple(ORDER_STATUSES)),
    "staff_notes": Field(str, max_length=65535),
    "customer_message": Field(str),
    "channel_id": Field(int),
    "payment_method": Field(str),
    "external_source": Field(str, nullable=True),
    "default_currency_code": Field(str),
}
LINE_FIELDS: dict[str, Field] = {
    "product_id": Field(int),
    "variant_id": Field(int),
    "quantity": Field(int, minimum=1),
    "name": Field(str, max_length=250),
    "price_inc_tax": Field(NUMBER),
    "price_ex_tax": Field(NUMBER),
    "sku": Field(str),
    "product_options": Field(list),
}


def visible_orders(request: Request, state: SandboxState) -> list[Record]:
    """The orders a v2 list or count filter selects (archived ones only with is_deleted=true)."""
    q = request.query_params
    status_id, customer_id = q.get("status_id"), q.get("customer_id")
    min_id, max_id = q.get("min_id"), q.get("max_id")
    low = parse_date(q["min_date_created"]) if "min_date_created" in q else None
    high = parse_date(q["max_date_created"]) if "max_date_created" in q else None
    deleted = q.get("is_deleted", "false").lower() == "true"
    chosen = keep(
        sorted(state.store.orders.values(), key=lambda o: o["id"]),
        deleted=lambda o: o["is_deleted"] == deleted,
        status=(lambda o: o["status_id"] == int(status_id)) if status_id else None,
        customer=(lambda o: o["customer_id"] == int(customer_id)) if customer_id else None,
        min_id=(lambda o: o["id"] >= int(min_id)) if min_id else None,
        max_id=(lambda o: o["id"] <= int(max_id)) if max_id else None,
        low=(lambda o: parse_date(o["date_created"]) >= low) if low else None,
        high=(lambda o: parse_date(o["date_created"]) <= high) if high else None,
        modified=modified.v2_modified(request),
    )
    return modified.ordered(chosen, modified.colon_sort(request))


async def orders(request: Request, state: SandboxState) -> Any:
    base = api_base(request, state)
    return v2_list(request, [order_view(o, base) for o in visible_orders(request, state)])


async def orders_count(request: Request, state: SandboxState) -> Any:
    counted = visible_orders(request, state)
    statuses = [
        {**status, "count": sum(o["status_id"] == status["id"] for o in counted), "sort_order": status["id"]}
        for status in order_statuses_list()
    ]
    return {"statuses": statuses, "count": len(counted)}


async def order(request: Request, state: SandboxState) -> Any:
    return order_view(found(state.store.orders.get(path_int(request, "order_id"))), api_base(request, state))


async def create_order(request: Request, state: SandboxState) -> Any:
    body = checked(await json_body(request), ORDER_FIELDS, required=("billing_address", "products"))
    created, events = place_order(state.store, body)
    fire(state, events)
    return order_view(created, api_base(request, state))


async def update_order(request: Request, state: SandboxState) -> Any:
    updated, events = change_order(state.store, path_int(request, "order_id"), await json_body(request))
    fire(state, events)
    return order_view(updated, api_base(request, state))


async def archive_order(request: Request, state: SandboxState) -> Any:
    """DELETE /v2/orders/{id}: the order is archived (is_deleted), not erased; fires order/archived."""
    record = get_record(state.store.orders, path_int(request, "order_id"), "order", v2=True)
    record.update(is_deleted=True, date_modified=rfc2822(now()))
    fire(state, [("store/order/archived", {"type": "order", "id": record["id"]})])
    return Response(status_code=204)


def place_order(store: StoreData, body: dict[str, Any]) -> tuple[Record, list[Event]]:
    """A new order from a v2 POST body (catalog or custom products); fires order/created."""
    errors = field_errors(body["billing_address"], ADDRESS_FIELDS, where="billing_address.")
    for index, line in enumerate(body["products"]):
        errors.update(field_errors(line, LINE_FIELDS, ("quantity",), where=f"products[{index}]."))
    if not body["products"]:
        errors["products"] = "at least one product is required"
    if errors:
        raise ChangeError(422, INVALID, errors)
    store.next_ids.setdefault("order", 99)
    order_id = store.new_id("order")
    lines = [_line(store, order_id, index, line) for index, line in enumerate(body["products"])]
    billing = v2_address(body["billing_address"], body["billing_address"].get("email", ""))
    extra = {k: v for k, v in body.items() if k not in ("billing_address", "products")}
    created = new_order(store, order_id, lines, billing, now(), **{"status_id": 1, **extra})
    if "status_id" in extra:
        created["status"] = ORDER_STATUSES[extra["status_id"]]
    store.order_products[order_id] = lines
    store.order_addresses[order_id] = [shipping_address(store, created, created["items_total"])]
    store.shipments[order_id], store.messages[order_id], store.transactions[order_id] = [], [], []
    return created, [("store/order/created", {"type": "order", "id": order_id})]


def _line(store: StoreData, order_id: int, index: int, line: dict[str, Any]) -> Record:
    if "product_id" not in line:
        missing = [k for k in ("name", "price_inc_tax", "price_ex_tax") if k not in line]
        if missing:
            raise ChangeError(422, INVALID, {f"products[{index}]": f"{missing}"})
        custom = {"id": 0, "name": line["name"], "type": "physical", "price": 0}
        priced = {"id": 0, "sku": line.get("sku", ""), "price": line["price_inc_tax"]}
        return {**order_line(store, order_id, custom, priced, line["quantity"]), "product_id": 0}
    product = store.products.get(line["product_id"])
    variants: list[Record] = product["variants"] if product else []
    variant: Record | None = next((v for v in variants if v["id"] == line.get("variant_id", v["id"])), None)
    if product is None or variant is None:
        raise ChangeError(422, INVALID, {f"products[{index}]": "no such product"})
    return order_line(store, order_id, product, variant, line["quantity"])


def order_children(attribute: str) -> Any:
    """A v2 sub-list of an order, such as its products: `attribute` names the store's mapping."""

    async def handler(request: Request, state: SandboxState) -> Any:
        order_id = path_int(request, "order_id")
        found(state.store.orders.get(order_id))
        children: dict[int, list[Record]] = getattr(state.store, attribute)
        q = request.query_params
        items = keep(
            children.get(order_id, []),
            min_id=(lambda m: m["id"] >= int(q["min_id"])) if "min_id" in q else None,
            max_id=(lambda m: m["id"] <= int(q["max_id"])) if "max_id" in q else None,
        )
        return v2_list(request, items)

    return handler


async def shipment(request: Request, state: SandboxState) -> Any:
    order_id, shipment_id = path_int(request, "order_id"), path_int(request, "shipment_id")
    return found(next((x for x in state.store.shipments.get(order_id, []) if x["id"] == shipment_id), None))


def order_statuses_list() -> list[Record]:
    """The platform's order statuses, with their system labels."""
    return [
        {"id": i, "name": name, "system_label": name, "custom_label": name, "system_description": name}
        for i, name in ORDER_STATUSES.items()
    ]


async def order_statuses(request: Request, state: SandboxState) -> Any:
    return order_statuses_list()


async def order_status(request: Request, state: SandboxState) -> Any:
    status_id = path_int(request, "status_id")
    return found(next((s for s in order_statuses_list() if s["id"] == status_id), None))


ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v2/orders", ORDERS, orders),
    ("/v2/orders", ORDERS, create_order, "POST"),
    ("/v2/orders/count", ORDERS, orders_count),
    ("/v2/orders/{order_id}", ORDERS, order),
    ("/v2/orders/{order_id}", ORDERS, update_order, "PUT"),
    ("/v2/orders/{order_id}", ORDERS, archive_order, "DELETE"),
    ("/v2/orders/{order_id}/products", ORDERS, order_children("order_products")),
    ("/v2/orders/{order_id}/shipping_addresses", ORDERS, order_children("order_addresses")),
    ("/v2/orders/{order_id}/coupons", ORDERS, order_children("order_coupons")),
    ("/v2/orders/{order_id}/shipments", ORDERS, order_children("shipments")),
    ("/v2/orders/{order_id}/shipments/{shipment_id}", ORDERS, shipment),
    ("/v2/orders/{order_id}/messages", ORDERS, order_children("messages")),
    ("/v2/order_statuses", ORDERS, order_statuses),
    ("/v2/order_statuses/{status_id}", ORDERS, order_status),
)
