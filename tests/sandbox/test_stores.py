"""Several stores in one sandbox: each has its own hash, data, quota, accounts, hooks and controls."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from service.sandbox.app import SandboxConfig, create_sandbox_app

FIRST = {"X-Auth-Token": "sandbox-token"}
SECOND = {"X-Auth-Token": "sandbox-token-sandbox2"}
DEST = "https://hooks.example.com/webhooks/bigcommerce"


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(create_sandbox_app(SandboxConfig(stores=3, quota=3, window_seconds=60))) as client:
        yield client


def test_stores_are_listed_with_their_hash_store_id_and_api_path(api: TestClient) -> None:
    stores = api.get("/_sandbox/stores").json()["stores"]

    assert [(s["store_hash"], s["api_path"]) for s in stores] == [
        ("sandbox", "/stores/sandbox"),
        ("sandbox2", "/stores/sandbox2"),
        ("sandbox3", "/stores/sandbox3"),
    ]
    assert len({s["store_id"] for s in stores}) == 3
    assert all(s["apps"] == [] for s in stores)


def test_each_store_has_its_own_data_from_its_own_seed(api: TestClient) -> None:
    first = api.get("/stores/sandbox/v3/catalog/products?limit=5", headers=FIRST).json()["data"]
    second = api.get("/stores/sandbox2/v3/catalog/products?limit=5", headers=SECOND).json()["data"]

    assert [p["id"] for p in first] == [p["id"] for p in second]  # ids are per store
    assert [p["name"] for p in first] != [p["name"] for p in second]
    assert api.get("/stores/sandbox2/v2/store", headers=SECOND).json()["id"] == "sandbox2"


def test_a_token_works_on_its_own_store_only(api: TestClient) -> None:
    assert api.get("/stores/sandbox2/v2/store", headers=FIRST).status_code == 401
    assert api.get("/stores/sandbox/v2/store", headers=SECOND).status_code == 401
    assert api.get("/stores/sandbox3/v2/store", headers={"X-Auth-Token": "sandbox-token-sandbox3"}).is_success


def test_each_store_has_its_own_quota(api: TestClient) -> None:
    statuses = [api.get("/stores/sandbox/v2/store", headers=FIRST).status_code for _ in range(4)]
    other = api.get("/stores/sandbox2/v2/store", headers=SECOND)

    assert statuses == [200, 200, 200, 429]
    assert other.status_code == 200
    assert other.headers["X-Rate-Limit-Requests-Left"] == "2"


def test_hooks_belong_to_their_store(api: TestClient) -> None:
    body = {"scope": "store/order/*", "destination": DEST, "is_active": True}
    created = api.post("/stores/sandbox2/v3/hooks", headers=SECOND, json=body).json()["data"]

    assert created["store_hash"] == "sandbox2"
    assert api.get("/stores/sandbox/v3/hooks", headers=FIRST).json()["data"] == []
    assert [h["id"] for h in api.get("/stores/sandbox2/v3/hooks", headers=SECOND).json()["data"]] == [
        created["id"]
    ]


def test_controls_take_a_store_and_default_to_the_first(api: TestClient) -> None:
    api.get("/stores/sandbox2/v2/store", headers=SECOND)

    assert api.get("/_sandbox").json()["store_hash"] == "sandbox"
    assert api.get("/_sandbox?store=sandbox2").json()["store_hash"] == "sandbox2"
    assert api.get("/_sandbox/stats").json()["api_calls"] == 0
    assert api.get("/_sandbox/stats?store=sandbox2").json()["api_calls"] == 1
    requests = api.get("/_sandbox/requests?store=sandbox2").json()["requests"]
    assert [(r["path"], r["token"]) for r in requests] == [("/v2/store", "sandbox-token-sandbox2")]
    missing = api.get("/_sandbox?store=nowhere")
    assert missing.status_code == 404
    assert "sandbox, sandbox2, sandbox3" in missing.json()["error"]


def test_trigger_changes_the_named_store_only(api: TestClient) -> None:
    before = api.get("/stores/sandbox/v2/orders?limit=250", headers=FIRST).json()
    fired = api.post("/_sandbox/trigger?store=sandbox3", json={"scope": "store/order/created"})

    assert fired.status_code == 200
    order_id = fired.json()["events"][0]["data"]["id"]
    third = {"X-Auth-Token": "sandbox-token-sandbox3"}
    assert api.get(f"/stores/sandbox3/v2/orders/{order_id}", headers=third).status_code == 200
    assert api.get("/stores/sandbox/v2/orders?limit=250", headers=FIRST).json() == before


def test_one_store_by_default_as_before() -> None:
    with TestClient(create_sandbox_app(SandboxConfig())) as api:
        stores = api.get("/_sandbox/stores").json()["stores"]
        assert [s["store_hash"] for s in stores] == ["sandbox"]
        assert api.get("/stores/sandbox2/v2/store", headers=FIRST).status_code == 404
        assert json.loads(api.get("/_sandbox").text)["store_hash"] == "sandbox"


def test_a_store_may_have_another_plans_quota() -> None:
    config = SandboxConfig(stores=2, quota=3, store_quotas={"sandbox2": 450})
    with TestClient(create_sandbox_app(config)) as api:
        first = api.get("/stores/sandbox/v2/store", headers=FIRST)
        second = api.get("/stores/sandbox2/v2/store", headers=SECOND)

    assert first.headers["X-Rate-Limit-Requests-Quota"] == "3"
    assert second.headers["X-Rate-Limit-Requests-Quota"] == "450"
