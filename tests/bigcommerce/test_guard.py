"""A handler's StoreApi, against the sandbox over real HTTP: what it did not declare is refused before a
request leaves (the sandbox's request log proves it), and every call is logged in one line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from service.bigcommerce import AccessDenied, ApiClient, MissingScope, NotFound, StoreApi, parse_access
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.servers import ThreadedUvicorn

TOKEN = "sandbox-token"
HANDLER = "myapp.handlers.tag_orders"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig())) as server:
        yield server.base_url


@pytest.fixture
def store(sandbox: str) -> Iterator[StoreApi]:
    with ApiClient(sandbox, "sandbox", TOKEN, max_attempts=1) as client:
        yield StoreApi(client)


def requests_served(sandbox: str) -> list[tuple[str, str]]:
    """(method, path) of every API request the sandbox has seen, oldest first."""
    served = httpx.get(f"{sandbox}/_sandbox/requests").json()["requests"]
    return [(r["method"], r["path"]) for r in served]


def api_calls(logs: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [
        (line["handler"], line["method"], line["resource"], line["outcome"])
        for line in logs
        if line["event"] == "handler.api_call"
    ]


def test_a_write_outside_the_declared_access_is_refused_without_a_request(
    sandbox: str, store: StoreApi
) -> None:
    api = store.for_handler(HANDLER, parse_access({"orders": "read"}, HANDLER))
    before = requests_served(sandbox)

    with capture_logs() as logs, pytest.raises(AccessDenied) as caught:
        api.orders.update(100, {"status_id": 2})

    assert str(caught.value) == f"handler {HANDLER} may not write orders (declared: orders=read)"
    assert requests_served(sandbox) == before
    assert api_calls(logs) == [(HANDLER, "orders.update", "PUT /v2/orders/100", "refused")]
    assert logs[0]["log_level"] == "warning" and logs[0]["reason"] == str(caught.value)


def test_an_undeclared_area_is_refused_even_for_reads_and_through_the_seed_s_tool_names(
    sandbox: str, store: StoreApi
) -> None:
    api = store.for_handler(HANDLER, parse_access({"orders": "write"}, HANDLER))
    before = requests_served(sandbox)

    with pytest.raises(AccessDenied, match=r"may not read customers \(declared: orders=write\)"):
        api.customers.list(email="someone@example.com")
    with pytest.raises(AccessDenied, match="may not read products"):
        api.list_products()
    with pytest.raises(AccessDenied, match=r"may not read orders \(declared: no API access\)"):
        store.for_handler(HANDLER).get_order(100)

    assert requests_served(sandbox) == before


def test_declared_calls_go_through_and_each_is_logged_with_its_outcome(sandbox: str, store: StoreApi) -> None:
    api = store.for_handler(HANDLER, parse_access({"orders": "write"}, HANDLER))

    with capture_logs() as logs:
        order = api.orders.get(100)
        updated = api.update_order(100, staff_notes="seen")
        with pytest.raises(NotFound):
            api.orders.get(987654)

    assert order["id"] == 100 and updated["staff_notes"] == "seen"
    assert api_calls(logs) == [
        (HANDLER, "orders.get", "GET /v2/orders/100", "ok"),
        (HANDLER, "orders.update", "PUT /v2/orders/100", "ok"),
        (HANDLER, "orders.get", "GET /v2/orders/987654", "failed: NotFound (404)"),
    ]
    assert requests_served(sandbox)[-3:] == [
        ("GET", "/v2/orders/100"),
        ("PUT", "/v2/orders/100"),
        ("GET", "/v2/orders/987654"),
    ]
    assert TOKEN not in repr(logs) and "seen" not in repr(logs)  # no token, no request bodies


def test_a_handler_s_api_hands_out_no_raw_client_and_no_wider_api(store: StoreApi) -> None:
    api = store.for_handler(HANDLER, parse_access({"orders": "write"}, HANDLER))

    with pytest.raises(AccessDenied, match="may not use the raw client"):
        _ = api.client
    with pytest.raises(AccessDenied, match="may not take another handler's access"):
        api.for_handler("x", parse_access({"customers": "write"}, "x"))
    assert store.client is not None


def test_the_workers_own_store_api_is_neither_limited_nor_logged(store: StoreApi) -> None:
    with capture_logs() as logs:
        store.orders.get(100)
        store.customers.list(ids=[1])

    assert api_calls(logs) == []


def test_the_sandbox_still_enforces_the_token_s_scopes_behind_the_declared_access(sandbox: str) -> None:
    with ApiClient(sandbox, "sandbox", "sandbox-read-only-token", max_attempts=1) as client:
        api = StoreApi(client).for_handler(HANDLER, parse_access({"orders": "write"}, HANDLER))
        with capture_logs() as logs, pytest.raises(MissingScope, match="store_v2_orders"):
            api.orders.update(100, {"staff_notes": "x"})

    assert api_calls(logs) == [(HANDLER, "orders.update", "PUT /v2/orders/100", "failed: MissingScope (403)")]
