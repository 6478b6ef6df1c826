"""The envelope parser refuses what no worker could process; what it accepts always encodes for Dramatiq."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dramatiq import Message

from service.envelopes import MAX_DEPTH, EnvelopeError, parse_envelope
from service.events import PersistedCallback, encode_message
from tests.helpers import STORE_HASH, encode, envelope


def nested(levels: int) -> Any:
    """A value `levels` deep (1 is `{}`), nesting through both arrays and objects."""
    value: Any = {}
    for level in range(levels - 1):
        value = {"x": value} if level % 2 else [value]
    return value


def refusal(raw: bytes) -> str:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(raw, STORE_HASH)
    return caught.value.code


def callback_for(raw: bytes) -> PersistedCallback:
    parsed = parse_envelope(raw, STORE_HASH)
    return PersistedCallback(event_id="id:1", webhook_id="1", received_at_ms=1, envelope=parsed.body)


def decoded(callback: PersistedCallback) -> Message[Any]:
    _, payload = encode_message(callback, "message-id-1", 1_700_000_000_000)
    return Message.decode(payload)


def test_a_body_exactly_at_the_depth_limit_is_accepted_and_encodes() -> None:
    # The body is level 1 and `data` level 2: MAX_DEPTH - 2 more levels fit inside data.
    body = envelope(data={"type": "order", "id": 250, "deep": nested(MAX_DEPTH - 2)})
    callback = callback_for(encode(body))

    assert decoded(callback).args[0]["envelope"] == body


@pytest.mark.parametrize("levels", [MAX_DEPTH - 1, 600, 980, 5000, 100_000])
def test_bodies_nested_deeper_than_the_limit_are_refused(levels: int) -> None:
    body = envelope(data={"type": "order", "id": 250, "deep": nested(levels)})

    assert refusal(encode(body) if levels < 900 else _deep_raw(body, levels)) == "too_deep"


def _deep_raw(body: dict[str, Any], levels: int) -> bytes:
    # json.dumps itself cannot write these; splice the nesting in as text.
    raw = encode({**body, "data": {"type": "order", "id": 250, "deep": "HOLE"}})
    return raw.replace(b'"HOLE"', b"[" * levels + b"]" * levels)


@pytest.mark.parametrize(
    ("body", "hole", "text"),
    [
        (envelope(scope="store/order/HOLE"), b"HOLE", b"\\ud800created"),
        (envelope(note="HOLE"), b"HOLE", b"\\udfff"),
        (envelope(HOLE=1), b"HOLE", b"\\ud834"),
        (envelope(data={"type": "order", "id": 250, "t": ["a", {"b": "HOLE"}]}), b"HOLE", b"x\\ud83dy"),
    ],
)
def test_a_lone_surrogate_anywhere_is_refused(body: dict[str, Any], hole: bytes, text: bytes) -> None:
    raw = encode(body).replace(hole, text)

    assert refusal(raw) == "invalid_unicode"


def test_escaped_pairs_and_escaped_backslashes_are_ordinary_text() -> None:
    raw = encode(envelope(note="\U0001f600 and \\ud800 as text"))
    assert b"\\ud83d\\ude00" in raw and b"\\\\ud800" in raw

    callback = callback_for(raw)

    assert decoded(callback).args[0]["envelope"]["note"] == "\U0001f600 and \\ud800 as text"


def test_numbers_that_overflow_a_float_are_refused() -> None:
    raw = encode(envelope()).replace(b"{", b'{"amount": 1e400, ', 1)

    assert refusal(raw) == "number_out_of_range"


def test_ids_a_scope_needs_are_checked_in_the_envelope() -> None:
    raw = encode(envelope(scope="store/product/updated", data={"type": "product", "id": "abc"}))

    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(raw, STORE_HASH)

    assert caught.value.code == "invalid_data_id"
    assert "data.id" in caught.value.message and "store/product/updated" in caught.value.message


def test_integers_beyond_64_bits_outside_ids_still_encode_exactly() -> None:
    body = envelope(data={"type": "order", "id": 250, "total": 10**40, "refund": -(10**30)})
    callback = callback_for(encode(body))

    assert decoded(callback).args[0]["envelope"] == json.loads(encode(body))
