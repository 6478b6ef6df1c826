"""Arbitrary bodies and headers never cause a 5xx, and never reach the queue."""

from __future__ import annotations

from typing import Any

import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.helpers import encode, envelope, signed

HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
SIGNATURE_HEADERS = ["webhook-id", "webhook-timestamp", "webhook-signature"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# One field that makes an otherwise genuine-looking envelope invalid, so no generated body is acceptable.
breakages = st.one_of(
    st.builds(
        lambda v: {"scope": v},
        json_values.filter(lambda v: not (isinstance(v, str) and v.startswith("store/"))),
    ),
    st.builds(lambda v: {"producer": v}, json_values.filter(lambda v: v != "stores/teststore")),
    st.builds(
        lambda v: {"data": v},
        st.none() | st.integers() | st.text(max_size=10) | st.lists(st.integers(), min_size=1),
    ),
    st.builds(lambda v: {"created_at": v}, st.text(max_size=10) | st.floats() | st.booleans()),
    st.builds(
        lambda v: {"store_id": v},
        st.floats() | st.booleans() | st.text(st.characters(categories=["L"]), min_size=1),
    ),
)


def broken_envelope(overrides: dict[str, Any], breakage: dict[str, Any]) -> bytes:
    """An envelope with random overrides plus one breakage; a None value drops the field (still invalid)."""
    body = {**envelope(), **overrides, **breakage}
    return encode({key: value for key, value in body.items() if value is not None})


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(encode),
    st.builds(
        broken_envelope,
        st.dictionaries(st.sampled_from(list(envelope())), json_values, max_size=3),
        breakages,
    ),
)
header_sets = st.dictionaries(
    st.sampled_from(SIGNATURE_HEADERS)
    | HEADER_TEXT.filter(lambda k: k.strip() and ":" not in k).map(str.lower),
    HEADER_TEXT,
    max_size=5,
)
content_types = (
    st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]) | HEADER_TEXT
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, headers=header_sets, content_type=content_types, sign_it=st.booleans())
def test_arbitrary_requests_get_a_4xx_and_enqueue_nothing(
    client: TestClient,
    redis_client: redis.Redis,
    body: bytes,
    headers: dict[str, str],
    content_type: str,
    sign_it: bool,
) -> None:
    headers = {k: v for k, v in headers.items() if k not in {"content-length", "transfer-encoding", "host"}}
    headers["content-type"] = content_type
    if sign_it:
        # A valid signature over an invalid body must still be refused, never enqueued.
        headers.update({k: v for k, v in signed(body).items() if k != "content-type"})

    response = client.post("/webhooks/bigcommerce", content=body, headers=headers)

    event(f"status {response.status_code}")
    assert response.status_code in {400, 401, 413, 415}, (response.status_code, response.text)
    assert response.json()["error"]
    assert redis_client.dbsize() == 0
