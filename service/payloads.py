"""What each scope's `data` must hold for a worker to fetch its record (BIGCOMMERCE.md sections 1 and 5).

The workers read ids out of `data` (workers/resolvers.py, RULES) with `int(...)` or put them in an API path
as they are. A callback whose ids cannot be read that way could be acknowledged but never processed, so the
receiver refuses it instead. The receiver may not import the workers, so this table mirrors theirs: the same
scope globs in the same order (first match wins), each with the fields its rule reads; a test holds the two
tables together. Scopes no rule knows are accepted as they are (the workers deliver them without a record).

Kinds of field:
  integer id: a JSON integer from 0 to 2**63-1, or a string of ASCII digits without a leading zero (order
    transactions send `order_id: "250"`, metafields `resource_id: "270"`), so that `int(x)` works and
    `str(int(x)) == str(x)` (batch fetches match records back by that string).
  token: a path-safe string (letters, digits, `-`, `_`; 1 to 128), as cart UUIDs are.
  currency: three ASCII letters.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_INTEGER_ID = 2**63 - 1
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
CURRENCY_PATTERN = re.compile(r"[A-Za-z]{3}")
SCOPE_CACHE_SIZE = 1024

# Returns the first problem with `data`, as "<field>: <what it must be>", or None when the worker can use it.
DataCheck = Callable[[Any], str | None]


def is_integer_id(value: object) -> bool:
    """A value the workers can turn into an id with `int()`, and back into the same string with `str()`."""
    if type(value) is int:
        return 0 <= value <= MAX_INTEGER_ID
    if not isinstance(value, str) or not 0 < len(value) <= 19 or not value.isascii() or not value.isdigit():
        return False
    return (value == "0" or value[0] != "0") and int(value) <= MAX_INTEGER_ID


def is_token(value: object) -> bool:
    """A string that can stand as one segment of an API path."""
    return isinstance(value, str) and TOKEN_PATTERN.fullmatch(value) is not None


def is_currency(value: object) -> bool:
    """An ISO 4217-shaped currency code."""
    return isinstance(value, str) and CURRENCY_PATTERN.fullmatch(value) is not None


KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "int": (is_integer_id, "an integer id (or a string of digits)"),
    "token": (is_token, "a string of letters, digits, - and _"),
    "currency": (is_currency, "a three-letter currency code"),
}


def _parse(spec: str) -> tuple[str, tuple[str, ...], Callable[[object], bool], str]:
    name, kind = spec.split(":")
    accepts, expected = KINDS[kind]
    return name, tuple(name.split(".")), accepts, expected


NOT_AN_OBJECT = "data: must be an object"


def required(*specs: str) -> DataCheck:
    """Each `field.path:kind` must be present in `data` (an object) and of its kind."""
    parsed = [_parse(spec) for spec in specs]

    def check(data: Any) -> str | None:
        # On the receiver's hot path: plain loops and exact type checks (JSON objects are dicts).
        if type(data) is not dict:
            return NOT_AN_OBJECT
        for name, path, accepts, expected in parsed:
            value = data
            for key in path:
                if type(value) is not dict or key not in value:
                    return f"data.{name}: required, {expected}"
                value = value[key]
            if not accepts(value):
                return f"data.{name}: must be {expected}"
        return None

    if len(parsed) == 1 and len(parsed[0][1]) == 1 and parsed[0][2] is is_integer_id:
        return _one_integer(parsed[0][1][0], check)
    return check


def _one_integer(key: str, full_check: DataCheck) -> DataCheck:
    """`required("<key>:int")` with the usual case (a plain JSON integer) answered first."""

    def check(data: Any) -> str | None:
        if type(data) is dict:
            value = data.get(key)
            if type(value) is int and 0 <= value <= MAX_INTEGER_ID:
                return None
        return full_check(data)

    return check


def optional(*specs: str) -> DataCheck:
    """Each `field:kind` present in `data` must be of its kind."""
    checks = {spec: required(spec) for spec in specs}

    def check(data: Any) -> str | None:
        if type(data) is not dict:
            return NOT_AN_OBJECT
        for spec, inner in checks.items():
            if spec.split(":")[0] in data:
                problem = inner(data)
                if problem:
                    return problem
        return None

    return check


def nothing(data: Any) -> str | None:
    """The rule reads nothing from `data`."""
    return None


def _sku(data: Any) -> str | None:
    # The worker reads `data.sku or data.inventory`, whichever is a non-empty object first.
    if type(data) is not dict:
        return NOT_AN_OBJECT
    inner = data.get("sku") or data.get("inventory")
    if not isinstance(inner, dict):
        return "data.sku (or data.inventory): required, an object with product_id and variant_id"
    problem = required("product_id:int", "variant_id:int")(inner)
    return problem and problem.replace("data.", "data.sku.", 1)


METAFIELD_RESOURCE_KINDS = {
    "product": "int",
    "variant": "int",
    "category": "int",
    "brand": "int",
    "order": "int",
    "cart": "token",
    "channel": "int",
    "location": "int",
}


def _any_metafield(data: Any) -> str | None:
    # The worker dispatches on resource_type; a type it does not know is delivered without a record.
    if type(data) is not dict:
        return NOT_AN_OBJECT
    resource_type = data.get("resource_type")
    kind = METAFIELD_RESOURCE_KINDS.get(resource_type) if isinstance(resource_type, str) else None
    if kind is None:
        return None
    return required("metafield_id:int", f"resource_id:{kind}")(data)


def _affected_products(data: Any) -> str | None:
    if type(data) is not dict:
        return NOT_AN_OBJECT
    ids = data.get("affected_product_ids", [])
    if not isinstance(ids, list) or not all(is_integer_id(item) for item in ids):
        return "data.affected_product_ids: must be a list of integer ids"
    return None


_PRICE_LIST_RECORD = required("price_list_id:int", "variant_id:int")
# BigCommerce's docs name the currency `currency`; its published callback schema `currency_code`.
PRICE_LIST_CURRENCY_KEYS = ("currency", "currency_code")


def _price_list_records(data: Any) -> str | None:
    # The one family that comes as an array: each item is checked as an object.
    items = data if isinstance(data, list) else [data]
    for item in items:
        problem = _PRICE_LIST_RECORD(item)
        if problem:
            return problem
        currency = next((item[key] for key in PRICE_LIST_CURRENCY_KEYS if key in item), None)
        if not is_currency(currency):
            return "data.currency (or currency_code): required, a three-letter currency code"
    return None


@dataclass(frozen=True)
class DataRule:
    """The fields one family of scopes needs in `data`; `pattern` is the workers' glob for that family."""

    pattern: str
    check: DataCheck


