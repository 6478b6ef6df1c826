"""The receiver's table of `data` ids agrees with what the workers read: whatever it accepts, they can use."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service.bigcommerce.webhook_scopes import STORE_SCOPES
from service.payloads import DATA_RULES, data_problem, is_integer_id
from workers.resolvers import RULES, fetch_batch, resolution_from_batch, resolve, rule_for

SAFE_PATH = re.compile(r"/v[23](/[A-Za-z0-9_-]+)+")
SCOPES = [
    *STORE_SCOPES,
    "store/channel/1/order/created",
    "store/channel/1/cart/created",
    "store/channel/1/category/updated",
    "store/channel/metafield/created",
    "store/inventory/location/metafield/created",
    "store/company/created",  # no rule: delivered without a record
]


class RecordingClient:
    """Answers every call with a plausible record and checks that each path is a clean API path.

    A batch fetch (`id:in`) echoes back one record per requested id, so a record matched back by the wrong
    string shows up as a spurious "deleted".
    """

    def __init__(self) -> None:
        self.paths: list[str] = []

    def _path(self, path: str) -> None:
        assert SAFE_PATH.fullmatch(path), path
        self.paths.append(path)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        self._path(path)
        return {"id": 1, "data": [{"id": 1, "product_id": 2}]}

    def v2_items(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        self._path(path)
        return iter([{"id": 1}])

    def v3_items(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        self._path(path)
        ids = str((params or {}).get("id:in", "1")).split(",")
        return iter([{"id": int(i), "product_id": 2} for i in ids])


def worker_reads(scope: str, data: Any) -> None:
    """Do what a worker does with one event, alone and in a batch; raises where the worker would."""
    client: Any = RecordingClient()
    resolve(scope, data, client)
    rule = rule_for(scope)
    if rule is not None and rule.batch_path is not None:
        resource_id = rule.resource_id(data if isinstance(data, Mapping) else {})
        found = fetch_batch(client, rule, [resource_id] if resource_id is not None else [])
        resolution = resolution_from_batch(scope, data, found)
        assert resolution is not None
        assert resource_id is None or not resolution.deleted, (resource_id, found)


def test_the_table_mirrors_the_workers_rules_in_the_same_order() -> None:
    assert [rule.pattern for rule in DATA_RULES] == [rule.pattern for rule in RULES]


DOCUMENTED = [
    ("store/order/created", {"type": "order", "id": 250}),
    ("store/order/message/created", {"type": "order", "id": 250, "message": {"order_message_id": 3}}),
    ("store/order/refund/created", {"type": "order", "id": 250, "refund": {"refund_id": 3}}),
    ("store/order/transaction/created", {"type": "transaction", "order_id": "250"}),
    ("store/order/metafield/created", {"metafield_id": 14, "resource_id": "270"}),
    ("store/product/updated", {"type": "product", "id": 205, "properties": ["warranty"]}),
    ("store/product/inventory/updated", {"type": "product", "id": 167, "inventory": {"product_id": 167}}),
    ("store/product/variant/metafield/created", {"metafield_id": 3, "resource_id": "509"}),
    ("store/sku/created", {"type": "sku", "id": 461, "sku": {"product_id": 206, "variant_id": 509}}),
    (
        "store/sku/inventory/updated",
        {"type": "sku", "id": 461, "inventory": {"product_id": 206, "variant_id": 509}},
    ),
    ("store/category/updated", {"type": "category", "id": 42}),
    ("store/customer/address/created", {"type": "customer", "id": 60, "address": {"customer_id": 32}}),
    ("store/customer/channel/login/access/updated", {"customer_id": 22, "channel_ids": [1]}),
    ("store/cart/created", {"type": "cart", "id": "09346904-4175-44fd-be53-f7e598531b6c"}),
    ("store/cart/converted", {"type": "cart", "id": "d300", "orderId": 252}),
    ("store/cart/lineItem/created", {"type": "cart_line_item", "id": "743bfd94", "cartId": "b0386708-ab"}),
    ("store/cart/metafield/created", {"metafield_id": 20, "resource_id": "29520ea6-aa"}),
    ("store/shipment/created", {"type": "shipment", "id": 12, "orderId": 251}),
    ("store/information/updated", {"type": "store"}),
    ("store/metafield/created", {"metafield_id": 10, "resource_id": "1", "resource_type": "location"}),
    ("store/metafield/created", {"metafield_id": 10, "resource_id": "c1-a", "resource_type": "cart"}),
    ("store/metafield/created", {"metafield_id": 10, "resource_id": {"x": 1}, "resource_type": "unheard"}),
    ("store/modifier/updated", {"type": "shared_modifier", "id": 205, "affected_product_ids": [1, 2]}),
    ("store/priceLists/deleted", {"price_list_ids": [5]}),
    ("store/priceList/record/created", {"price_list_id": 1, "variant_id": 179, "currency": "USD"}),
    ("store/priceList/records/created", [{"price_list_id": 1, "variant_id": 179, "currency": "usd"}]),
    # The published callback schema names it currency_code.
    ("store/priceList/record/updated", {"price_list_id": 1, "variant_id": 179, "currency_code": "USD"}),
    ("store/priceList/assignment/updated", {"price_list_id": 2, "channel_id": 1, "customer_group_id": 3}),
    ("store/priceList/updated", {"price_list_id": 5}),
    ("store/channel/1/order/created", {"order_id": 127}),
    ("store/channel/1/cart/created", {"cart_id": "4169-ab"}),
    ("store/inventory/location/updated", {"location_id": 2}),
    ("store/hook/deliveryException", {"type": "webhook", "id": 123, "error_code": 90001}),
    ("store/company/created", {"company_id": "anything at all"}),
]


@pytest.mark.parametrize(("scope", "data"), DOCUMENTED)
def test_documented_payloads_are_accepted_and_the_worker_can_read_them(scope: str, data: Any) -> None:
    assert data_problem(scope, data) is None
    worker_reads(scope, data)


REFUSED = [
    ("store/product/updated", {"type": "product", "id": "abc"}, "data.id: must be an integer id"),
    ("store/product/updated", {"type": "product"}, "data.id: required"),
    ("store/product/updated", {"id": True}, "data.id: must be"),
    ("store/product/updated", {"id": 1.5}, "data.id: must be"),
    ("store/product/updated", {"id": -1}, "data.id: must be"),
    ("store/product/updated", {"id": 2**63}, "data.id: must be"),
    ("store/product/updated", {"id": "007"}, "data.id: must be"),
    ("store/product/updated", {"id": "١٢"}, "data.id: must be"),  # Arabic-Indic digits: int() reads them
    ("store/product/updated", [{"id": 1}], "data: must be an object"),
    ("store/order/message/created", {"id": 250, "message": {}}, "data.message.order_message_id: required"),
    ("store/order/refund/created", {"id": 250, "refund": 3}, "data.refund.refund_id: required"),
    ("store/sku/updated", {"id": 461, "sku": {"product_id": 206}}, "data.sku.variant_id: required"),
    ("store/sku/updated", {"id": 461, "sku": "x"}, "data.sku (or data.inventory): required"),
    ("store/cart/updated", {"id": "../orders/1"}, "data.id: must be a string of letters"),
    ("store/cart/updated", {"id": 42}, "data.id: must be a string of letters"),
    ("store/cart/lineItem/created", {"id": "a"}, "data.cartId: required"),
    (
        "store/metafield/created",
        {"metafield_id": 1, "resource_id": "a/b", "resource_type": "cart"},
        "data.resource_id",
    ),
    ("store/modifier/updated", {"affected_product_ids": "12"}, "data.affected_product_ids"),
    ("store/modifier/updated", {"affected_product_ids": None}, "data.affected_product_ids"),
    (
        "store/priceList/records/created",
        [{"price_list_id": 1, "variant_id": 2}],
        "data.currency (or currency_code): required",
    ),
    (
        "store/priceList/record/created",
        {"price_list_id": 1, "variant_id": 2, "currency_code": 840},
        "data.currency (or currency_code)",
    ),
    (
        "store/priceList/record/created",
        {"price_list_id": 1, "variant_id": 2, "currency": "U/D"},
        "data.currency",
    ),
    ("store/priceList/assignment/updated", {"channel_id": "x"}, "data.channel_id: must be"),
]


@pytest.mark.parametrize(("scope", "data", "problem"), REFUSED)
def test_ids_a_worker_cannot_read_are_named(scope: str, data: Any, problem: str) -> None:
    found = data_problem(scope, data)

    assert found is not None and found.startswith(problem), found


def test_integer_ids_round_trip_through_int_and_str() -> None:
    for value in (0, 1, 250, 2**63 - 1, "0", "250", "9223372036854775807"):
        assert is_integer_id(value)
        assert str(int(value)) == str(value)
    for value in ("", " 1", "1 ", "+1", "1_000", "01", "9223372036854775808", 1.0, None, [1], False):
        assert not is_integer_id(value)


ID_KEYS = [
    "id",
    "order_id",
    "orderId",
    "cartId",
    "cart_id",
    "customer_id",
    "category_id",
    "location_id",
    "metafield_id",
    "resource_id",
    "resource_type",
    "price_list_id",
    "variant_id",
    "product_id",
    "channel_id",
    "customer_group_id",
    "currency",
    "currency_code",
    "affected_product_ids",
]
scalars = st.one_of(
    st.integers(min_value=-5, max_value=2**64),
    st.integers(min_value=0, max_value=500).map(str),
    st.sampled_from(["007", "abc", "", "USD", "a/b", "..", "c0ffee-42", "product", "cart", "variant", "٣"]),
    st.text(max_size=6),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(ID_KEYS), inner, max_size=3),
    max_leaves=6,
)
objects = st.dictionaries(
    st.sampled_from([*ID_KEYS, "message", "refund", "sku", "inventory"]),
    values
    | st.fixed_dictionaries(
        {},
        optional={
            "order_message_id": scalars,
            "refund_id": scalars,
            "product_id": scalars,
            "variant_id": scalars,
        },
    ),
    max_size=6,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scope=st.sampled_from(SCOPES), data=objects | st.lists(objects, max_size=3))
def test_whatever_the_table_accepts_a_worker_can_read(scope: str, data: Any) -> None:
    problem = data_problem(scope, data)
    event("accepted" if problem is None else "refused")
    if problem is None:
        worker_reads(scope, data)


def _mutated(example: tuple[str, Any], key: str, value: Any) -> tuple[str, Any]:
    scope, data = example
    if isinstance(data, dict):
        return scope, {**data, key: value}
    return scope, [{**item, key: value} for item in data]


documented_and_mutated = st.builds(
    _mutated, st.sampled_from(DOCUMENTED), st.sampled_from([*ID_KEYS, "message", "sku"]), values
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=documented_and_mutated)
def test_whatever_the_table_accepts_near_a_documented_payload_a_worker_can_read(
    example: tuple[str, Any],
) -> None:
    scope, data = example
    problem = data_problem(scope, data)
    event("accepted" if problem is None else "refused")
    if problem is None:
        worker_reads(scope, data)
