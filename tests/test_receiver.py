"""POST /webhooks/bigcommerce from the outside: HTTP in, Redis state out."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from service.app import DELIVERY_EXCEPTION_PATH, create_app
from service.queue import dedup_key
from tests.conftest import make_settings
from tests.helpers import (
    CLIENT_SECRET,
    HEADER_SECRET,
    PREVIOUS_SECRET,
    encode,
    envelope,
    queued_callbacks,
    signed,
)

URL = "/webhooks/bigcommerce"


def post(client: TestClient, raw: bytes, headers: dict[str, str]) -> Any:
    return client.post(URL, content=raw, headers=headers)


def test_valid_signed_callback_is_enqueued_once_with_an_empty_200(
    client: TestClient, redis_client: redis.Redis
) -> None:
    body = envelope()
    raw = encode(body)
    headers = signed(raw, webhook_id="msg_one")

    response = post(client, raw, headers)

    assert response.status_code == 200
    assert response.content == b""
    [callback] = queued_callbacks(redis_client)
    assert callback["envelope"] == body
    assert callback["webhook_id"] == "msg_one"
    assert callback["event_id"] == "id:msg_one"
    assert abs(callback["received_at_ms"] / 1000 - time.time()) < 60


def test_duplicate_delivery_is_acknowledged_and_not_enqueued(
    client: TestClient, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())
    headers = signed(raw, webhook_id="msg_dup")

    first = post(client, raw, headers)
    second = post(client, raw, signed(raw, webhook_id="msg_dup"))

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == b""
    assert len(queued_callbacks(redis_client)) == 1


def test_dedup_mark_lasts_the_configured_window(client: TestClient, redis_client: redis.Redis) -> None:
    raw = encode(envelope())
    post(client, raw, signed(raw, webhook_id="msg_ttl"))

    ttl = redis_client.ttl(dedup_key("id:msg_ttl"))

    assert 72 * 3600 - 60 <= ttl <= 72 * 3600


def test_distinct_events_are_each_enqueued(client: TestClient, redis_client: redis.Redis) -> None:
    for order_id in (1, 2, 3):
        raw = encode(envelope(data={"type": "order", "id": order_id}))
        assert post(client, raw, signed(raw)).status_code == 200

    ids = [callback["envelope"]["data"]["id"] for callback in queued_callbacks(redis_client)]
    assert ids == [1, 2, 3]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        pytest.param(lambda raw, h: (raw + b" ", h), "signature_mismatch", id="tampered-body"),
        pytest.param(
            lambda raw, h: (raw, signed(raw, secret="wrong-secret")), "signature_mismatch", id="wrong-secret"
        ),
        pytest.param(
            lambda raw, h: (raw, signed(raw, timestamp=int(time.time()) - 72 * 3600 + 300 - 60)),
            "timestamp_too_old",
            id="older-than-the-dedup-window-allows",
        ),
        pytest.param(
            lambda raw, h: (raw, signed(raw, timestamp=int(time.time()) + 301)),
            "timestamp_too_new",
            id="future",
        ),
        pytest.param(
            lambda raw, h: (raw, {**h, "webhook-timestamp": "soon"}),
            "invalid_timestamp",
            id="timestamp-not-number",
        ),
        pytest.param(
            lambda raw, h: (raw, {k: v for k, v in h.items() if k != "webhook-signature"}),
            "missing_signature_headers",
            id="no-signature",
        ),
        pytest.param(
            lambda raw, h: (raw, {k: v for k, v in h.items() if k != "webhook-id"}),
            "missing_signature_headers",
            id="no-id",
        ),
        pytest.param(
            lambda raw, h: (raw, {k: v for k, v in h.items() if k != "webhook-timestamp"}),
            "missing_signature_headers",
            id="no-timestamp",
        ),
        pytest.param(
            lambda raw, h: (raw, {**h, "webhook-signature": "v1;abc"}),
            "malformed_signature",
            id="no-v1-entry",
        ),
        pytest.param(
            lambda raw, h: (raw, {**h, "webhook-signature": "v1,not*base64"}),
            "malformed_signature",
            id="bad-base64",
        ),
        pytest.param(
            lambda raw, h: (raw, {**h, "webhook-signature": "v1,\u00e9t\u00e9".encode("latin-1")}),
            "malformed_signature",
            id="non-ascii-base64",
        ),
        pytest.param(
            lambda raw, h: (raw, {**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}),
            "malformed_signature",
            id="only-other-versions",
        ),
        pytest.param(
            lambda raw, h: (raw, {**h, "webhook-id": "msg_other"}), "signature_mismatch", id="id-swapped"
        ),
    ],
)
def test_unauthentic_callback_gets_401_with_reason_and_is_not_enqueued(
    client: TestClient, redis_client: redis.Redis, mutate: Any, reason: str
) -> None:
    raw = encode(envelope())
    sent_raw, headers = mutate(raw, signed(raw))

    response = post(client, sent_raw, headers)

    assert response.status_code == 401
    assert response.json()["error"] == reason
    assert queued_callbacks(redis_client) == []
    assert redis_client.dbsize() == 0


def test_several_signatures_in_one_header_pass_when_one_matches(
    client: TestClient, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())
    headers = signed(raw)
    wrong = signed(
        raw, secret="other", webhook_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"])
    )
    headers["webhook-signature"] = f"v2,zzzz {wrong['webhook-signature']} {headers['webhook-signature']}"

    assert post(client, raw, headers).status_code == 200
    assert len(queued_callbacks(redis_client)) == 1


def test_previous_secret_is_accepted_during_rotation(make_client: Any, redis_client: redis.Redis) -> None:
    client = make_client(make_settings(BIGCOMMERCE_PREVIOUS_CLIENT_SECRETS=f"retired,{PREVIOUS_SECRET}"))
    old = encode(envelope())
    new = encode(envelope())

    assert post(client, old, signed(old, secret=PREVIOUS_SECRET)).status_code == 200
    assert post(client, new, signed(new, secret=CLIENT_SECRET)).status_code == 200
    assert post(client, new, signed(new, secret="never-configured")).status_code == 401
    assert len(queued_callbacks(redis_client)) == 2


def test_tolerance_is_configurable(make_client: Any, redis_client: redis.Redis) -> None:
    client = make_client(make_settings(BCWEBHOOKS_SIGNATURE_TOLERANCE_SECONDS="900"))
    raw = encode(envelope())

    ten_minutes_ahead = post(client, raw, signed(raw, timestamp=int(time.time()) + 600))
    sixteen_minutes_ahead = post(client, raw, signed(raw, timestamp=int(time.time()) + 960))

    assert ten_minutes_ahead.status_code == 200
    assert sixteen_minutes_ahead.status_code == 401


def test_custom_header_mode_accepts_the_header_secret_without_a_signature(
    make_client: Any, redis_client: redis.Redis
) -> None:
    client = make_client(
        make_settings(
            BIGCOMMERCE_CLIENT_SECRET="",
            BCWEBHOOKS_AUTH="header",
            BCWEBHOOKS_HEADER_SECRET=HEADER_SECRET,
            BCWEBHOOKS_HEADER_NAME="X-Shop-Hook-Auth",
        )
    )
    body = envelope()
    raw = encode(body)
    json_only = {"content-type": "application/json"}

    accepted = post(client, raw, {**json_only, "X-Shop-Hook-Auth": HEADER_SECRET})
    wrong = post(client, raw, {**json_only, "X-Shop-Hook-Auth": HEADER_SECRET + "x"})
    missing = post(client, raw, json_only)

    assert accepted.status_code == 200
    assert (wrong.status_code, wrong.json()["error"]) == (401, "secret_header_mismatch")
    assert (missing.status_code, missing.json()["error"]) == (401, "missing_secret_header")
    [callback] = queued_callbacks(redis_client)
    # No webhook-id: the dedup identity falls back to scope + hash + created_at.
    assert callback["event_id"] == f"hash:{body['scope']}:{body['hash']}:{body['created_at']}"


def test_header_mode_drops_a_redelivery_with_the_same_hash(
    make_client: Any, redis_client: redis.Redis
) -> None:
    client = make_client(make_settings(BCWEBHOOKS_AUTH="header", BCWEBHOOKS_HEADER_SECRET=HEADER_SECRET))
    raw = encode(envelope())
    headers = {"content-type": "application/json", "X-Webhook-Secret": HEADER_SECRET}

    assert post(client, raw, headers).status_code == 200
    assert post(client, raw, headers).status_code == 200
    assert len(queued_callbacks(redis_client)) == 1


def test_callback_without_hash_is_deduplicated_by_its_body(
    make_client: Any, redis_client: redis.Redis
) -> None:
    client = make_client(make_settings(BCWEBHOOKS_AUTH="header", BCWEBHOOKS_HEADER_SECRET=HEADER_SECRET))
    raw = encode(envelope(hash=None, created_at=None))
    headers = {"content-type": "application/json", "X-Webhook-Secret": HEADER_SECRET}

    assert post(client, raw, headers).status_code == 200
    assert post(client, raw, headers).status_code == 200
    [callback] = queued_callbacks(redis_client)
    assert callback["event_id"].startswith("body:")


def test_both_mode_requires_signature_and_header(make_client: Any, redis_client: redis.Redis) -> None:
    client = make_client(make_settings(BCWEBHOOKS_HEADER_SECRET=HEADER_SECRET))
    raw = encode(envelope())

    only_signature = post(client, raw, signed(raw))
    both = post(client, raw, {**signed(raw), "X-Webhook-Secret": HEADER_SECRET})

    assert (only_signature.status_code, only_signature.json()["error"]) == (401, "missing_secret_header")
    assert both.status_code == 200
    assert len(queued_callbacks(redis_client)) == 1


def test_either_mode_accepts_signature_or_header(make_client: Any, redis_client: redis.Redis) -> None:
    client = make_client(make_settings(BCWEBHOOKS_AUTH="either", BCWEBHOOKS_HEADER_SECRET=HEADER_SECRET))
    by_signature, by_header, by_neither = (encode(envelope()) for _ in range(3))

    assert post(client, by_signature, signed(by_signature)).status_code == 200
    header_only = {"content-type": "application/json", "X-Webhook-Secret": HEADER_SECRET}
    assert post(client, by_header, header_only).status_code == 200
    refused = post(client, by_neither, {"content-type": "application/json"})
    assert (refused.status_code, refused.json()["error"]) == (401, "missing_signature_headers")
    assert len(queued_callbacks(redis_client)) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"{not json", "invalid_json", id="not-json"),
        pytest.param(b"\xff\xfe{}", "invalid_json", id="not-utf8"),
        pytest.param(encode([envelope()]), "not_an_object", id="array"),
        pytest.param(encode(envelope(scope=None)), "missing_scope", id="no-scope"),
        pytest.param(encode(envelope(scope="order/created")), "invalid_scope", id="scope-not-store"),
        pytest.param(encode(envelope(scope=7)), "invalid_scope", id="scope-number"),
        pytest.param(encode(envelope(data=None)), "missing_data", id="no-data"),
        pytest.param(encode(envelope(data="order 250")), "invalid_data", id="data-string"),
        pytest.param(encode(envelope(data=[1, 2])), "invalid_data", id="data-array-of-numbers"),
        pytest.param(encode(envelope(producer=None)), "missing_producer", id="no-producer"),
        pytest.param(encode(envelope(producer="teststore")), "invalid_producer", id="producer-shape"),
        pytest.param(encode(envelope(producer="stores/otherstore")), "wrong_store", id="other-store"),
        pytest.param(encode(envelope(store_id="12a")), "invalid_store_id", id="store-id-letters"),
        pytest.param(encode(envelope(store_id=True)), "invalid_store_id", id="store-id-bool"),
        pytest.param(encode(envelope(hash=123)), "invalid_hash", id="hash-number"),
        pytest.param(encode(envelope(hash="")), "invalid_hash", id="hash-empty"),
        pytest.param(encode(envelope(created_at="1561479335")), "invalid_created_at", id="created-at-string"),
        pytest.param(encode(envelope(created_at=-1)), "invalid_created_at", id="created-at-negative"),
    ],
)
def test_malformed_envelope_gets_400_with_reason_and_is_not_enqueued(
    client: TestClient, redis_client: redis.Redis, body: bytes, reason: str
) -> None:
    response = post(client, body, signed(body))

    assert response.status_code == 400
    assert response.json()["error"] == reason
    assert redis_client.dbsize() == 0


def test_oversized_body_gets_413_before_authentication(client: TestClient, redis_client: redis.Redis) -> None:
    raw = encode(envelope(padding="x" * 70_000))

    response = post(client, raw, signed(raw))

    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert redis_client.dbsize() == 0


def test_body_limit_is_configurable(make_client: Any, redis_client: redis.Redis) -> None:
    client = make_client(make_settings(BCWEBHOOKS_MAX_BODY_BYTES="200000"))
    raw = encode(envelope(padding="x" * 70_000))

    assert post(client, raw, signed(raw)).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_non_json_content_type_gets_415(
    client: TestClient, redis_client: redis.Redis, content_type: str
) -> None:
    raw = encode(envelope())
    headers = {**signed(raw), "content-type": content_type}

    response = post(client, raw, headers)

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert redis_client.dbsize() == 0


def test_json_content_type_with_charset_is_accepted(client: TestClient, redis_client: redis.Redis) -> None:
    raw = encode(envelope())
    headers = {**signed(raw), "content-type": "application/json; charset=utf-8"}

    assert post(client, raw, headers).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405(client: TestClient, redis_client: redis.Redis, method: str) -> None:
    response = client.request(method, URL)

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize("path", [URL, DELIVERY_EXCEPTION_PATH])
def test_callbacks_are_received_behind_a_root_path(
    redis_url: str, redis_client: redis.Redis, path: str
) -> None:
    raw = encode(envelope())
    # uvicorn's --root-path puts the prefix in both scope["root_path"] and scope["path"]
    with TestClient(create_app(make_settings(), redis_url), root_path="/bc") as client:
        accepted = client.post("/bc" + path, content=raw, headers=signed(raw, webhook_id="msg_root_path"))
        probe = client.get("/bc/healthz")

    assert accepted.status_code == 200
    assert [callback["webhook_id"] for callback in queued_callbacks(redis_client)] == ["msg_root_path"]
    assert probe.json() == {"status": "ok"}


def test_posts_to_other_paths_get_404(client: TestClient, redis_client: redis.Redis) -> None:
    raw = encode(envelope())

    response = client.post("/webhooks/other", content=raw, headers=signed(raw))

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert redis_client.dbsize() == 0


def test_documented_examples_without_created_at_or_type_are_accepted(
    client: TestClient, redis_client: redis.Redis
) -> None:
    examples = [
        # BigCommerce's overview example: no created_at.
        envelope(scope="store/order/statusUpdated", created_at=None, store_id="11111"),
        # Transactions: no type/id, string order_id.
        envelope(scope="store/order/transaction/created", data={"type": "transaction", "order_id": "250"}),
        # Metafields: no type/id.
        envelope(scope="store/order/metafield/created", data={"metafield_id": 14, "resource_id": "270"}),
        # Price-list record batches: data is an array.
        envelope(
            scope="store/priceList/records/created",
            data=[{"price_list_id": 1, "variant_id": 179, "currency": "USD"}],
        ),
        # Store-level: data has only a type.
        envelope(scope="store/information/updated", data={"type": "store"}),
        # Older docs: integer store_id; unknown fields kept.
        envelope(scope="store/product/updated", store_id=11111, extra_field={"kept": True}),
    ]
    for body in examples:
        raw = encode(body)
        assert post(client, raw, signed(raw)).status_code == 200, body["scope"]

    assert [callback["envelope"] for callback in queued_callbacks(redis_client)] == examples


def test_healthz_answers_without_redis(make_client: Any) -> None:
    client = make_client(make_settings(), "redis://127.0.0.1:1/0")

    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_redis_reachability(client: TestClient, make_client: Any) -> None:
    unreachable = make_client(make_settings(), "redis://127.0.0.1:1/0")

    assert client.get("/readyz").status_code == 200
    response = unreachable.get("/readyz")
    assert (response.status_code, response.json()["status"]) == (503, "redis_unreachable")


def test_unreachable_redis_gets_503_with_retry_after(make_client: Any) -> None:
    client = make_client(make_settings(), "redis://127.0.0.1:1/0")
    raw = encode(envelope())

    response = post(client, raw, signed(raw))

    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert int(response.headers["retry-after"]) > 0
