"""The callback envelope: what the receiver checks before it persists a callback."""

from __future__ import annotations

import json
from typing import Any, NamedTuple


class EnvelopeError(Exception):
    """The body is not a callback envelope we can route; `code` is the machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Envelope(NamedTuple):
    """A validated callback: the fields routing needs, plus the whole parsed body (unknown fields kept).

    A NamedTuple rather than a frozen dataclass: one is built per request, at a third of the cost.
    """

    scope: str
    store_hash: str
    hash: str | None
    created_at: int | None
    body: dict[str, Any]

    @property
    def data(self) -> dict[str, Any] | list[Any]:
        """The scope-specific `data` (a list only for price-list record batches)."""
        value: dict[str, Any] | list[Any] = self.body["data"]
        return value


def parse_envelope(raw: bytes, store_hash: str) -> Envelope:
    """Parse and validate a callback body for the configured store, or raise EnvelopeError.

    Strict only where routing needs it: `scope`, `data` and `producer` are required; `store_id`, `hash`
    and `created_at` are type-checked when present, because BigCommerce's own examples omit some of them.
    """
    body = _json_object(raw)
    scope = _scope(body)
    _check_data(body)
    _check_producer(body, store_hash)
    _check_store_id(body)
    return Envelope(
        scope=scope,
        store_hash=store_hash,
        hash=_optional_hash(body),
        created_at=_optional_created_at(body),
        body=body,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# NaN and Infinity are not JSON; the standard library accepts them unless told otherwise.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise EnvelopeError("invalid_json", "body is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise EnvelopeError("not_an_object", "body must be a JSON object")
    return body


def _scope(body: dict[str, Any]) -> str:
    scope = body.get("scope")
    if scope is None:
        raise EnvelopeError("missing_scope", "scope is required")
    if not isinstance(scope, str) or not scope.startswith("store/") or len(scope) > 200:
        raise EnvelopeError("invalid_scope", "scope must be a string starting with store/")
    return scope


def _check_data(body: dict[str, Any]) -> None:
    if "data" not in body:
        raise EnvelopeError("missing_data", "data is required")
    data = body["data"]
    if isinstance(data, dict):
        return
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return
    raise EnvelopeError("invalid_data", "data must be an object (or an array of objects for record batches)")


def _check_producer(body: dict[str, Any], store_hash: str) -> None:
    producer = body.get("producer")
    if producer is None:
        raise EnvelopeError("missing_producer", "producer is required")
    if not isinstance(producer, str) or not producer.startswith("stores/"):
        raise EnvelopeError("invalid_producer", "producer must look like stores/<store_hash>")
    if producer != f"stores/{store_hash}":
        raise EnvelopeError("wrong_store", "producer names a store this receiver is not configured for")


def _check_store_id(body: dict[str, Any]) -> None:
    if "store_id" not in body:
        return
    store_id = body["store_id"]
    if isinstance(store_id, str) and store_id.isascii() and store_id.isdigit():
        return
    if isinstance(store_id, int) and not isinstance(store_id, bool) and store_id >= 0:
        return
    raise EnvelopeError("invalid_store_id", "store_id must be a number or a string of digits")


def _optional_hash(body: dict[str, Any]) -> str | None:
    if "hash" not in body:
        return None
    value = body["hash"]
    if not isinstance(value, str) or not value or len(value) > 128:
        raise EnvelopeError("invalid_hash", "hash must be a non-empty string")
    return value


def _optional_created_at(body: dict[str, Any]) -> int | None:
    if "created_at" not in body:
        return None
    value = body["created_at"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise EnvelopeError("invalid_created_at", "created_at must be an integer of Unix seconds")
    return value
