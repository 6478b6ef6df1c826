"""The callback envelope: what the receiver checks before it persists a callback.

Besides the fields routing needs, it refuses what no worker could ever process, so that nothing answered 2xx
is stuck: nesting deeper than MAX_DEPTH (BigCommerce's payloads are about 4 deep; the standard library's
JSON recursion gives out near 1,000 and Dramatiq's message adds its own levels), text that is not valid
Unicode (a lone surrogate written as a `\\ud800` escape: valid JSON, but not encodable to UTF-8, so Redis
and every output would refuse it), numbers too large for a float (`1e400` parses as infinity), and ids a
scope's worker cannot read (service/payloads.py). The scans are skipped when the raw bytes show they cannot
find anything: too few brackets to be deep, no `\\u` escape to hide a surrogate (UTF-8 decoding already
refuses encoded ones).
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from service.payloads import data_check_for
from service.settings import STORE_HASH_PATTERN

# Levels of objects and arrays, the body itself being level 1.
MAX_DEPTH = 32


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


def parse_envelope(raw: bytes, store_hash: str | None) -> Envelope:
    """Parse and validate a callback body for the configured store, or raise EnvelopeError.

    Strict only where routing needs it: `scope`, `data` and `producer` are required; `store_id`, `hash`
    and `created_at` are type-checked when present, because BigCommerce's own examples omit some of them.
    `store_hash` None (app mode): any well-formed store in `producer` (whether it installed the app is the
    queue's check).
    """
    body = _json_object(raw)
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH or b"\\u" in raw:
        _check_structure(raw, body)
    scope = _scope(body)
    _check_data(body)
    problem = data_check_for(scope)(body["data"])
    if problem is not None:
        raise EnvelopeError("invalid_data_id", f"{problem} (for {scope})")
    producer_store = _check_producer(body, store_hash)
    _check_store_id(body)
    return Envelope(
        scope=scope,
        store_hash=producer_store,
        hash=_optional_hash(body),
        created_at=_optional_created_at(body),
        body=body,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _NumberOutOfRange(ValueError):
    """A JSON number beyond the range of a float."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberOutOfRange(text)
    return value


# NaN and Infinity are not JSON; the standard library accepts them unless told otherwise, and reads 1e400 as
# infinity, which JSON encoders then write as Infinity or null.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = _DECODER.decode(raw.decode("utf-8"))
    except _NumberOutOfRange:
        raise EnvelopeError("number_out_of_range", "a number is too large to be read as a float") from None
    except RecursionError:
        raise EnvelopeError("too_deep", f"body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise EnvelopeError("invalid_json", "body is not valid UTF-8 JSON") from None
    if not isinstance(body, dict):
        raise EnvelopeError("not_an_object", "body must be a JSON object")
    return body


def _check_structure(raw: bytes, body: dict[str, Any]) -> None:
    """Refuse nesting deeper than MAX_DEPTH and lone surrogates, scanning only for what the raw bytes allow.

    The caller skips it when neither can be there (the hot path pays two counts and one search).
    """
    deep = raw.count(b"{") + raw.count(b"[") > MAX_DEPTH
    escaped = b"\\u" in raw
    if deep or escaped:
        _scan(body, check_depth=deep, check_text=escaped)


def _scan(body: dict[str, Any], check_depth: bool, check_text: bool) -> None:
    """Walk the parsed body without recursion (so depth itself cannot break the walk)."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if check_depth and depth > MAX_DEPTH:
            raise EnvelopeError("too_deep", f"body is nested deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if check_text and isinstance(key, str) and not _is_unicode(key):
                raise EnvelopeError("invalid_unicode", "a key holds a lone surrogate (\\ud800-\\udfff)")
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
            elif check_text and isinstance(item, str) and not _is_unicode(item):
                raise EnvelopeError("invalid_unicode", "a string holds a lone surrogate (\\ud800-\\udfff)")


def _is_unicode(text: str) -> bool:
    """Whether the text encodes to UTF-8 (it does not when it holds a lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def _check_producer(body: dict[str, Any], store_hash: str | None) -> str:
    """The store the callback comes from: the configured one, or (app mode) any well-formed one."""
    producer = body.get("producer")
    if producer is None:
        raise EnvelopeError("missing_producer", "producer is required")
    if not isinstance(producer, str) or not producer.startswith("stores/"):
        raise EnvelopeError("invalid_producer", "producer must look like stores/<store_hash>")
    if store_hash is None:
        named = producer[7:]
        if not STORE_HASH_PATTERN.match(named):
            raise EnvelopeError("invalid_producer", "producer must look like stores/<store_hash>")
        return named
    if producer != f"stores/{store_hash}":
        raise EnvelopeError("wrong_store", "producer names a store this receiver is not configured for")
    return store_hash


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
