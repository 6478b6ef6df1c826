"""Write validation as the platform does it: each field's type and bounds from the published request schemas,
unknown fields refused, and every failure named in one 422 with field errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.sandbox.errors import ChangeError

INVALID = "JSON data is missing or invalid"
NUMBER = (int, float)


@dataclass(frozen=True)
class Field:
    """What one writable field accepts.

    Parameters:
      kind: the Python type(s) a JSON value must have (bool never counts as a number).
      max_length: longest string or list allowed.
      minimum, maximum: bounds of a number.
      choices: the only values allowed (an enum).
      nullable: whether null is accepted.
      items: the type every element of a list must have (null elements are refused).
    """

    kind: type | tuple[type, ...]
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    items: type | tuple[type, ...] | None = None

    def problem(self, value: Any) -> str | None:
        """Why `value` is refused, or None when it is accepted."""
        if value is None:
            return None if self.nullable else "must not be null"
        if not _is(value, self.kind):
            return f"must be {_name(self.kind)}"
        if self.choices is not None and value not in self.choices:
            return "must be one of " + ", ".join(map(str, self.choices))
        if self.max_length is not None and isinstance(value, str | list) and len(value) > self.max_length:
            return f"must be at most {self.max_length} long"
        if self.minimum is not None and isinstance(value, NUMBER) and value < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and isinstance(value, NUMBER) and value > self.maximum:
            return f"must be at most {self.maximum:g}"
        if self.items is not None and isinstance(value, list):
            if not all(item is not None and _is(item, self.items) for item in value):
                return f"every element must be {_name(self.items)}"
        return None


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


def _name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    names.update({list: "an array", dict: "an object"})
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def field_errors(
    body: Any, fields: Mapping[str, Field], required: tuple[str, ...] = (), where: str = ""
) -> dict[str, str]:
    """Every problem of one object body, keyed by the field's path (`where` prefixes nested paths)."""
    if not isinstance(body, dict):
        return {where.rstrip(".") or "body": "must be a JSON object"}
    errors = {f"{where}{name}": "error.path.missing" for name in required if name not in body}
    for name, value in body.items():
        spec = fields.get(name)
        problem = "is not a known field" if spec is None else spec.problem(value)
        if problem:
            errors[f"{where}{name}"] = f"{name} {problem}"
    return errors


def checked(body: Any, fields: Mapping[str, Field], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The body, if every field is known and valid and every required one is present; else a 422."""
    errors = field_errors(body, fields, required)
    if errors:
        raise ChangeError(422, INVALID, errors)
    assert isinstance(body, dict)
    return body


def checked_list(
    body: Any, fields: Mapping[str, Field], required: tuple[str, ...] = (), limit: int = 1000
) -> list[dict[str, Any]]:
    """A non-empty array of object bodies, each checked; errors are keyed `[index].field`."""
    if not isinstance(body, list) or not body:
        raise ChangeError(422, INVALID, {"body": "must be a non-empty JSON array"})
    if len(body) > limit:
        raise ChangeError(413, "Request entity too large", {"body": f"at most {limit} items"})
    errors: dict[str, str] = {}
    for index, item in enumerate(body):
        errors.update(field_errors(item, fields, required, where=f"[{index}]."))
    if errors:
        raise ChangeError(422, INVALID, errors)
    return body
