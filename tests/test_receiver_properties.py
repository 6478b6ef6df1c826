"""Arbitrary bodies and headers never cause a 5xx; what is accepted is what a worker can process."""

from __future__ import annotations

import json
from typing import Any

import redis
from dramatiq import Message
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from service.incidents import INCIDENTS_INDEX_KEY, INCIDENTS_KEY, INCIDENTS_OPEN_KEY
from tests.helpers import QUEUE_KEYS, encode, envelope, signed
from tests.test_payloads import SCOPES, objects, worker_reads

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


# A run of refusals may make the early warning record a blocklist-risk incident: operations, not an event.
INCIDENT_KEYS = {key.encode() for key in (INCIDENTS_KEY, INCIDENTS_INDEX_KEY, INCIDENTS_OPEN_KEY)}


def written_for_events(client: redis.Redis) -> set[bytes]:
    """The keys in Redis other than the early warning's incident."""
    keys: Any = client.keys("*")
    return set(keys) - INCIDENT_KEYS


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
    assert written_for_events(redis_client) == set()


# Signed bodies that look like callbacks, with every kind of trouble the envelope parser must catch: lone
# surrogates (json.dumps writes them as \ud800 escapes), deep nesting, ids of any type, unknown scopes.
texts = st.text(st.characters(max_codepoint=0x10FFFF, exclude_categories=["Cs"]), max_size=8) | st.text(
    st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=3
)
scopes = st.sampled_from(SCOPES) | texts.map(lambda t: "store/" + t)
data_values = objects | st.lists(objects, max_size=3) | st.dictionaries(texts, texts, max_size=3)
envelopes = st.fixed_dictionaries(
    {"scope": scopes, "data": data_values, "producer": st.just("stores/teststore")},
    optional={
        "store_id": st.sampled_from(["1025646", 11111]),
        "hash": st.sampled_from(["3f9ea420af83450d7ef9f78b08c8af25b2213637"]),
        "created_at": st.integers(min_value=0, max_value=2**40),
        "note": texts,
        "extra": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    },
)


def deepen(body: dict[str, Any], levels: int) -> bytes:
    """The body with `levels` of nested arrays spliced into `data` as text (json.dumps cannot write them)."""
    if not isinstance(body["data"], dict) or levels == 0:
        return encode(body)
    raw = encode({**body, "data": {**body["data"], "deep": "HOLE"}})
    return raw.replace(b'"HOLE"', b"[" * levels + b"]" * levels, 1)


signed_bodies = st.builds(
    deepen, envelopes, st.sampled_from([0, 0, 0, 1, 29, 30, 31, 32, 490, 600, 980, 1200, 5000])
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=signed_bodies)
def test_signed_bodies_never_get_a_5xx_and_what_is_accepted_a_worker_can_process(
    client: TestClient, redis_client: redis.Redis, raw: bytes
) -> None:
    redis_client.flushdb()

    response = client.post("/webhooks/bigcommerce", content=raw, headers=signed(raw))

    event(f"status {response.status_code}")
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.status_code == 400 and response.json()["error"]
        assert written_for_events(redis_client) == set()
        return
    event("accepted")
    (payload,) = [p for key in QUEUE_KEYS for p in redis_client.hvals(f"{key}.msgs")]
    message = Message.decode(payload)
    callback = message.args[0]
    assert callback["envelope"] == json.loads(raw)
    envelope_ = callback["envelope"]
    worker_reads(envelope_["scope"], envelope_["data"])
    payload.decode("utf-8")  # Redis, Dramatiq and every output read it as UTF-8