_METAFIELD = required("metafield_id:int", "resource_id:int")

DATA_RULES: tuple[DataRule, ...] = (
    DataRule("store/order/metafield/*", _METAFIELD),
    DataRule("store/order/message/*", required("message.order_message_id:int", "id:int")),
    DataRule("store/order/refund/*", required("refund.refund_id:int")),
    DataRule("store/order/transaction/*", required("order_id:int")),
    DataRule("store/order/*", required("id:int")),
    DataRule("store/product/variant/metafield/*", _METAFIELD),
    DataRule("store/product/metafield/*", _METAFIELD),
    DataRule("store/product/inventory/*", required("id:int")),
    DataRule("store/product/*", required("id:int")),
    DataRule("store/sku/*", _sku),
    DataRule("store/category/metafield/*", _METAFIELD),
    DataRule("store/category/*", required("id:int")),
    DataRule("store/brand/metafield/*", _METAFIELD),
    DataRule("store/customer/address/*", required("id:int")),
    DataRule("store/customer/payment/instrument/*", required("id:int")),
    DataRule("store/customer/channel/login/access/*", required("customer_id:int")),
    DataRule("store/customer/*", required("id:int")),
    DataRule("store/cart/converted", required("orderId:int")),
    DataRule("store/cart/deleted", nothing),
    DataRule("store/cart/metafield/*", required("metafield_id:int", "resource_id:token")),
    DataRule("store/cart/lineItem/*", required("cartId:token")),
    DataRule("store/cart/*", required("id:token")),
    DataRule("store/shipment/*", required("orderId:int", "id:int")),
    DataRule("store/subscriber/*", required("id:int")),
    DataRule("store/information/*", nothing),
    DataRule("store/app/uninstalled", nothing),
    DataRule("store/channel/*/order/*", required("order_id:int")),
    DataRule("store/channel/*/cart/*", required("cart_id:token")),
    DataRule("store/channel/*/category/*", required("category_id:int")),
    DataRule("store/channel/metafield/*", _METAFIELD),
    DataRule("store/channel/created", required("id:int")),
    DataRule("store/channel/updated", required("id:int")),
    DataRule("store/inventory/location/metafield/*", _METAFIELD),
    DataRule("store/inventory/location/*", required("location_id:int")),
    DataRule("store/metafield/*", _any_metafield),
    DataRule("store/modifier/*", _affected_products),
    DataRule("store/option/*", _affected_products),
    DataRule("store/priceLists/deleted", nothing),
    DataRule("store/priceList/record*", _price_list_records),
    DataRule(
        "store/priceList/assignment/*",
        optional("price_list_id:int", "channel_id:int", "customer_group_id:int"),
    ),
    DataRule("store/priceList/*", required("price_list_id:int")),
    DataRule("store/hook/deliveryException", required("id:int")),
)


_checks_by_scope: dict[str, DataCheck] = {}


def data_rule_for(scope: str) -> DataRule | None:
    """The first rule whose glob matches the scope, or None for a scope no rule knows."""
    return next((rule for rule in DATA_RULES if fnmatch.fnmatchcase(scope, rule.pattern)), None)


def data_check_for(scope: str) -> DataCheck:
    """The check for `scope`'s `data` (memoized: a store sends a few dozen distinct scopes).

    Only price-list records come as an array; every other rule that reads `data` wants an object (the
    workers hand an array to code that reads an object). Unknown scopes and rules reading nothing accept all.
    """
    check = _checks_by_scope.get(scope)
    if check is None:
        rule = data_rule_for(scope)
        check = nothing if rule is None else rule.check
        if len(_checks_by_scope) < SCOPE_CACHE_SIZE:  # bounded: scopes are client input
            _checks_by_scope[scope] = check
    return check


def data_problem(scope: str, data: Any) -> str | None:
    """Why a worker could not read the ids it needs from `data` for `scope`, or None when it can."""
    return data_check_for(scope)(data)
