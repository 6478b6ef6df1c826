"""The sandbox's modification-time filters and sorts, under the parameter names BigCommerce's specs use."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from service.sandbox.app import SandboxConfig, create_sandbox_app
from service.sandbox.http import parse_date
from tests.conformance import specs

FULL = {"X-Auth-Token": "sandbox-token"}
BASE = "/stores/sandbox"
LATER = "2030-01-01T00:00:00+00:00"


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(create_sandbox_app(SandboxConfig(products=30, customers=12, orders=20))) as client:
        yield client


def _changed(api: TestClient) -> dict[str, list[int]]:
    body = {"products": 3, "orders": 2, "customers": 2}
    answer = api.post("/_sandbox/changes", json=body)
    assert answer.status_code == 200
    changed: dict[str, list[int]] = answer.json()["changed"]
    return changed


def test_bulk_change_fires_the_documented_events_like_any_write(api: TestClient) -> None:
    changed = _changed(api)
    fired = [(e["scope"], e["data"].get("id")) for e in api.get("/_sandbox/events").json()["events"]]

    assert changed == {"products": [1, 2, 3], "orders": [100, 101], "customers": [1, 2]}
    assert ("store/product/updated", 1) in fired and ("store/order/updated", 101) in fired
    assert ("store/customer/updated", 2) in fired


def test_v2_orders_filter_and_sort_by_date_modified_in_either_format(api: TestClient) -> None:
    _changed(api)
    since = "Thu, 01 Jan 2026 00:00:00 +0000"
    rfc = api.get(
        f"{BASE}/v2/orders", headers=FULL, params={"min_date_modified": "Mon, 01 Jan 2029 00:00:00 +0000"}
    )
    iso = api.get(
        f"{BASE}/v2/orders", headers=FULL, params={"min_date_modified": "2029-01-01T00:00:00+00:00"}
    )
    count = api.get(f"{BASE}/v2/orders/count", headers=FULL, params={"min_date_modified": "2026-11-01"})
    newest = api.get(
        f"{BASE}/v2/orders", headers=FULL, params={"min_date_modified": since, "sort": "date_modified:desc"}
    )

    assert rfc.status_code == iso.status_code == 204  # nothing changed after 2029
    assert count.json()["count"] == 2
    assert {o["id"] for o in newest.json()[:2]} == {100, 101}
    dates = [parse_date(o["date_modified"]) for o in newest.json()]
    assert dates == sorted(dates, reverse=True)


def test_v2_orders_max_date_modified_is_inclusive_and_paged(api: TestClient) -> None:
    first = api.get(f"{BASE}/v2/orders", headers=FULL, params={"sort": "date_modified:asc", "limit": 5})
    top = first.json()[-1]["date_modified"]
    upto = api.get(f"{BASE}/v2/orders", headers=FULL, params={"max_date_modified": top, "limit": 250})

    assert len(first.json()) == 5
    assert all(parse_date(o["date_modified"]) <= parse_date(top) for o in upto.json())
    assert {o["id"] for o in first.json()} <= {o["id"] for o in upto.json()}


def test_products_filter_sort_and_paginate_by_date_modified(api: TestClient) -> None:
    _changed(api)
    params = {"date_modified:min": "2026-06-01T00:00:00Z", "sort": "date_modified", "direction": "asc"}
    page = api.get(f"{BASE}/v3/catalog/products", headers=FULL, params={**params, "limit": 2})
    rest = api.get(f"{BASE}/v3/catalog/products", headers=FULL, params={**params, "limit": 2, "page": 2})
    everything = api.get(f"{BASE}/v3/catalog/products", headers=FULL, params={"sort": "date_modified"})

    assert [p["id"] for p in page.json()["data"]] == [1, 2]
    assert [p["id"] for p in rest.json()["data"]] == [3]
    assert page.json()["meta"]["pagination"]["total"] == 3
    assert [p["id"] for p in everything.json()["data"]][-3:] == [1, 2, 3]


def test_a_product_filter_date_without_a_time_gets_the_current_time_appended(api: TestClient) -> None:
    _changed(api)
    today = datetime.now(tz=UTC).date().isoformat()
    products = api.get(f"{BASE}/v3/catalog/products", headers=FULL, params={"date_modified:max": today})
    customers = api.get(f"{BASE}/v3/customers", headers=FULL, params={"date_modified:max": today})

    # today at the time of the request: the products changed a moment ago are in; for customers a bare
    # date is midnight, so today's changes are out
    assert {1, 2, 3} <= {p["id"] for p in products.json()["data"]}
    assert not {1, 2} & {c["id"] for c in customers.json()["data"]}


def test_customers_subscribers_channels_and_price_lists_filter_by_date_modified(api: TestClient) -> None:
    _changed(api)
    since = {"date_modified:min": "2026-06-01T00:00:00"}
    customers = api.get(f"{BASE}/v3/customers", headers=FULL, params={**since, "sort": "date_modified:desc"})
    later = {"date_modified:min": LATER}
    empty = [
        api.get(f"{BASE}{path}", headers=FULL, params=later).json()["data"]
        for path in (
            "/v3/customers/subscribers",
            "/v3/channels",
            "/v3/pricelists",
            "/v3/pricelists/1/records",
        )
    ]
    everything = api.get(f"{BASE}/v3/channels", headers=FULL, params={"date_modified:min": "2020-01-01"})

    assert sorted(c["id"] for c in customers.json()["data"]) == [1, 2]
    assert empty == [[], [], [], []]
    assert len(everything.json()["data"]) == 1


def test_a_bad_sort_direction_is_a_422(api: TestClient) -> None:
    answer = api.get(
        f"{BASE}/v3/catalog/products", headers=FULL, params={"sort": "date_modified", "direction": "up"}
    )

    assert answer.status_code == 422


SPEC_PARAMETERS = {
    ("GET", "/v2/orders"): {"min_date_modified", "max_date_modified", "sort", "page", "limit"},
    ("GET", "/v2/orders/count"): {"min_date_modified", "max_date_modified"},
    ("GET", "/v3/catalog/products"): {"date_modified:min", "date_modified:max", "sort", "direction", "page"},
    ("GET", "/v3/customers"): {"date_modified:min", "date_modified:max", "sort", "page", "limit"},
    ("GET", "/v3/customers/subscribers"): {"date_modified:min", "date_modified:max"},
    ("GET", "/v3/channels"): {"date_modified:min", "date_modified:max"},
    ("GET", "/v3/pricelists"): {"date_modified:min", "date_modified:max"},
    ("GET", "/v3/pricelists/{}/records"): {"date_modified:min", "date_modified:max"},
}


def _parameter_names(operation: specs.Operation) -> set[str]:
    path_item = specs.load(operation.spec)["paths"][operation.path]
    names = set()
    for parameter in [*path_item.get("parameters", []), *operation.node.get("parameters", [])]:
        resolved: Any = parameter
        if "$ref" in parameter:
            resolved = specs.resolve(operation.spec, parameter["$ref"].lstrip("#"))
        names.add(resolved.get("name"))
    return names


@pytest.mark.skipif(not specs.available(), reason=specs.MISSING)
@pytest.mark.parametrize(("method", "path"), sorted(SPEC_PARAMETERS))
def test_the_filters_use_the_parameter_names_of_the_specs(method: str, path: str) -> None:
    operation = specs.operation(method, path)

    assert operation is not None
    assert SPEC_PARAMETERS[(method, path)] <= _parameter_names(operation)
