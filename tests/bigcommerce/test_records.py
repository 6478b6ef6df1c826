"""The typed records name only fields BigCommerce's published specs document for the endpoint they type,
with types those fields can hold: each StoreApi operation's result type against its response schema, its
body types against its request schema (read at test time from ../shared/bigcommerce-specs; skipped with
where to get them otherwise)."""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any

import pytest

from service.bigcommerce import operations
from service.bigcommerce.guard import Operation
from service.bigcommerce.resources import AREA_APIS
from tests.conformance import specs

pytestmark = pytest.mark.skipif(not specs.available(), reason=specs.MISSING)


def documented(spec: str, schema: Any) -> dict[str, Any]:
    """The properties a schema documents (through $ref, allOf/oneOf/anyOf and array items)."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = specs.resolve(spec, schema["$ref"].removeprefix("#"))
    if not isinstance(schema, dict):
        return {}
    if schema.get("type") == "array" or "items" in schema:
        return documented(spec, schema.get("items", {}))
    found = dict(schema.get("properties", {}))
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            found.update(documented(spec, part))
    return found


def typed_fields(hint: Any) -> set[str] | None:
    """The keys of a TypedDict, or of the TypedDict inside list[...]/Iterable[...]; None for other types."""
    if typing.get_origin(hint) in (list, collections.abc.Iterable):
        (hint,) = typing.get_args(hint)
    if typing.is_typeddict(hint):
        return set(hint.__required_keys__ | hint.__optional_keys__)
    return None


JSON_TYPES: dict[Any, set[str]] = {
    str: {"string"},
    int: {"integer", "number"},
    float: {"number"},
    bool: {"boolean"},
    dict: {"object"},
    list: {"array"},
}


def mismatched_types(spec: str, record: Any, properties: dict[str, Any]) -> list[str]:
    """Fields whose Python type the documented JSON type cannot hold (`int` for a documented string...)."""
    wrong = []
    for field, hint in typing.get_type_hints(record).items():
        schema = properties.get(field)
        while isinstance(schema, dict) and "$ref" in schema:
            schema = specs.resolve(spec, schema["$ref"].removeprefix("#"))
        if not isinstance(schema, dict) or "type" not in schema:
            continue
        options = (
            [a for a in typing.get_args(hint) if a is not type(None)]
            if typing.get_origin(hint)
            in (
                typing.Union,
                types.UnionType,
            )
            else [hint]
        )
        for option in options:
            base = typing.get_origin(option) or (dict if typing.is_typeddict(option) else option)
            if base in JSON_TYPES and schema["type"] not in JSON_TYPES[base]:
                wrong.append(f"{field}: {option} but documented {schema['type']}")
    return wrong


def method_of(op: Operation) -> Any:
    return getattr(AREA_APIS[op.area], op.name.split(".", 1)[1])


def response_properties(op: Operation) -> dict[str, Any]:
    documented_op = specs.operation(op.http_method, op.path)
    assert documented_op is not None, f"{op.name}: {op.http_method} {op.path} is not in the specs"
    pointer = next(p for status in (200, 201) if (p := documented_op.response_pointer(status)) is not None)
    found = documented(documented_op.spec, specs.resolve(documented_op.spec, pointer))
    if op.path.startswith("/v3/") and "data" in found:  # the v3 envelope StoreApi unwraps
        found = documented(documented_op.spec, found["data"])
    return found


# Fields a record types that the response schema leaves out but the endpoint documents otherwise.
DOCUMENTED_ELSEWHERE = {("Product", "variants")}  # added by the `include=variants` query parameter


TYPED_RESULTS = [op for op in operations() if typed_fields(typing.get_type_hints(method_of(op))["return"])]


@pytest.mark.parametrize("op", TYPED_RESULTS, ids=lambda op: op.name)
def test_each_typed_result_names_only_documented_fields(op: Operation) -> None:
    hint = typing.get_type_hints(method_of(op))["return"]
    fields = typed_fields(hint)
    record = (typing.get_args(hint) or (hint,))[0].__name__

    assert fields is not None
    extra = {
        field
        for field in fields - set(response_properties(op))
        if (record, field) not in DOCUMENTED_ELSEWHERE
    }
    assert sorted(extra) == []


def typed_bodies() -> list[tuple[Operation, str, set[str]]]:
    found = []
    for op in operations():
        for name, hint in typing.get_type_hints(method_of(op)).items():
            fields = typed_fields(hint) if name != "return" else None
            if fields is not None:
                found.append((op, name, fields))
    return found


@pytest.mark.parametrize(("op", "parameter", "fields"), typed_bodies(), ids=lambda v: getattr(v, "name", ""))
def test_each_typed_request_body_names_only_documented_fields(
    op: Operation, parameter: str, fields: set[str]
) -> None:
    documented_op = specs.operation(op.http_method, op.path)
    assert documented_op is not None
    pointer = documented_op.request_pointer()
    assert pointer is not None, f"{op.name} sends a body the specs do not document"
    properties = documented(documented_op.spec, specs.resolve(documented_op.spec, pointer))
    if parameter in properties:  # a parameter that is one field of the body, e.g. a cart's line_items
        properties = documented(documented_op.spec, properties[parameter])

    assert sorted(fields - set(properties)) == []


def test_every_typed_area_is_checked() -> None:
    assert len(TYPED_RESULTS) >= 40 and len(typed_bodies()) >= 19
