"""The sandbox's REST endpoints: every read the workers need, the seed's writes, and /v3/hooks."""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from service.sandbox import changes
from service.sandbox.access import ApiAccount
from service.sandbox.data import Record
from service.sandbox.errors import ApiFailure
from service.sandbox.http import (
    Handler,
    SandboxState,
    endpoint,
    found,
    int_list,
    json_body,
    keep,
    parse_date,
    path_int,
    v2_list,
    v3_list,
    v3_one,
)

PRODUCTS, ORDERS, CUSTOMERS, CARTS = (
    "store_v2_products",
    "store_v2_orders",
    "store_v2_customers",
    "store_cart",
)
INFORMATION, TRANSACTIONS, CHANNELS = (
    "store_v2_information",
    "store_v2_transactions",
    "store_channel_settings",
)


def api_routes(state: SandboxState) -> list[Route]:
    """Routes under /stores/{store_hash}."""
    s = state
    store = s.store

    def r(path: str, scope: str, handler: Handler, method: str = "GET") -> Route:
        return Route(path, endpoint(s, scope, method != "GET", handler), methods=[method])

    def fire(events: list[changes.Event]) -> None:
        for scope, data in events:
            s.deliverer.fire(scope, data)

    # ---- v2 store information and orders
    async def store_info(request: Request, account: ApiAccount) -> Any:
        return store.information

    async def orders(request: Request, account: ApiAccount) -> Any:
        q = request.query_params
        status_id, customer_id = q.get("status_id"), q.get("customer_id")
        min_id, max_id = q.get("min_id"), q.get("max_id")
        low = parse_date(q["min_date_created"]) if "min_date_created" in q else None
        high = parse_date(q["max_date_created"]) if "max_date_created" in q else None
        items = keep(
            sorted(store.orders.values(), key=lambda o: o["id"]),
            status=(lambda o: o["status_id"] == int(status_id)) if status_id else None,
            customer=(lambda o: o["customer_id"] == int(customer_id)) if customer_id else None,
            min_id=(lambda o: o["id"] >= int(min_id)) if min_id else None,
            max_id=(lambda o: o["id"] <= int(max_id)) if max_id else None,
            low=(lambda o: parse_date(o["date_created"]) >= low) if low else None,
            high=(lambda o: parse_date(o["date_created"]) <= high) if high else None,
        )
        return v2_list(request, items)

    async def order(request: Request, account: ApiAccount) -> Any:
        return found(store.orders.get(path_int(request, "order_id")))

    def order_children(children: dict[int, list[Record]]) -> Handler:
        async def handler(request: Request, account: ApiAccount) -> Any:
            order_id = path_int(request, "order_id")
            found(store.orders.get(order_id))
            items = children.get(order_id, [])
            q = request.query_params
            items = keep(
                items,
                min_id=(lambda m: m["id"] >= int(q["min_id"])) if "min_id" in q else None,
                max_id=(lambda m: m["id"] <= int(q["max_id"])) if "max_id" in q else None,
            )
            return v2_list(request, items)

        return handler

    async def shipment(request: Request, account: ApiAccount) -> Any:
        order_id, shipment_id = path_int(request, "order_id"), path_int(request, "shipment_id")
        return found(next((x for x in store.shipments.get(order_id, []) if x["id"] == shipment_id), None))

    async def update_order(request: Request, account: ApiAccount) -> Any:
        updated, events = changes.update_order(store, path_int(request, "order_id"), await json_body(request))
        fire(events)
        return updated

    async def order_transactions(request: Request, account: ApiAccount) -> Any:
        order_id = path_int(request, "order_id")
        found(store.orders.get(order_id))
        return v3_list(request, store.transactions.get(order_id, []))

    async def order_refunds(request: Request, account: ApiAccount) -> Any:
        order_id = path_int(request, "order_id")
        found(store.orders.get(order_id))
        return v3_list(request, [x for x in store.refunds.values() if x["order_id"] == order_id])

    async def refund(request: Request, account: ApiAccount) -> Any:
        return v3_one(found(store.refunds.get(path_int(request, "refund_id"))))

    # ---- v3 catalog
    def product_view(product: Record, include: set[str]) -> Record:
        view = {k: v for k, v in product.items() if k not in ("variants", "images")}
        if "variants" in include:
            view["variants"] = copy.deepcopy(product["variants"])
        if "images" in include:
            view["images"] = copy.deepcopy(product["images"])
        return view

    def includes(request: Request) -> set[str]:
        return set(filter(None, request.query_params.get("include", "").split(",")))

    async def products(request: Request, account: ApiAccount) -> Any:
        q = request.query_params
        ids = int_list(request, "id:in")
        keyword, sku = q.get("keyword", "").lower(), q.get("sku")
        name_like, availability = q.get("name:like", "").lower(), q.get("availability")
        items = keep(
            sorted(store.products.values(), key=lambda p: p["id"]),
            ids=(lambda p: p["id"] in ids) if ids is not None else None,
            keyword=(lambda p: keyword in f"{p['name']} {p['sku']} {p['description']}".lower())
            if keyword
            else None,
            sku=(lambda p: sku == p["sku"] or any(v["sku"] == sku for v in p["variants"])) if sku else None,
            name=(lambda p: name_like in p["name"].lower()) if name_like else None,
            availability=(lambda p: p["availability"] == availability) if availability else None,
        )
        return v3_list(request, [product_view(p, includes(request)) for p in items])

    async def product(request: Request, account: ApiAccount) -> Any:
        return v3_one(
            product_view(found(store.products.get(path_int(request, "product_id"))), includes(request))
        )

    async def create_product(request: Request, account: ApiAccount) -> Any:
        created, events = changes.create_product(store, await json_body(request))
        fire(events)
        return v3_one(product_view(created, set()))

    async def update_product(request: Request, account: ApiAccount) -> Any:
        updated, events = changes.update_product(
            store, path_int(request, "product_id"), await json_body(request)
        )
        fire(events)
        return v3_one(product_view(updated, set()))

    async def product_variant(request: Request, account: ApiAccount) -> Any:
        item = found(store.products.get(path_int(request, "product_id")))
        variant_id = path_int(request, "variant_id")
        return v3_one(found(next((v for v in item["variants"] if v["id"] == variant_id), None)))

    async def variants(request: Request, account: ApiAccount) -> Any:
        ids, product_ids = int_list(request, "id:in"), int_list(request, "product_id:in")
        items = keep(
            store.variants().values(),
            ids=(lambda v: v["id"] in ids) if ids is not None else None,
            products=(lambda v: v["product_id"] in product_ids) if product_ids is not None else None,
        )
        return v3_list(request, items)

    async def inventory_items(request: Request, account: ApiAccount) -> Any:
        product_ids, variant_ids = int_list(request, "product_id:in"), int_list(request, "variant_id:in")
        rows = [
            {
                "identity": {"product_id": v["product_id"], "variant_id": v["id"], "sku": v["sku"]},
                "locations": [
                    {
                        "location_id": 1,
                        "available_to_sell": v["inventory_level"],
                        "total_inventory_onhand": v["inventory_level"],
                    }
                ],
            }
            for v in store.variants().values()
        ]
        rows = keep(
            rows,
            p=(lambda x: x["identity"]["product_id"] in product_ids) if product_ids is not None else None,
            v=(lambda x: x["identity"]["variant_id"] in variant_ids) if variant_ids is not None else None,
        )
        return v3_list(request, rows)

    async def tree_categories(request: Request, account: ApiAccount) -> Any:
        ids = int_list(request, "category_id:in")
        items = keep(
            store.categories.values(), ids=(lambda c: c["category_id"] in ids) if ids is not None else None
        )
        return v3_list(request, items)

    async def trees(request: Request, account: ApiAccount) -> Any:
        return v3_list(request, [{"id": 1, "name": "Default tree", "channels": [1]}])

    async def brands(request: Request, account: ApiAccount) -> Any:
        ids = int_list(request, "id:in")
        return v3_list(
            request, keep(store.brands.values(), ids=(lambda b: b["id"] in ids) if ids is not None else None)
        )

    async def brand(request: Request, account: ApiAccount) -> Any:
        return v3_one(found(store.brands.get(path_int(request, "brand_id"))))

    async def price_list(request: Request, account: ApiAccount) -> Any:
        return v3_one(found(store.price_lists.get(path_int(request, "price_list_id"))))

    async def price_record(request: Request, account: ApiAccount) -> Any:
        key = (
            path_int(request, "price_list_id"),
            path_int(request, "variant_id"),
            request.path_params["currency"],
        )
        return v3_one(found(store.price_records.get(key)))

    async def price_assignments(request: Request, account: ApiAccount) -> Any:
        q = request.query_params
        wanted = {k: int(q[k]) for k in ("price_list_id", "channel_id", "customer_group_id") if k in q}
        items = [a for a in store.price_assignments if all(a[k] == v for k, v in wanted.items())]
        return v3_list(request, items)

    def metafield_of(resource_type: str, id_param: str) -> Handler:
        async def handler(request: Request, account: ApiAccount) -> Any:
            resource_id = request.path_params[id_param]
            return v3_one(
                found(store.metafield(resource_type, resource_id, path_int(request, "metafield_id")))
            )

        return handler

    async def locations(request: Request, account: ApiAccount) -> Any:
        ids = int_list(request, "location_id:in")
        return v3_list(
            request,
            keep(store.locations.values(), ids=(lambda x: x["id"] in ids) if ids is not None else None),
        )

    async def stored_instruments(request: Request, account: ApiAccount) -> Any:
        customer = found(store.customers.get(path_int(request, "customer_id")))
        return [
            {
                "type": "stored_card",
                "token": f"tok-{customer['id']}",
                "is_default": True,
                "brand": "visa",
                "last_4": "4242",
                "expiry_month": 12,
                "expiry_year": 2030,
            }
        ]

    # ---- v3 customers, subscribers, carts, channels
    async def customers(request: Request, account: ApiAccount) -> Any:
        q = request.query_params
        ids = int_list(request, "id:in")
        emails = {e.strip().lower() for e in q.get("email:in", "").split(",") if e.strip()}
        name_like = q.get("name:like", "").lower()
        items = keep(
            sorted(store.customers.values(), key=lambda c: c["id"]),
            ids=(lambda c: c["id"] in ids) if ids is not None else None,
            emails=(lambda c: c["email"].lower() in emails) if emails else None,
            name=(lambda c: name_like in f"{c['first_name']} {c['last_name']}".lower())
            if name_like
            else None,
        )
        if "addresses" in includes(request):
            items = [
                {**c, "addresses": [a for a in store.addresses.values() if a["customer_id"] == c["id"]]}
                for c in items
            ]
        return v3_list(request, items)

    async def create_customers(request: Request, account: ApiAccount) -> Any:
        body = await json_body(request)
        if not isinstance(body, list) or not body:
            raise ApiFailure(422, "Invalid input", {"body": "expected an array of customers"})
        created = []
        for fields in body:
            customer, events = changes.create_customer(store, fields)
            fire(events)
            created.append(customer)
        return {"data": created, "meta": {}}

    async def addresses(request: Request, account: ApiAccount) -> Any:
        ids, customer_ids = int_list(request, "id:in"), int_list(request, "customer_id:in")
        items = keep(
            store.addresses.values(),
            ids=(lambda a: a["id"] in ids) if ids is not None else None,
            customers=(lambda a: a["customer_id"] in customer_ids) if customer_ids is not None else None,
        )
        return v3_list(request, items)

    async def subscribers(request: Request, account: ApiAccount) -> Any:
        return v3_list(request, list(store.subscribers.values()))

    async def subscriber(request: Request, account: ApiAccount) -> Any:
        return v3_one(found(store.subscribers.get(path_int(request, "subscriber_id"))))

    async def cart(request: Request, account: ApiAccount) -> Any:
        return v3_one(found(store.carts.get(request.path_params["cart_id"])))

    async def create_cart(request: Request, account: ApiAccount) -> Any:
        created, events = changes.create_cart(store, await json_body(request))
        fire(events)
        return v3_one(created)

    async def add_items(request: Request, account: ApiAccount) -> Any:
        updated, events = changes.add_cart_items(
            store, request.path_params["cart_id"], await json_body(request)
        )
        fire(events)
        return v3_one(updated)

    async def channels(request: Request, account: ApiAccount) -> Any:
        return v3_list(request, list(store.channels.values()))

    async def channel(request: Request, account: ApiAccount) -> Any:
        return v3_one(found(store.channels.get(path_int(request, "channel_id"))))

    return [
        r("/v2/store", INFORMATION, store_info),
        r("/v2/orders", ORDERS, orders),
        r("/v2/orders/{order_id}", ORDERS, order),
        r("/v2/orders/{order_id}", ORDERS, update_order, "PUT"),
        r("/v2/orders/{order_id}/products", ORDERS, order_children(store.order_products)),
        r("/v2/orders/{order_id}/shipping_addresses", ORDERS, order_children(store.order_addresses)),
        r("/v2/orders/{order_id}/shipments", ORDERS, order_children(store.shipments)),
        r("/v2/orders/{order_id}/shipments/{shipment_id}", ORDERS, shipment),
        r("/v2/orders/{order_id}/messages", ORDERS, order_children(store.messages)),
        r("/v3/orders/{order_id}/transactions", TRANSACTIONS, order_transactions),
        r("/v3/orders/{order_id}/payment_actions/refunds", ORDERS, order_refunds),
        r("/v3/orders/payment_actions/refunds/{refund_id}", ORDERS, refund),
        r("/v3/catalog/products", PRODUCTS, products),
        r("/v3/catalog/products", PRODUCTS, create_product, "POST"),
        r("/v3/catalog/products/{product_id}", PRODUCTS, product),
        r("/v3/catalog/products/{product_id}", PRODUCTS, update_product, "PUT"),
        r("/v3/catalog/products/{product_id}/variants/{variant_id}", PRODUCTS, product_variant),
        r("/v3/catalog/variants", PRODUCTS, variants),
        r("/v3/inventory/items", PRODUCTS, inventory_items),
        r("/v3/catalog/trees", PRODUCTS, trees),
        r("/v3/catalog/trees/categories", PRODUCTS, tree_categories),
        r("/v3/catalog/brands", PRODUCTS, brands),
        r("/v3/catalog/brands/{brand_id}", PRODUCTS, brand),
        r("/v3/pricelists/assignments", PRODUCTS, price_assignments),
        r("/v3/pricelists/{price_list_id}", PRODUCTS, price_list),
        r("/v3/pricelists/{price_list_id}/records/{variant_id}/{currency}", PRODUCTS, price_record),
        r(
            "/v3/catalog/products/{resource_id}/metafields/{metafield_id}",
            PRODUCTS,
            metafield_of("product", "resource_id"),
        ),
        r(
            "/v3/catalog/products/{product_id}/variants/{resource_id}/metafields/{metafield_id}",
            PRODUCTS,
            metafield_of("variant", "resource_id"),
        ),
        r(
            "/v3/catalog/categories/{resource_id}/metafields/{metafield_id}",
            PRODUCTS,
            metafield_of("category", "resource_id"),
        ),
        r(
            "/v3/catalog/brands/{resource_id}/metafields/{metafield_id}",
            PRODUCTS,
            metafield_of("brand", "resource_id"),
        ),
        r("/v3/orders/{resource_id}/metafields/{metafield_id}", ORDERS, metafield_of("order", "resource_id")),
        r("/v3/carts/{resource_id}/metafields/{metafield_id}", CARTS, metafield_of("cart", "resource_id")),
        r(
            "/v3/channels/{resource_id}/metafields/{metafield_id}",
            CHANNELS,
            metafield_of("channel", "resource_id"),
        ),
        r("/v3/inventory/locations", PRODUCTS, locations),
        r(
            "/v3/inventory/locations/{resource_id}/metafields/{metafield_id}",
            PRODUCTS,
            metafield_of("location", "resource_id"),
        ),
        r("/v3/customers/{customer_id}/stored-instruments", CUSTOMERS, stored_instruments),
        r("/v3/customers", CUSTOMERS, customers),
        r("/v3/customers", CUSTOMERS, create_customers, "POST"),
        r("/v3/customers/addresses", CUSTOMERS, addresses),
        r("/v3/customers/subscribers", CUSTOMERS, subscribers),
        r("/v3/customers/subscribers/{subscriber_id}", CUSTOMERS, subscriber),
        r("/v3/carts", CARTS, create_cart, "POST"),
        r("/v3/carts/{cart_id}", CARTS, cart),
        r("/v3/carts/{cart_id}/items", CARTS, add_items, "POST"),
        r("/v3/channels", CHANNELS, channels),
        r("/v3/channels/{channel_id}", CHANNELS, channel),
    ]
