"""The API client's retry, rate-limit and error mapping, with httpx.MockTransport (no network)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from service.bigcommerce import (
    ApiClient,
    MissingScope,
    NotFound,
    RateLimited,
    ServerError,
    StoreApi,
    TransportError,
    Unauthorized,
    ValidationFailed,
)
from service.bigcommerce.ratelimit import RateLimitState, wait_ms_for_429

Handler = Callable[[httpx.Request], httpx.Response]
LIMIT_HEADERS = {
    "X-Rate-Limit-Time-Window-Ms": "30000",
    "X-Rate-Limit-Time-Reset-Ms": "15000",
    "X-Rate-Limit-Requests-Quota": "150",
    "X-Rate-Limit-Requests-Left": "35",
}


class Recorder:
    """Answers from a script of responses and records requests and sleeps."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def client(self, **options: int) -> ApiClient:
        return ApiClient(
            "https://api.example.test",
            "abc123",
            "token-xyz",
            transport=httpx.MockTransport(self.handle),
            sleep=self.sleeps.append,
            **options,  # type: ignore[arg-type]
        )


def ok(json: object = None, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json=json if json is not None else {"data": {}}, headers=headers or LIMIT_HEADERS
    )


def test_requests_carry_the_token_and_the_store_path() -> None:
    recorder = Recorder(ok({"data": {"id": 1}}))

    recorder.client().get_json("/v3/catalog/products/1")

    [request] = recorder.requests
    assert request.url == "https://api.example.test/stores/abc123/v3/catalog/products/1"
    assert request.headers["x-auth-token"] == "token-xyz"
    assert request.headers["accept"] == "application/json"


def test_rate_limit_headers_are_read_from_every_response() -> None:
    recorder = Recorder(ok())
    client = recorder.client()

    client.get_json("/v2/store")

    assert client.last_rate_limit == RateLimitState(window_ms=30000, reset_ms=15000, quota=150, left=35)


def test_429_waits_the_reset_time_and_does_not_count_as_a_failure() -> None:
    limited = httpx.Response(
        429, headers={"X-Rate-Limit-Time-Reset-Ms": "1500", "X-Rate-Limit-Requests-Left": "0"}
    )
    recorder = Recorder(limited, limited, ok({"data": {"id": 7}}))

    body = recorder.client(max_attempts=1).get_json("/v3/catalog/products/7")

    assert body == {"data": {"id": 7}}
    assert recorder.sleeps == [1.5, 1.5]


def test_429_honours_the_longer_of_retry_after_and_reset() -> None:
    assert wait_ms_for_429({"x-retry-after": "3", "x-rate-limit-time-reset-ms": "1200"}) == 3000
    assert wait_ms_for_429({"x-retry-after": "1", "x-rate-limit-time-reset-ms": "4200"}) == 4200
    assert wait_ms_for_429({}) == 1000  # a bare 429 means platform load: short wait, then retry


def test_a_429_with_requests_left_is_not_the_quota_and_waits_a_second() -> None:
    busy = {"x-rate-limit-requests-left": "120", "x-rate-limit-time-reset-ms": "25000"}

    assert wait_ms_for_429(busy) == 1000  # e.g. a second bulk upsert while one runs
    assert wait_ms_for_429({**busy, "x-retry-after": "3"}) == 3000
    assert wait_ms_for_429({**busy, "x-rate-limit-requests-left": "0"}) == 25000


def test_too_many_429s_raise_rate_limited_with_the_wait() -> None:
    recorder = Recorder(httpx.Response(429, headers={"X-Rate-Limit-Time-Reset-Ms": "900"}))

    with pytest.raises(RateLimited) as caught:
        recorder.client(max_rate_limit_waits=3).get_json("/v2/orders/1")

    assert caught.value.retry_after_ms == 900
    assert len(recorder.requests) == 4


def test_5xx_is_retried_with_growing_jittered_backoff() -> None:
    recorder = Recorder(httpx.Response(502), httpx.Response(500), ok({"data": {"id": 1}}))

    assert recorder.client().get_json("/v2/orders/1") == {"data": {"id": 1}}
    assert len(recorder.sleeps) == 2
    assert 0.25 <= recorder.sleeps[0] <= 0.75
    assert 0.5 <= recorder.sleeps[1] <= 1.5


def test_5xx_after_all_attempts_raises_server_error() -> None:
    recorder = Recorder(httpx.Response(503))

    with pytest.raises(ServerError, match="503"):
        recorder.client(max_attempts=3).get_json("/v2/orders/1")
    assert len(recorder.requests) == 3


def test_post_is_not_resent_after_a_5xx() -> None:
    recorder = Recorder(httpx.Response(500))

    with pytest.raises(ServerError):
        recorder.client().send_json("POST", "/v3/catalog/products", {"name": "x"})
    assert len(recorder.requests) == 1


def test_timeouts_are_retried_then_name_the_host() -> None:
    recorder = Recorder(httpx.ReadTimeout("slow"))

    with pytest.raises(TransportError, match=r"could not reach api\.example\.test"):
        recorder.client(max_attempts=3).get_json("/v2/orders/1")
    assert len(recorder.requests) == 3


