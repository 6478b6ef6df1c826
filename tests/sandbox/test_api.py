"""The sandbox's REST API: auth, scopes, quota, envelopes, errors, filters and the writes' events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from service.sandbox.app import SandboxConfig, create_sandbox_app

FULL = {"X-Auth-Token": "sandbox-token"}
READ_ONLY = {"X-Auth-Token": "sandbox-read-only-token"}
BASE = "/stores/sandbox"


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(create_sandbox_app(SandboxConfig())) as client:
        yield client


def test_unknown_token_gets_401_in_each_generation_s_error_shape(api: TestClient) -> None:
    v2 = api.get(f"{BASE}/v2/orders/100", headers={"X-Auth-Token": "nope"})
    v3 = api.get(f"{BASE}/v3/catalog/products")

    assert v2.status_code == v3.status_code == 401
    assert v2.json()[0]["status"] == 401
    assert v3.json()["status"] == 401 and "title" in v3.json() and "type" in v3.json()


def test_reads_accept_read_only_scopes_and_writes_need_modify(api: TestClient) -> None:
    assert api.get(f"{BASE}/v2/orders/100", headers=READ_ONLY).status_code == 200
    refused = api.put(f"{BASE}/v2/orders/100", headers=READ_ONLY, json={"status_id": 2})

    assert refused.status_code == 403
    assert api.put(f"{BASE}/v2/orders/100", headers=FULL, json={"status_id": 2}).status_code == 200


def test_token_without_a_scope_gets_403(tmp_path: object) -> None:
    from service.sandbox.access import ApiAccount

    config = SandboxConfig(
        accounts=[ApiAccount("orders-only", "c", "s", frozenset({"store_v2_orders_read_only"}))]
    )
    with TestClient(create_sandbox_app(config)) as client:
        headers = {"X-Auth-Token": "orders-only"}
        assert client.get(f"{BASE}/v2/orders/100", headers=headers).status_code == 200
        assert client.get(f"{BASE}/v3/catalog/products/1", headers=headers).status_code == 403
        assert client.get(f"{BASE}/v3/hooks", headers=headers).status_code == 403


def test_every_response_carries_the_rate_limit_headers(api: TestClient) -> None:
    first = api.get(f"{BASE}/v2/store", headers=FULL)
    second = api.get(f"{BASE}/v3/catalog/products/1", headers=FULL)

    assert first.headers["x-rate-limit-requests-quota"] == "150"
    assert first.headers["x-rate-limit-time-window-ms"] == "30000"
    assert int(first.headers["x-rate-limit-requests-left"]) == 149
    assert int(second.headers["x-rate-limit-requests-left"]) == 148
    assert 0 < int(second.headers["x-rate-limit-time-reset-ms"]) <= 30000


def test_quota_exhausted_gets_429_with_the_reset_time_until_the_window_rolls() -> None:
    with TestClient(create_sandbox_app(SandboxConfig(quota=3, window_seconds=0.5))) as client:
        answers = [client.get(f"{BASE}/v2/store", headers=FULL) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        limited = answers[-1]
        assert limited.headers["x-rate-limit-requests-left"] == "0"
        assert 0 < int(limited.headers["x-rate-limit-time-reset-ms"]) <= 500
        assert int(limited.headers["x-retry-after"]) >= 1
        import time

        time.sleep(int(limited.headers["x-rate-limit-time-reset-ms"]) / 1000 + 0.05)
        assert client.get(f"{BASE}/v2/store", headers=FULL).status_code == 200


def test_v3_lists_paginate_with_meta(api: TestClient) -> None:
    page = api.get(f"{BASE}/v3/catalog/products?limit=25&page=2", headers=FULL).json()

    assert len(page["data"]) == 25
    assert page["data"][0]["id"] == 26
    pagination = page["meta"]["pagination"]
    assert (pagination["total"], pagination["current_page"], pagination["total_pages"]) == (60, 2, 3)
    assert pagination["links"]["next"] == "?page=3&limit=25"


def test_v3_limit_is_capped_at_250(api: TestClient) -> None:
    page = api.get(f"{BASE}/v3/catalog/products?limit=1000", headers=FULL).json()

    assert page["meta"]["pagination"]["per_page"] == 250


def test_v2_lists_are_flat_arrays_and_204_when_empty(api: TestClient) -> None:
    orders = api.get(f"{BASE}/v2/orders?limit=5", headers=FULL)
    none = api.get(f"{BASE}/v2/orders?min_id=100000", headers=FULL)

    assert isinstance(orders.json(), list) and len(orders.json()) == 5
    assert (none.status_code, none.content) == (204, b"")


def test_unknown_ids_get_404(api: TestClient) -> None:
    v2 = api.get(f"{BASE}/v2/orders/99999", headers=FULL)
    v3 = api.get(f"{BASE}/v3/catalog/products/99999", headers=FULL)

    assert v2.status_code == v3.status_code == 404
    assert v2.json() == [{"status": 404, "message": "The requested resource was not found."}]


def test_filters_the_workers_use(api: TestClient) -> None:
    by_ids = api.get(f"{BASE}/v3/catalog/products?id:in=3,5", headers=FULL).json()["data"]
    product = by_ids[0]
    by_sku = api.get(f"{BASE}/v3/catalog/products?sku={product['sku']}", headers=FULL).json()["data"]
    customers = api.get(f"{BASE}/v3/customers?id:in=1,2,3&include=addresses", headers=FULL).json()["data"]
    email = customers[0]["email"]
    by_email = api.get(f"{BASE}/v3/customers?email:in={email}", headers=FULL).json()["data"]
    tree = api.get(f"{BASE}/v3/catalog/trees/categories?category_id:in=2", headers=FULL).json()["data"]
    customer_id = next(o["customer_id"] for o in api.get(f"{BASE}/v2/orders", headers=FULL).json())
    orders = api.get(f"{BASE}/v2/orders?customer_id={customer_id}", headers=FULL).json()
    variants = api.get(f"{BASE}/v3/catalog/variants?product_id:in=3", headers=FULL).json()["data"]

    assert [p["id"] for p in by_ids] == [3, 5]
    assert by_sku[0]["id"] == 3
    assert all("addresses" in c for c in customers)
    assert [c["id"] for c in by_email] == [customers[0]["id"]]
    assert [c["category_id"] for c in tree] == [2]
    assert orders and all(o["customer_id"] == customer_id for o in orders)
    assert variants and all(v["product_id"] == 3 for v in variants)


def test_the_same_seed_gives_the_same_store() -> None:
    answers = []
    for _ in range(2):
        with TestClient(create_sandbox_app(SandboxConfig(seed=7))) as client:
            answers.append(client.get(f"{BASE}/v2/orders/120", headers=FULL).json())
    with TestClient(create_sandbox_app(SandboxConfig(seed=8))) as client:
        other = client.get(f"{BASE}/v2/orders/120", headers=FULL).json()

    assert answers[0] == answers[1]
    assert other != answers[0]


def test_invalid_writes_get_422_with_field_errors(api: TestClient) -> None:
    product = api.post(f"{BASE}/v3/catalog/products", headers=FULL, json={"name": "X"})
    customer = api.post(f"{BASE}/v3/customers", headers=FULL, json=[{"email": "a@example.com"}])

    assert product.status_code == 422
    assert set(product.json()["errors"]) == {"type", "weight", "price"}
    assert customer.status_code == 422
    assert set(customer.json()["errors"]) == {"[0].first_name", "[0].last_name"}


def test_writes_change_the_record(api: TestClient) -> None:
    created = api.post(
        f"{BASE}/v3/catalog/products",
        headers=FULL,
        json={"name": "Test Mug", "type": "physical", "weight": 1, "price": 9.5},
    ).json()["data"]
    api.put(f"{BASE}/v3/catalog/products/{created['id']}", headers=FULL, json={"price": 12.0})
    order = api.put(
        f"{BASE}/v2/orders/101", headers=FULL, json={"status_id": 10, "staff_notes": "done"}
    ).json()
    cart = api.post(
        f"{BASE}/v3/carts", headers=FULL, json={"line_items": [{"product_id": 1, "quantity": 2}]}
    ).json()["data"]
    grown = api.post(
        f"{BASE}/v3/carts/{cart['id']}/items", headers=FULL, json={"line_items": [{"product_id": 2}]}
    )

    assert (
        api.get(f"{BASE}/v3/catalog/products/{created['id']}", headers=FULL).json()["data"]["price"] == 12.0
    )
    assert (order["status_id"], order["status"], order["staff_notes"]) == (10, "Completed", "done")
    assert len(grown.json()["data"]["line_items"]["physical_items"]) == 2


def test_injected_faults_answer_the_next_matching_calls(api: TestClient) -> None:
    api.post("/_sandbox/faults", json={"status": 503, "count": 2, "path_prefix": "/v2/orders"})

    statuses = [api.get(f"{BASE}/v2/orders/100", headers=FULL).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert api.get(f"{BASE}/v2/store", headers=FULL).status_code == 200
    assert api.get("/_sandbox/stats").json()["calls"]["/v2/orders/100"] == 3


def test_clearing_faults_ends_them_before_their_count_runs_out(api: TestClient) -> None:
    api.post("/_sandbox/faults", json={"status": 503, "count": 100, "path_prefix": "/v2/orders"})
    api.post("/_sandbox/faults", json={"status": 429, "count": 5, "path_prefix": "/v3/"})
    assert api.get(f"{BASE}/v2/orders/100", headers=FULL).status_code == 503

    cleared = api.delete("/_sandbox/faults")

    assert cleared.json() == {"cleared": 104}
    assert api.get(f"{BASE}/v2/orders/100", headers=FULL).status_code == 200
    assert api.get(f"{BASE}/v3/catalog/products/1", headers=FULL).status_code == 200
