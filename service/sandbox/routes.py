"""The sandbox's REST endpoints: every read the workers need, the seed's writes, and /v3/hooks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from service.sandbox import (
    brand_routes,
    cart_routes,
    category_routes,
    customer_routes,
    listing_routes,
    metafield_routes,
    order_routes,
    pricelist_routes,
    variant_routes,
)
from service.sandbox.access import (
    CHANNELS,
    CUSTOMERS,
    INFORMATION,
    ORDERS,
    PRODUCTS,
    TRANSACTIONS,
    ApiAccount,
)
from service.sandbox.catalog_routes import (
    create_product,
    delete_product,
    inventory_items,
    locations,
    price_assignments,
    product,
    products,
    stored_instruments,
    update_product,
    variants,
)
from service.sandbox.http import (
    Handler,
    SandboxState,
    StoreHandler,
    endpoint,
    found,
    id_in,
    int_list,
    keep,
    path_int,
    v3_list,
    v3_one,
)
from service.sandbox.modified import v3_modified


def api_routes(state: SandboxState) -> list[Route]:
    """Routes under /stores/{store_hash}: each endpoint behind token, quota, scope and fault checks."""
    return [
        Route(path, endpoint(state, scope, method != "GET", _bound(handler, state)), methods=[method])
        for path, scope, handler, *methods in served_routes()
        for method in (methods or ["GET"])
    ]


def served_routes() -> tuple[tuple[Any, ...], ...]:
    """Every (path, OAuth scope family, endpoint[, method]) the store serves, area by area."""
    areas = (
        variant_routes,
        category_routes,
        brand_routes,
        pricelist_routes,
        order_routes,
        customer_routes,
        cart_routes,
        metafield_routes,
        listing_routes,
    )
    return (*API_ROUTES, *(route for area in areas for route in area.ROUTES))


def _bound(handler: StoreHandler, state: SandboxState) -> Handler:
    async def run(request: Request, account: ApiAccount) -> Any:
        return await handler(request, state)

    return run


# ---- v2 store information and orders
async def store_info(request: Request, state: SandboxState) -> Any:
    return state.store.information


async def order_transactions(request: Request, state: SandboxState) -> Any:
    order_id = path_int(request, "order_id")
    found(state.store.orders.get(order_id))
    return v3_list(request, state.store.transactions.get(order_id, []))


async def order_refunds(request: Request, state: SandboxState) -> Any:
    order_id = path_int(request, "order_id")
    found(state.store.orders.get(order_id))
    return v3_list(request, [x for x in state.store.refunds.values() if x["order_id"] == order_id])


async def refund(request: Request, state: SandboxState) -> Any:
    return v3_one(found(state.store.refunds.get(path_int(request, "refund_id"))))


# ---- v3 customers, subscribers, carts, channels
async def addresses(request: Request, state: SandboxState) -> Any:
    ids, customer_ids = int_list(request, "id:in"), int_list(request, "customer_id:in")
    items = keep(
        state.store.addresses.values(),
        ids=id_in(ids),
        customers=(lambda a: a["customer_id"] in customer_ids) if customer_ids is not None else None,
    )
    return v3_list(request, items)


async def subscribers(request: Request, state: SandboxState) -> Any:
    return v3_list(request, keep(state.store.subscribers.values(), modified=v3_modified(request)))


async def subscriber(request: Request, state: SandboxState) -> Any:
    return v3_one(found(state.store.subscribers.get(path_int(request, "subscriber_id"))))


async def channels(request: Request, state: SandboxState) -> Any:
    return v3_list(request, keep(state.store.channels.values(), modified=v3_modified(request)))


async def channel(request: Request, state: SandboxState) -> Any:
    return v3_one(found(state.store.channels.get(path_int(request, "channel_id"))))


# (path, OAuth scope family, endpoint[, method]); GET unless a method is given.
API_ROUTES: tuple[tuple[Any, ...], ...] = (
    ("/v2/store", INFORMATION, store_info),
    ("/v3/orders/{order_id}/transactions", TRANSACTIONS, order_transactions),
    ("/v3/orders/{order_id}/payment_actions/refunds", ORDERS, order_refunds),
    ("/v3/orders/payment_actions/refunds/{refund_id}", ORDERS, refund),
    ("/v3/catalog/products", PRODUCTS, products),
    ("/v3/catalog/products", PRODUCTS, create_product, "POST"),
    ("/v3/catalog/products/{product_id}", PRODUCTS, product),
    ("/v3/catalog/products/{product_id}", PRODUCTS, update_product, "PUT"),
    ("/v3/catalog/products/{product_id}", PRODUCTS, delete_product, "DELETE"),
    ("/v3/catalog/variants", PRODUCTS, variants),
    ("/v3/inventory/items", PRODUCTS, inventory_items),
    ("/v3/pricelists/assignments", PRODUCTS, price_assignments),
    ("/v3/inventory/locations", PRODUCTS, locations),
    ("/v3/customers/{customer_id}/stored-instruments", CUSTOMERS, stored_instruments),
    ("/v3/customers/addresses", CUSTOMERS, addresses),
    ("/v3/customers/subscribers", CUSTOMERS, subscribers),
    ("/v3/customers/subscribers/{subscriber_id}", CUSTOMERS, subscriber),
    ("/v3/channels", CHANNELS, channels),
    ("/v3/channels/{channel_id}", CHANNELS, channel),
)
