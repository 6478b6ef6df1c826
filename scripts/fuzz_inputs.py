"""Fuzzed callbacks for the fault suite: odd JSON, deep nesting, lone surrogates, wrong id types, odd headers.

Each input is a raw HTTP/1.1 request (so headers can be duplicated, oversized or chunked), signed with the
reference `standardwebhooks` library when it is meant to be, plus the event id the receiver gives it if it
accepts it. The same seed gives the same inputs. The receiver may refuse any of them with a 4xx; it must
never answer 5xx, and whatever it acknowledges must end processed or dead-lettered.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.sandbox.delivery import sign_headers
from service.signatures import sign, signing_key

PATH = "/webhooks/bigcommerce"
SCOPES = (
    "store/product/updated",
    "store/order/updated",
    "store/customer/updated",
    "store/cart/updated",
    "store/sku/updated",
    "store/category/updated",
    "store/order/statusUpdated",
)
ODD_IDS: tuple[Any, ...] = (
    "abc", "", "1", " 7", "07", -1, 0, 1.5, 10**30, -(10**30), 2**63, 2**64, True, False, None, [], {},
    [1, 2], {"id": 1}, "1e3", "\u0661\u0662", "\ud800", "9" * 400, 1e300,
)  # fmt: skip
ODD_SCOPES: tuple[Any, ...] = (
    "store/product/\ud800updated", "store/\udfff", "store/", "store/unknown/thing",
    "store/product/updated\x00",
    "store/" + "p" * 194, "store/" + "p" * 195, "Store/product/updated", "store/prod\u00fcct/updated",
    "store/product/updated/", "store//updated", 7, None, ["store/product/updated"], {"s": 1},
    "store/order/\ud83d\ude00", "store/\u202eorder/updated",
)  # fmt: skip
NESTING_DEPTHS = (10, 100, 400, 489, 490, 491, 600, 900, 977, 980, 1000, 3000, 20000)
RAW_BODIES = (
    b"", b" ", b"null", b"[]", b"{}", b'"store/product/updated"', b"7", b"1e999", b"NaN", b"{'scope': 1}",
    b'{"scope": "store/product/updated",}', b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"{" * 5000,
    b'{"a": "\\ud800"}', b'{"a": "\\u0000"}', b"\xc0\xaf", b'{"scope": "\xed\xa0\x80"}', b"[" * 100000,
)  # fmt: skip
CONTENT_TYPES = (
    "application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "application/json ",
    "text/plain", "application/jsonx", "application/json; charset=latin-1", "",
)  # fmt: skip


@dataclass(frozen=True)
class FuzzInput:
    """One fuzzed request: its bytes, what kind of fuzz it is, and its event id if it gets accepted."""

    request: bytes
    kind: str
    event_id: str | None


def base_envelope(rng: random.Random, store_hash: str, created_at: int) -> dict[str, Any]:
    """A well-formed callback for a record the sandbox holds."""
    scope = rng.choice(SCOPES)
    data: dict[str, Any] = {"type": scope.split("/")[1], "id": rng.randint(1, 40)}
    if scope.startswith("store/order/"):
        data["id"] = rng.randint(100, 140)
    if scope == "store/cart/updated":
        data = {"type": "cart", "id": f"cart-{rng.randint(1, 5)}"}
    return {
        "scope": scope,
        "store_id": "1000001",
        "data": data,
        "hash": f"{rng.getrandbits(160):040x}",
        "created_at": created_at,
        "producer": f"stores/{store_hash}",
    }


def mutate_body(rng: random.Random, envelope: dict[str, Any]) -> tuple[str, bytes]:
    """One structural or type mutation of a valid envelope; returns (kind, body)."""
    kind = rng.choice(MUTATIONS)
    return kind, MUTATORS[kind](rng, envelope)


def _data_id(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    envelope["data"]["id"] = rng.choice(ODD_IDS)
    return json.dumps(envelope).encode()


def _scope(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    envelope["scope"] = rng.choice(ODD_SCOPES)
    return json.dumps(envelope).encode()


def _deep_data(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    depth, as_list = rng.choice(NESTING_DEPTHS), rng.random() < 0.5
    marker = b'"__DEEP__"'
    envelope["data"]["extra"] = "__DEEP__"
    text = json.dumps(envelope).encode()
    deep = (b"[" * depth + b"1" + b"]" * depth) if as_list else (b'{"n":' * depth + b"1" + b"}" * depth)
    return text.replace(marker, deep)


def _deep_body(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    depth = rng.choice(NESTING_DEPTHS)
    return b"[" * depth + json.dumps(envelope).encode() + b"]" * depth


def _huge_numbers(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    field, literal = rng.choice(
        (
            ("created_at", "1" + "0" * 20),
            ("created_at", "-1"),
            ("created_at", "1.5e9"),
            ("store_id", '"' + "9" * 300 + '"'),
            ("store_id", "1" + "0" * 400),
            ("id", "1e400"),
            ("id", "-0"),
            ("id", "1" + "0" * 4000),
            ("id", "0.000000000000000000000000001"),
        )
    )
    text = json.dumps(envelope)
    if field == "id":
        return text.replace(f'"id": {json.dumps(envelope["data"]["id"])}', f'"id": {literal}', 1).encode()
    envelope[field] = "__NUM__"
    return json.dumps(envelope).replace('"__NUM__"', literal).encode()


def _structure(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    text = json.dumps(envelope)
    choice = rng.randrange(10)
    if choice == 0:
        return text.replace("{", '{"scope": "store/order/created", ', 1).encode()  # duplicate key
    if choice == 1:
        return b"\xef\xbb\xbf" + text.encode()
    if choice == 2:
        return text.encode() + b" trailing"
    if choice == 3:
        return text.encode() + b"\n"
    if choice == 4:
        envelope["data"] = [{"id": 1}, {"id": "x"}] if rng.random() < 0.5 else [{"id": 1}, 2]
        return json.dumps(envelope).encode()
    if choice == 5:
        envelope["data"]["blob"] = "x" * rng.choice((1000, 30_000, 64_000, 70_000))
        return json.dumps(envelope).encode()
    if choice == 6:
        envelope[rng.choice(("weird\u0000key", "\ud800", "data\u00e9"))] = {"a": [None, True, 1.5]}
        return json.dumps(envelope).encode()
    if choice == 7:
        envelope["data"] = {} if rng.random() < 0.5 else {"type": None}
        return json.dumps(envelope).encode()
    if choice == 8:
        return json.dumps(envelope, ensure_ascii=False).encode("utf-16")
    del envelope[rng.choice(("scope", "data", "producer", "hash", "created_at", "store_id"))]
    return json.dumps(envelope).encode()


def _fields(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    field = rng.choice(("producer", "hash", "created_at", "store_id"))
    envelope[field] = rng.choice(
        ("stores/other", "stores/", "", None, 7, "x" * 129, "\ud800", [], "12a", -5, 1.5, True)
    )
    return json.dumps(envelope).encode()


def _bytes(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    body = bytearray(json.dumps(envelope).encode())
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(len(body))
        action = rng.randrange(3)
        if action == 0:
            body[position] = rng.randrange(256)
        elif action == 1:
            body.insert(position, rng.randrange(256))
        else:
            del body[position]
    return bytes(body)


def _raw(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    return rng.choice(RAW_BODIES)


def _valid(rng: random.Random, envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope).encode()


MUTATORS: dict[str, Callable[[random.Random, dict[str, Any]], bytes]] = {
    "valid": _valid,
    "data.id": _data_id,
    "scope": _scope,
    "deep data": _deep_data,
    "deep body": _deep_body,
    "huge number": _huge_numbers,
    "structure": _structure,
    "field types": _fields,
    "byte flips": _bytes,
    "raw": _raw,
}
MUTATIONS = tuple(MUTATORS)


def build_request(port: int, body: bytes, headers: list[tuple[str, str]], chunked: bool) -> bytes:
    """A raw HTTP/1.1 POST to the receiver with exactly these headers (repeats and odd values kept)."""
    head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
        middle = len(body) // 2
        parts = [body[:middle], body[middle:]]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts if part) + b"0\r\n\r\n"
    else:
        head += f"Content-Length: {len(body)}\r\n"
        payload = body
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("latin-1") + b"\r\n" + payload


def signature_headers(secret: str, webhook_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Signed by the reference library; bodies that are not UTF-8 (it takes text) by our own signer."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(signing_key(secret), webhook_id, timestamp, body),
        }
    return dict(sign_headers(secret, webhook_id, body, timestamp))


ODD_WEBHOOK_IDS = ("msg with spaces", "m" * 500, "msg:colon:id", "msg_caf\u00e9", "msg\ttab", "-")


def odd_headers(
    rng: random.Random, secret: str, body: bytes, webhook_id: str, now: int
) -> tuple[str, list[tuple[str, str]], str]:
    """A signed request's headers, oddly shaped; returns (kind, headers, the webhook id they carry)."""
    signed = signature_headers(secret, webhook_id, body, now)
    headers = list(signed.items())
    choice = rng.randrange(9)
    if choice == 0:
        junk = [(f"x-junk-{i}", "v" * rng.randint(1, 40)) for i in range(rng.choice((20, 100, 300)))]
        return "many headers", [*headers, *junk], webhook_id
    if choice == 1:
        return "long header", [*headers, ("x-long", "a" * rng.choice((4000, 8000, 70_000)))], webhook_id
    if choice == 2:
        return "second webhook-id", [*headers, ("webhook-id", "msg_other")], webhook_id
    if choice == 3:
        stamp = rng.choice(("", "abc", "-1", "1e9", f"{now}.5", "9" * 30, str(now - 400), str(now + 400)))
        return (
            "odd timestamp",
            [(n, stamp if n == "webhook-timestamp" else v) for n, v in headers],
            webhook_id,
        )
    if choice == 4:
        real = signed["webhook-signature"]
        value = rng.choice(
            ("v1,", "v1,!!!", real.replace("v1,", "v2,"), " ".join(["v1,AAAA"] * 200 + [real]), real + "  ")
        )
        return (
            "odd signature",
            [(n, value if n == "webhook-signature" else v) for n, v in headers],
            webhook_id,
        )
    if choice == 5:
        return "upper-case names", [(n.upper(), v) for n, v in headers], webhook_id
    if choice == 6:
        missing = rng.choice(tuple(signed))
        return "missing header", [(n, v) for n, v in headers if n != missing], webhook_id
    if choice == 7:
        return "odd header bytes", [*headers, ("x-odd", "\u00ff\u00fe caf\u00e9 \t tab")], webhook_id
    odd_id = rng.choice(ODD_WEBHOOK_IDS) + f"_{webhook_id}"
    return "odd webhook-id", list(signature_headers(secret, odd_id, body, now).items()), odd_id