def test_post_is_resent_only_when_the_request_never_left() -> None:
    refused = Recorder(httpx.ConnectError("refused"), ok({"data": {"id": 5}}))
    timed_out = Recorder(httpx.ReadTimeout("slow"))

    assert refused.client().send_json("POST", "/v3/catalog/products", {}) == {"data": {"id": 5}}
    with pytest.raises(TransportError):
        timed_out.client().send_json("POST", "/v3/catalog/products", {})
    assert len(timed_out.requests) == 1


def test_401_says_the_token_is_invalid() -> None:
    recorder = Recorder(httpx.Response(401, json={"status": 401, "title": "Unauthorized"}))

    with pytest.raises(Unauthorized, match=r"token invalid.*BIGCOMMERCE_ACCESS_TOKEN"):
        recorder.client().get_json("/v2/store")


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/v2/orders/250", "store_v2_orders_read_only or store_v2_orders"),
        ("PUT", "/v2/orders/250", "store_v2_orders"),
        ("GET", "/v3/catalog/products/1", "store_v2_products_read_only or store_v2_products"),
        ("GET", "/v3/orders/250/transactions", "store_v2_transactions_read_only or store_v2_transactions"),
        ("GET", "/v3/customers", "store_v2_customers_read_only or store_v2_customers"),
        ("GET", "/v3/carts/abc", "store_cart_read_only or store_cart"),
        ("POST", "/v3/hooks", "store_v2_information"),
    ],
)
def test_403_names_the_scope_the_call_needs(method: str, path: str, needed: str) -> None:
    recorder = Recorder(httpx.Response(403, json={"status": 403, "title": "Forbidden"}))

    with pytest.raises(MissingScope) as caught:
        recorder.client().request(method, path)

    assert caught.value.needed == needed
    assert needed in str(caught.value)


def test_404_is_not_found() -> None:
    recorder = Recorder(
        httpx.Response(404, json=[{"status": 404, "message": "The requested resource was not found."}])
    )

    with pytest.raises(NotFound):
        recorder.client().get_json("/v2/orders/999")


def test_422_surfaces_v3_field_errors() -> None:
    body = {
        "status": 422,
        "title": "Missing Required Fields",
        "type": "x",
        "errors": {"name": "Please provide a name."},
    }
    recorder = Recorder(httpx.Response(422, json=body))

    with pytest.raises(ValidationFailed) as caught:
        recorder.client().send_json("POST", "/v3/catalog/products", {})

    assert caught.value.errors == {"name": "Please provide a name."}
    assert "name: Please provide a name." in str(caught.value)


def test_v2_error_arrays_are_surfaced() -> None:
    body = [
        {
            "status": 400,
            "message": "The field 'status_id' is invalid.",
            "details": {"invalid_reason": "status_id"},
        }
    ]
    recorder = Recorder(httpx.Response(400, json=body))

    with pytest.raises(ValidationFailed) as caught:
        recorder.client().send_json("PUT", "/v2/orders/1", {"status_id": 99})

    assert caught.value.errors == {"status_id": "The field 'status_id' is invalid."}


def test_v3_lists_follow_pagination() -> None:
    def page(n: int, total: int) -> httpx.Response:
        meta = {
            "pagination": {"total": 3, "count": 1, "per_page": 1, "current_page": n, "total_pages": total}
        }
        return ok({"data": [{"id": n}], "meta": meta})

    recorder = Recorder(page(1, 3), page(2, 3), page(3, 3))

    items = list(recorder.client().v3_items("/v3/catalog/products", limit=1))

    assert items == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert [r.url.params["page"] for r in recorder.requests] == ["1", "2", "3"]


def test_v2_lists_stop_at_a_short_page_or_204() -> None:
    short = Recorder(ok([{"id": 1}, {"id": 2}]), ok([{"id": 3}]))
    empty = Recorder(ok([{"id": 1}, {"id": 2}]), httpx.Response(204))

    assert [o["id"] for o in short.client().v2_items("/v2/orders", limit=2)] == [1, 2, 3]
    assert [o["id"] for o in empty.client().v2_items("/v2/orders", limit=2)] == [1, 2]
    assert list(Recorder(httpx.Response(204)).client().v2_items("/v2/orders")) == []


def test_store_api_builds_the_documented_filters() -> None:
    recorder = Recorder(ok({"data": [], "meta": {"pagination": {"total_pages": 1}}}))
    api = StoreApi(recorder.client())

    api.list_products(keyword="shirt", ids=[1, 2])
    api.list_customers(email="a@example.com", name="Ann")
    api.list_hooks(scope="store/order/*", is_active=False)

    products, customers, hooks = (r.url.params for r in recorder.requests)
    assert (products["keyword"], products["id:in"], products["limit"]) == ("shirt", "1,2", "250")
    assert (customers["email:in"], customers["name:like"]) == ("a@example.com", "Ann")
    assert (hooks["scope"], hooks["is_active"]) == ("store/order/*", "false")


def test_update_hook_without_fields_is_refused_before_calling() -> None:
    recorder = Recorder(ok())

    with pytest.raises(ValueError, match="422"):
        StoreApi(recorder.client()).update_hook(1)
    assert recorder.requests == []
