"""Every StoreApi method knows its area, access level and endpoint; a handler's StoreApi carries a CallGuard
that refuses what the handler did not declare before a request leaves, and logs every call in one line."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

import structlog

from service.bigcommerce.access import AREAS, AccessPolicy, Level
from service.bigcommerce.client import ApiClient, Params
from service.bigcommerce.errors import AccessDenied, ApiError

P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A", bound="AreaApi")

log = structlog.get_logger("bcwebhooks.api")


@dataclass(frozen=True)
class Operation:
    """One StoreApi method: `orders.update` is a `write` in `orders` on `PUT /v2/orders/{order_id}`."""

    name: str
    area: str
    level: Level
    http_method: str
    path: str

    @property
    def scope(self) -> str:
        """The OAuth scope this call needs (the read-only form for reads; modify also satisfies them)."""
        return AREAS[self.area].scope_for(self.level)

    def resource(self, arguments: Mapping[str, object]) -> str:
        """The path with the call's ids filled in (ids only: no bodies, no query values, no secrets)."""
        return self.path.format_map(_Ids({k: v for k, v in arguments.items() if isinstance(v, int | str)}))


class _Ids(dict[str, object]):
    """Path arguments; a placeholder without a plain id stays as it is written."""

    def __missing__(self, key: str) -> str:
        return f"{{{key}}}"


class CallGuard:
    """The access one handler declared, checked on each of its calls, which are each logged in one line.

    Parameters:
      handler: the handler's name, as the registry knows it (`module.function`).
      policy: what it declared with `access=`.
    """

    def __init__(self, handler: str, policy: AccessPolicy) -> None:
        self.handler = handler
        self.policy = policy

    def check(self, operation: Operation, resource: str) -> None:
        """Raise AccessDenied (and log the refusal) unless the policy allows the operation."""
        if self.policy.allows(operation.area, operation.level):
            return
        error = AccessDenied(self.handler, operation.area, operation.level, self.policy.describe())
        log.warning(
            "handler.api_call",
            handler=self.handler,
            method=operation.name,
            resource=resource,
            outcome="refused",
            reason=str(error),
        )
        raise error

    def record(self, operation: Operation, resource: str, outcome: str) -> None:
        """Log a call that was let through, with how it ended."""
        (log.info if outcome == "ok" else log.warning)(
            "handler.api_call",
            handler=self.handler,
            method=operation.name,
            resource=resource,
            outcome=outcome,
        )


class AreaApi:
    """The methods of one seed-003 area over an ApiClient; with a guard, each call is checked and logged."""

    area: ClassVar[str]

    def __init__(self, client: ApiClient, guard: CallGuard | None = None) -> None:
        self._client = client
        self._guard = guard

    def _data(self, path: str, params: Params | None = None) -> Any:
        """GET a v3 object and unwrap its `data` envelope."""
        return self._client.get_json(path, params)["data"]

    def _send(self, method: str, path: str, body: Any) -> Any:
        """POST/PUT/DELETE and unwrap a v3 `data` envelope (None for 204 No Content)."""
        answer = self._client.send_json(method, path, body)
        return answer["data"] if isinstance(answer, dict) and "data" in answer else answer

    @classmethod
    def operations(cls) -> Iterator[Operation]:
        """The operations this area declares, in definition order."""
        for name, member in vars(cls).items():
            spec = getattr(member, "__operation__", None)
            if spec is not None:
                level, http_method, path = spec
                yield Operation(f"{cls.area}.{name}", cls.area, level, http_method, path)


def operation(
    level: Level, endpoint: str
) -> Callable[[Callable[Concatenate[A, P], R]], Callable[Concatenate[A, P], R]]:
    """Declare an area method's access level and endpoint (`"PUT /v2/orders/{order_id}"`, placeholders
    named after the method's parameters)."""
    http_method, path = endpoint.split(" ", 1)

    def decorate(method: Callable[Concatenate[A, P], R]) -> Callable[Concatenate[A, P], R]:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def run(self: A, /, *args: P.args, **kwargs: P.kwargs) -> R:
            guard = self._guard
            if guard is None:
                return method(self, *args, **kwargs)
            spec = Operation(f"{self.area}.{method.__name__}", self.area, level, http_method, path)
            resource = f"{http_method} {spec.resource(signature.bind(self, *args, **kwargs).arguments)}"
            guard.check(spec, resource)
            try:
                result = method(self, *args, **kwargs)
            except Exception as error:
                guard.record(spec, resource, outcome_of(error))
                raise
            guard.record(spec, resource, "ok")
            return result

        run.__operation__ = (level, http_method, path)  # type: ignore[attr-defined]
        return run

    return decorate


def outcome_of(error: BaseException) -> str:
    """A short, secret-free outcome for a failed call: the error's kind and status, never its body."""
    status = getattr(error, "status_code", None) if isinstance(error, ApiError) else None
    return f"failed: {type(error).__name__}" + (f" ({status})" if status else "")


def all_operations(areas: Mapping[str, type[AreaApi]]) -> list[Operation]:
    """Every operation of the given area classes."""
    return [op for area in areas.values() for op in area.operations()]


__all__ = [
    "AreaApi",
    "CallGuard",
    "Operation",
    "all_operations",
    "id_list",
    "operation",
    "outcome_of",
    "present",
]


def present(**values: str | int | bool | None) -> dict[str, str | int | bool]:
    """Query parameters without the ones left out (None)."""
    return {key: value for key, value in values.items() if value is not None}


def id_list(ids: Iterable[int | str]) -> str:
    """`1,2,3` for an `id:in`-style filter."""
    return ",".join(str(i) for i in ids)