def fuzz_inputs(count: int, port: int, secret: str, store_hash: str, seed: int) -> list[FuzzInput]:
    """`count` fuzzed requests: about 3 in 4 signed with `secret`, the rest unsigned or signed wrongly."""
    rng = random.Random(seed)
    now = int(time.time())
    inputs = []
    for index in range(count):
        kind, body = mutate_body(rng, base_envelope(rng, store_hash, now))
        webhook_id = f"msg_fuzz_{seed}_{index}"
        media_type = rng.choice(CONTENT_TYPES) if rng.random() < 0.1 else "application/json"
        roll = rng.random()
        if roll < 0.75:
            headers = list(signature_headers(secret, webhook_id, body, now).items())
            if rng.random() < 0.25:
                header_kind, headers, webhook_id = odd_headers(rng, secret, body, webhook_id, now)
                kind = f"{kind} + {header_kind}"
            signed = True
        elif roll < 0.9:
            headers, signed, kind = [], False, f"{kind} (unsigned)"
        else:
            headers = list(signature_headers(secret + "x", webhook_id, body, now).items())
            signed, kind = False, f"{kind} (wrong secret)"
        if media_type:
            headers.insert(0, ("Content-Type", media_type))
        chunked = rng.random() < 0.05
        event_id = f"id:{webhook_id}" if signed else None
        inputs.append(FuzzInput(build_request(port, body, headers, chunked), kind, event_id))
    return inputs
