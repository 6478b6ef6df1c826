"""/v3/hooks in the sandbox follows BigCommerce's rules."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from service.sandbox.app import SandboxConfig, create_sandbox_app

BASE = "/stores/sandbox/v3/hooks"
MINE = {"X-Auth-Token": "sandbox-token"}
OTHER_APP = {"X-Auth-Token": "sandbox-other-app-token"}
READ_ONLY = {"X-Auth-Token": "sandbox-read-only-token"}
DEST = "https://hooks.example.com/webhooks/bigcommerce"


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(create_sandbox_app(SandboxConfig())) as client:
        yield client


def create(
    api: TestClient, scope: str, destination: str = DEST, headers: dict[str, str] = MINE
) -> httpx.Response:
    return api.post(
        BASE, headers=headers, json={"scope": scope, "destination": destination, "is_active": True}
    )


def test_create_returns_200_with_the_hook_in_data(api: TestClient) -> None:
    response = create(api, "store/order/*")

    assert response.status_code == 200
    hook = response.json()["data"]
    assert (hook["scope"], hook["destination"], hook["is_active"], hook["client_id"]) == (
        "store/order/*",
        DEST,
        True,
        "sandbox-client",
    )


def test_hooks_are_visible_only_to_the_client_that_created_them(api: TestClient) -> None:
    mine = create(api, "store/order/*").json()["data"]
    create(api, "store/product/*", headers=OTHER_APP)

    assert [h["id"] for h in api.get(BASE, headers=MINE).json()["data"]] == [mine["id"]]
    assert api.get(f"{BASE}/{mine['id']}", headers=OTHER_APP).status_code == 404
    assert api.delete(f"{BASE}/{mine['id']}", headers=OTHER_APP).status_code == 404


def test_one_hook_per_client_scope_and_destination(api: TestClient) -> None:
    create(api, "store/order/*")

    duplicate = create(api, "store/order/*")
    other_client = create(api, "store/order/*", headers=OTHER_APP)

    assert duplicate.status_code == 422
    assert other_client.status_code == 200


def test_at_most_ten_hooks_per_client_and_scope(api: TestClient) -> None:
    statuses = [create(api, "store/cart/*", f"https://h{i}.example.com/x").status_code for i in range(11)]

    assert statuses == [200] * 10 + [422]


def test_put_without_updatable_fields_gets_the_documented_422(api: TestClient) -> None:
    hook = create(api, "store/order/*").json()["data"]

    response = api.put(f"{BASE}/{hook['id']}", headers=MINE, json={"events_history_enabled": True})

    assert response.status_code == 422
    assert response.json()["errors"] == {"data": "Update webhook request should not be empty"}


def test_put_reactivates_and_delete_returns_the_hook(api: TestClient) -> None:
    hook = create(api, "store/order/*").json()["data"]

    off = api.put(f"{BASE}/{hook['id']}", headers=MINE, json={"is_active": False}).json()["data"]
    on = api.put(f"{BASE}/{hook['id']}", headers=MINE, json={"is_active": True}).json()["data"]
    deleted = api.delete(f"{BASE}/{hook['id']}", headers=MINE)

    assert (off["is_active"], on["is_active"]) == (False, True)
    assert (deleted.status_code, deleted.json()["data"]["id"]) == (200, hook["id"])
    assert api.get(BASE, headers=MINE).json()["data"] == []


@pytest.mark.parametrize(
    "destination", ["http://hooks.example.com/x", "https://hooks.example.com:8443/x", "not a url"]
)
def test_destination_must_be_https_on_443(api: TestClient, destination: str) -> None:
    response = create(api, "store/order/*", destination)

    assert response.status_code == 422
    assert "destination" in response.json()["errors"]


def test_allow_http_accepts_local_receivers() -> None:
    with TestClient(create_sandbox_app(SandboxConfig(allow_http=True))) as client:
        assert (
            create(client, "store/order/*", "http://127.0.0.1:8000/webhooks/bigcommerce").status_code == 200
        )


def test_unknown_scope_gets_422_naming_close_matches(api: TestClient) -> None:
    response = create(api, "store/product/updatd")

    assert response.status_code == 422
    assert "store/product/updated" in response.json()["errors"]["scope"]


def test_writes_need_information_modify_and_reads_its_read_only_form(api: TestClient) -> None:
    assert create(api, "store/order/*", headers=READ_ONLY).status_code == 403
    assert api.get(BASE, headers=READ_ONLY).status_code == 200


def test_delivery_exception_hook_needs_its_own_destination(api: TestClient) -> None:
    create(api, "store/order/*")

    same = create(api, "store/hook/deliveryException", DEST)
    separate = create(api, "store/hook/deliveryException", "https://hooks.example.com/failures")
    second = create(api, "store/hook/deliveryException", "https://hooks.example.com/failures-2")

    assert [same.status_code, separate.status_code, second.status_code] == [422, 200, 422]


def test_filters_and_admin_listing(api: TestClient) -> None:
    create(api, "store/order/*")
    off = create(api, "store/product/*").json()["data"]
    api.put(f"{BASE}/{off['id']}", headers=MINE, json={"is_active": False})

    inactive = api.get(f"{BASE}?is_active=false", headers=MINE).json()["data"]
    by_scope = api.get(f"{BASE}?scope=store/order/*", headers=MINE).json()["data"]
    admin = api.get(f"{BASE}/admin", headers=MINE).json()["data"]
    emails = api.put(f"{BASE}/admin", headers=MINE, json={"emails": ["ops@example.com"]})

    assert [h["id"] for h in inactive] == [off["id"]]
    assert [h["scope"] for h in by_scope] == ["store/order/*"]
    assert {h["status"] for h in admin["hooks_list"]} == {"active", "inactive"}
    assert admin["blocked_domains"] == []
    assert emails.status_code == 204
    assert api.get(f"{BASE}/admin", headers=MINE).json()["data"]["emails"] == ["ops@example.com"]
