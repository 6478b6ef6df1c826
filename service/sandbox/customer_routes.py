"""v3 customers: list, batch create, batch update and delete by `id:in`, with customer/* events."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.sandbox import changes, modified
from service.sandbox.access import CUSTOMERS
from service.sandbox.changes import Event
from service.sandbox.errors import ChangeError
from service.sandbox.fields import INVALID, Field, checked_list
from service.sandbox.http import SandboxState, fire, id_in, includes, int_list, json_body, keep, v3_list

BATCH_LIMIT = 10
CUSTOMER_FIELDS: dict[str, Field] = {
    "email": Field(str, max_length=250),
    "first_name": Field(str, max_length=100),
    "last_name": Field(str, max_length=100),
    "company": Field(str, max_length=255),
    "phone": Field(str, max_length=50),
    "notes": Field(str),
    "tax_exempt_category": Field(str, max_length=255),
    "customer_group_id": Field(int),
    "accepts_product_review_abandoned_cart_emails": Field(bool),
    "origin_channel_id": Field(int),
    "channel_ids": Field(list, items=int),
    "addresses": Field(list, items=dict),
    "authentication": Field(dict),
    "trigger_account_created_notification": Field(bool),
}
UPDATE_FIELDS = {**CUSTOMER_FIELDS, "id": Field(int)}
STORED_FIELDS = tuple(k for k in CUSTOMER_FIELDS if k not in ("addresses", "authentication"))


async def customers(request: Request, state: SandboxState) -> Any:
    q = request.query_params
    ids = int_list(request, "id:in")
    emails = {e.strip().lower() for e in q.get("email:in", "").split(",") if e.strip()}
    name_like = q.get("name:like", "").lower()
    items = keep(
        sorted(state.store.customers.values(), key=lambda c: c["id"]),
        ids=id_in(ids),
        emails=(lambda c: c["email"].lower() in emails) if emails else None,
        name=(lambda c: name_like in f"{c['first_name']} {c['last_name']}".lower()) if name_like else None,
        modified=modified.v3_modified(request),
    )
    items = modified.ordered(items, modified.colon_sort(request))
    if "addresses" in includes(request):
        items = [
            {**c, "addresses": [a for a in state.store.addresses.values() if a["customer_id"] == c["id"]]}
            for c in items
        ]
    return v3_list(request, items)


async def create_customers(request: Request, state: SandboxState) -> Any:
    entries = checked_list(
        await json_body(request), CUSTOMER_FIELDS, ("email", "first_name", "last_name"), BATCH_LIMIT
    )
    created, events = [], []
    for fields in entries:
        customer, fired = changes.create_customer(
            state.store, {k: v for k, v in fields.items() if k in STORED_FIELDS}
        )
        created.append(customer)
        events.extend(fired)
    fire(state, events)
    return {"data": created, "meta": {}}


async def update_customers(request: Request, state: SandboxState) -> Any:
    """The batch update: every entry names its customer by `id`; all are checked before any changes."""
    entries = checked_list(await json_body(request), UPDATE_FIELDS, ("id",), BATCH_LIMIT)
    store = state.store
    errors = {
        f"[{i}].id": "no such customer" for i, e in enumerate(entries) if e["id"] not in store.customers
    }
    owners = {c["email"].lower(): c["id"] for c in store.customers.values()}
    for index, entry in enumerate(entries):
        owner = owners.get(str(entry.get("email", "")).lower(), entry["id"])
        if owner != entry["id"]:
            errors[f"[{index}].email"] = "already in use"
    if errors:
        raise ChangeError(422, INVALID, errors)
    events: list[Event] = []
    for entry in entries:
        fields = {k: v for k, v in entry.items() if k in STORED_FIELDS}
        events.extend(changes.update_customer(store, entry["id"], fields))
    fire(state, events)
    return {"data": [store.customers[e["id"]] for e in entries], "meta": {}}


async def delete_customers(request: Request, state: SandboxState) -> Any:
    ids = int_list(request, "id:in")
    if not ids:
        raise ChangeError(422, INVALID, {"id:in": "name the customers to delete"})
    events: list[Event] = []
    for customer_id in ids:
        if state.store.customers.pop(customer_id, None) is not None:
            events.append(("store/customer/deleted", {"type": "customer", "id": customer_id}))
    fire(state, events)
    return Response(status_code=204)


ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v3/customers", CUSTOMERS, customers),
    ("/v3/customers", CUSTOMERS, create_customers, "POST"),
    ("/v3/customers", CUSTOMERS, update_customers, "PUT"),
    ("/v3/customers", CUSTOMERS, delete_customers, "DELETE"),
)
