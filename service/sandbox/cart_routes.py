"""Server-side carts (create 201, read, add items 201, delete 204) and their checkouts.

A checkout shares its cart's id; converting it (POST /v3/checkouts/{id}/orders) places a v2 order from
the cart's items, removes the cart, and fires store/order/created and store/cart/converted.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.sandbox import changes
from service.sandbox.access import CARTS, CHECKOUTS
from service.sandbox.data import Record
from service.sandbox.http import SandboxState, fire, found, json_body, v3_one
from service.sandbox.order_routes import place_order
from service.sandbox.orders import v2_address


async def cart(request: Request, state: SandboxState) -> Any:
    return v3_one(found(state.store.carts.get(request.path_params["cart_id"])))


async def create_cart(request: Request, state: SandboxState) -> Any:
    created, events = changes.create_cart(state.store, await json_body(request))
    fire(state, events)
    return JSONResponse(v3_one(created), status_code=201)


async def add_items(request: Request, state: SandboxState) -> Any:
    updated, events = changes.add_cart_items(
        state.store, request.path_params["cart_id"], await json_body(request)
    )
    fire(state, events)
    return JSONResponse(v3_one(updated), status_code=201)


async def delete_cart(request: Request, state: SandboxState) -> Any:
    cart_id = request.path_params["cart_id"]
    changes.get_record(state.store.carts, cart_id, "cart")
    del state.store.carts[cart_id]
    fire(state, [("store/cart/deleted", {"type": "cart", "id": cart_id})])
    return Response(status_code=204)


def checkout_view(cart_record: Record, state: SandboxState) -> Record:
    """The checkout of a cart: its cart, billing address, consignments and totals."""
    subtotal = float(cart_record["cart_amount"])
    shipping = 7.5 if cart_record["line_items"]["physical_items"] else 0.0
    return {
        "id": cart_record["id"],
        "cart": {
            **{k: v for k, v in cart_record.items() if k != "cart_amount"},
            "cart_amount_inc_tax": subtotal,
            "cart_amount_ex_tax": subtotal,
        },
        "billing_address": _billing(cart_record, state),
        "consignments": [],
        "taxes": [],
        "coupons": [],
        "fees": [],
        "order_id": None,
        "shipping_cost_total_inc_tax": shipping,
        "shipping_cost_total_ex_tax": shipping,
        "handling_cost_total_inc_tax": 0.0,
        "handling_cost_total_ex_tax": 0.0,
        "tax_total": 0.0,
        "subtotal_inc_tax": subtotal,
        "subtotal_ex_tax": subtotal,
        "grand_total": round(subtotal + shipping, 2),
        "created_time": cart_record["created_time"],
        "updated_time": cart_record["updated_time"],
        "customer_message": "",
        "promotions": [],
        "version": 1,
    }


def _billing(cart_record: Record, state: SandboxState) -> Record:
    customer = state.store.customers.get(cart_record["customer_id"])
    address = next(
        (a for a in state.store.addresses.values() if customer and a["customer_id"] == customer["id"]), {}
    )
    fields = ("first_name", "last_name", "company", "address1", "address2", "city", "state_or_province")
    billing = {k: address.get(k, "") for k in (*fields, "postal_code", "country_code", "phone")}
    return {**billing, "email": customer["email"] if customer else "", "custom_fields": [], "id": "1"}


async def checkout(request: Request, state: SandboxState) -> Any:
    return v3_one(checkout_view(found(state.store.carts.get(request.path_params["checkout_id"])), state))


async def create_checkout_order(request: Request, state: SandboxState) -> Any:
    """Convert the checkout into an order: a real purchase, so the cart is gone afterwards."""
    cart_record = changes.get_record(state.store.carts, request.path_params["checkout_id"], "checkout")
    billing = _billing(cart_record, state)
    lines = [
        {"product_id": item["product_id"], "variant_id": item["variant_id"], "quantity": item["quantity"]}
        for item in cart_record["line_items"]["physical_items"]
    ]
    body = {
        "billing_address": v2_address(billing, billing["email"]),
        "products": lines,
        "customer_id": cart_record["customer_id"],
        "channel_id": cart_record["channel_id"],
    }
    body["billing_address"].pop("form_fields")  # read-only in a POST body
    order, events = place_order(state.store, body)
    order["cart_id"] = cart_record["id"]
    del state.store.carts[cart_record["id"]]
    converted = {"type": "cart", "id": cart_record["id"], "orderId": order["id"]}
    fire(state, [*events, ("store/cart/converted", converted)])
    return v3_one({"id": order["id"]})


ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v3/carts", CARTS, create_cart, "POST"),
    ("/v3/carts/{cart_id}", CARTS, cart),
    ("/v3/carts/{cart_id}", CARTS, delete_cart, "DELETE"),
    ("/v3/carts/{cart_id}/items", CARTS, add_items, "POST"),
    ("/v3/checkouts/{checkout_id}", CHECKOUTS, checkout),
    ("/v3/checkouts/{checkout_id}/orders", CHECKOUTS, create_checkout_order, "POST"),
)
