"""The access model: areas and levels, declarations checked at import time, the scopes they need, and the
operations table every StoreApi method is listed in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from service.bigcommerce import AREAS, AccessDeclarationError, operations, parse_access
from service.bigcommerce.access import NO_ACCESS
from service.bigcommerce.scopes import required_scope
from workers.handlers import HandlerModuleError, HandlerRegistry, handler, load_handler_modules

# Seed 003's 40 endpoints, group by group (method and path under /stores/{store_hash}).
SEED_ENDPOINTS = {
    "products": [
        "GET /v3/catalog/products",
        "POST /v3/catalog/products",
        "GET /v3/catalog/products/{product_id}",
        "PUT /v3/catalog/products/{product_id}",
        "DELETE /v3/catalog/products/{product_id}",
    ],
    "variants": [
        "GET /v3/catalog/products/{product_id}/variants",
        "POST /v3/catalog/products/{product_id}/variants",
        "PUT /v3/catalog/variants",
    ],
    "categories": [
        "GET /v3/catalog/trees",
        "GET /v3/catalog/trees/categories",
        "POST /v3/catalog/trees/categories",
        "PUT /v3/catalog/trees/categories",
        "DELETE /v3/catalog/trees/categories",
    ],
    "brands": [
        "GET /v3/catalog/brands",
        "POST /v3/catalog/brands",
        "PUT /v3/catalog/brands/{brand_id}",
        "DELETE /v3/catalog/brands/{brand_id}",
    ],
    "price_lists": [
        "GET /v3/pricelists",
        "PUT /v3/pricelists/{price_list_id}/records",
        "PUT /v3/pricelists/{price_list_id}",
        "DELETE /v3/pricelists/{price_list_id}",
    ],
    "orders": [
        "GET /v2/orders",
        "GET /v2/orders/{order_id}",
        "POST /v2/orders",
        "PUT /v2/orders/{order_id}",
        "DELETE /v2/orders/{order_id}",
    ],
    "customers": ["GET /v3/customers", "POST /v3/customers", "PUT /v3/customers", "DELETE /v3/customers"],
    "carts": [
        "POST /v3/carts",
        "GET /v3/carts/{cart_id}",
        "POST /v3/carts/{cart_id}/items",
        "DELETE /v3/carts/{cart_id}",
    ],
    "checkouts": ["GET /v3/checkouts/{checkout_id}", "POST /v3/checkouts/{checkout_id}/orders"],
    "webhooks": ["GET /v3/hooks", "POST /v3/hooks", "PUT /v3/hooks/{hook_id}", "DELETE /v3/hooks/{hook_id}"],
}


def test_the_seed_lists_forty_endpoints_in_ten_groups() -> None:
    assert len(SEED_ENDPOINTS) == 10
    assert sum(len(endpoints) for endpoints in SEED_ENDPOINTS.values()) == 40
    assert set(SEED_ENDPOINTS) == set(AREAS)


def test_every_seed_endpoint_is_a_store_api_operation_of_its_area() -> None:
    served = {(op.area, f"{op.http_method} {op.path}") for op in operations()}

    missing = [
        (area, e) for area, endpoints in SEED_ENDPOINTS.items() for e in endpoints if (area, e) not in served
    ]

    assert missing == []


def test_every_operation_needs_the_scope_the_api_enforces_for_its_path() -> None:
    for op in operations():
        found = required_scope(op.http_method, op.path.replace("{", "").replace("}", ""))
        assert found is not None, op
        family, _label = found
        expected = family if op.level == "write" else f"{family}_read_only"
        assert op.scope == expected, op
        assert (op.level == "read") == (op.http_method == "GET"), op


def test_write_implies_read_and_undeclared_areas_are_denied() -> None:
    policy = parse_access({"orders": "write", "products": "read"}, "handler h")

    assert policy.allows("orders", "write") and policy.allows("orders", "read")
    assert policy.allows("products", "read") and not policy.allows("products", "write")
    assert not policy.allows("customers", "read")
    assert not NO_ACCESS.allows("orders", "read")
    assert parse_access(None, "handler h") == NO_ACCESS
    assert policy.describe() == "orders=write, products=read"
    assert NO_ACCESS.describe() == "no API access"


def test_a_policy_needs_the_modify_scope_where_any_area_of_it_writes() -> None:
    policy = parse_access(
        {"products": "read", "variants": "write", "orders": "read", "checkouts": "write"}, "handler h"
    )

    assert policy.scopes() == ["store_checkout", "store_v2_orders_read_only", "store_v2_products"]
    assert parse_access({"webhooks": "read"}, "h").scopes() == ["store_v2_information_read_only"]


def test_an_unknown_area_is_refused_with_the_closest_name_and_the_list() -> None:
    with pytest.raises(AccessDeclarationError) as caught:
        parse_access({"order": "write"}, "handler myapp.h")

    message = str(caught.value)
    assert message.startswith("handler myapp.h: unknown API area 'order' in access=; did you mean 'orders'?")
    assert "price_lists" in message and "webhooks" in message


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(AccessDeclarationError, match=r"access\['orders'\] is 'admin'; use 'read' or 'write'"):
        parse_access({"orders": "admin"}, "handler h")


def test_the_decorator_checks_access_when_the_module_is_imported() -> None:
    with pytest.raises(AccessDeclarationError, match=r"handler .*\.misdeclared: unknown API area 'product'"):

        @handler("store/product/*", access={"product": "read"})
        def misdeclared(event: object, api: object) -> None:
            pass


def test_a_handler_module_with_a_bad_declaration_names_the_module_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad_access_handlers.py").write_text(
        "from workers.handlers import handler\n\n"
        "@handler('store/order/*', access={'oders': 'write'})\n"
        "def h(event, api):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(HandlerModuleError) as caught:
        load_handler_modules(["bad_access_handlers"])
    sys.modules.pop("bad_access_handlers", None)

    assert "BCWEBHOOKS_HANDLERS: bad_access_handlers: handler bad_access_handlers.h" in str(caught.value)
    assert "did you mean 'orders'?" in str(caught.value)


def test_a_registration_keeps_the_declared_access() -> None:
    registry = HandlerRegistry()

    registry.add(
        lambda event, api: None, "store/order/*", name="h", access=parse_access({"carts": "read"}, "h")
    )

    (registration,) = registry.for_scope("store/order/created")
    assert registration.access.describe() == "carts=read"
