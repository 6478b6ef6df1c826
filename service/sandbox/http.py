"""Request plumbing shared by the sandbox's routes: auth, quota, scopes, faults, envelopes, filters."""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.sandbox.access import ApiAccount
from service.sandbox.channel_events import with_channel_events
from service.sandbox.data import Record, StoreData
from service.sandbox.delivery import Deliverer
from service.sandbox.errors import ApiFailure, SandboxError
from service.sandbox.hooks import HookRegistry
from service.sandbox.quota import RollingQuota

ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
DEFAULT_BULK_SECONDS_PER_RECORD = 0.002


@dataclass
class Fault:
    """An injected failure: the next `count` API calls whose path starts with `path_prefix` get `status`."""

    status: int
    count: int
    path_prefix: str = "/"
    reset_ms: int = 200


@dataclass
class SandboxState:
    """Everything one sandbox store holds."""

    store: StoreData
    accounts: dict[str, ApiAccount]
    quota: RollingQuota
    hooks: HookRegistry
    deliverer: Deliverer
    faults: list[Fault] = field(default_factory=list)
    # Bulk jobs in progress (one price-list record upsert at a time) and how long each record takes.
    running: set[str] = field(default_factory=set)
    bulk_seconds_per_record: float = DEFAULT_BULK_SECONDS_PER_RECORD
    calls: dict[str, int] = field(default_factory=dict)
    # The latest API requests served (after the quota), for tests that check what was fetched when.
    requests: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))
    # The latest webhook events the API's writes fired, in order (GET /_sandbox/events).
    fired: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))


REQUEST_LOG_SIZE = 20_000
Handler = Callable[[Request, ApiAccount], Awaitable[Any]]
# A module-level endpoint: the request and the store it serves (see `routes.py`).
StoreHandler = Callable[[Request, SandboxState], Awaitable[Any]]


def fire(state: SandboxState, events: Iterable[tuple[str, Any]]) -> None:
    """Deliver the webhooks a write fired to the hooks subscribed to them."""
    for scope, data in with_channel_events(state.store, events):
        state.fired.append({"scope": scope, "data": data})
        state.deliverer.fire(scope, data)


def endpoint(
    state: SandboxState, scope: str, write: bool, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: token → quota → OAuth scope → injected faults → handler, headers on every answer."""

    async def run(request: Request) -> Response:
        v2 = "/v2/" in request.url.path
        account = state.accounts.get(request.headers.get("x-auth-token", ""))
        if account is None:
            return error_response(401, "You are not authorized to access this resource.", v2)
        allowed, limit_headers = state.quota.try_acquire()
        if not allowed:
            refused = error_response(429, "Too many requests", v2)
            refused.headers.update(limit_headers)
            return refused
        path = request.url.path.split(f"/stores/{state.store.store_hash}", 1)[-1]
        state.calls[path] = state.calls.get(path, 0) + 1
        state.requests.append(
            {"at_ms": time.time_ns() // 1_000_000, "method": request.method, "path": path,
             "query": dict(request.query_params), "client_id": account.client_id, "token": account.token}
        )  # fmt: skip
        try:
            if not (account.can_write(scope) if write else account.can_read(scope)):
                raise ApiFailure(403, "You don't have a required scope to access the endpoint")
            fault = _injected_fault(state, path)
            if fault is not None:
                injected = error_response(fault.status, "Injected fault", v2)
                injected.headers.update(limit_headers)
                if fault.status == 429:
                    injected.headers.update(
                        {"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": str(fault.reset_ms)}
                    )
                return injected
            result = await handler(request, account)
            if isinstance(result, dict) and "data" in result:
                result = {**result, "data": chosen_fields(request, result["data"])}
            response: Response = result if isinstance(result, Response) else json_response(result)
        except SandboxError as failure:
            response = error_response(failure.status, failure.title, v2, failure.errors)
        response.headers.update(limit_headers)
        return response

    return run


def chosen_fields(request: Request, data: Any) -> Any:
    """v3 `include_fields` / `exclude_fields`: the listed fields (and the id always), or all but those."""
    q = request.query_params
    include = set(filter(None, q.get("include_fields", "").split(",")))
    exclude = set(filter(None, q.get("exclude_fields", "").split(",")))
    if not include and not exclude:
        return data
    if isinstance(data, list):
        return [chosen_fields(request, item) for item in data]
    if not isinstance(data, dict):
        return data
    return {
        k: v
        for k, v in data.items()
        if (k == "id" or not include or k in include) and (k == "id" or k not in exclude)
    }


def _injected_fault(state: SandboxState, path: str) -> Fault | None:
    for fault in state.faults:
        if fault.count > 0 and path.startswith(fault.path_prefix):
            fault.count -= 1
            return fault
    return None


def json_response(body: Any, status: int = 200) -> Response:
    """JSON, or an empty 204 for None (v2 lists with nothing in them)."""
    if body is None:
        return Response(status_code=204)
    return JSONResponse(body, status_code=status)


def error_response(status: int, title: str, v2: bool, errors: dict[str, str] | None = None) -> JSONResponse:
    """v2 errors are arrays of {status, message}; v3 errors are {status, title, type, errors}."""
    if v2:
        body: Any = [
            {"status": status, "message": title, **({"details": {"errors": errors}} if errors else {})}
        ]
        if errors and len(errors) == 1:
            body[0]["details"] = {"invalid_reason": next(iter(errors))}
        return JSONResponse(body, status_code=status)
    return JSONResponse(
        {"status": status, "title": title, "type": ERROR_TYPE, "errors": errors or {}}, status_code=status
    )


async def json_body(request: Request) -> Any:
    """The request's JSON body, or a 400 the way the platform answers malformed input."""
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        raise ApiFailure(400, "Input is invalid.") from None


def page_params(request: Request) -> tuple[int, int]:
    """(page, limit) from the query; limit is capped at 250."""
    try:
        page = max(1, int(request.query_params.get("page", 1)))
        limit = min(MAX_LIMIT, max(1, int(request.query_params.get("limit", DEFAULT_LIMIT))))
    except ValueError:
        raise ApiFailure(422, "Invalid pagination", {"page": "page and limit must be integers"}) from None
    return page, limit


def v3_list(request: Request, items: list[Any]) -> dict[str, Any]:
    """A v3 list page with meta.pagination."""
    page, limit = page_params(request)
    total_pages = max(1, math.ceil(len(items) / limit))
    chunk = items[(page - 1) * limit : page * limit]
    links = {"current": f"?page={page}&limit={limit}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={limit}"
    if page < total_pages:
        links["next"] = f"?page={page + 1}&limit={limit}"
    pagination = {
        "total": len(items),
        "count": len(chunk),
        "per_page": limit,
        "current_page": page,
        "total_pages": total_pages,
        "links": links,
    }
    return {"data": chunk, "meta": {"pagination": pagination}}


def api_base(request: Request, state: SandboxState) -> str:
    """This store's API root as the client reached it (resource links point at the store that answered)."""
    return f"{request.url.scheme}://{request.url.netloc}/stores/{state.store.store_hash}"


def v2_list(request: Request, items: list[Any]) -> list[Any] | None:
    """A v2 list page: a flat array, or None (204) when the page is empty."""
    page, limit = page_params(request)
    chunk = items[(page - 1) * limit : page * limit]
    return chunk or None


def v3_one(record: Any) -> dict[str, Any]:
    """A v3 single-record envelope."""
    return {"data": record, "meta": {}}


def int_list(request: Request, name: str) -> list[int] | None:
    """A comma-separated integer filter such as `id:in=1,2,3`, or None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise ApiFailure(422, "Invalid filter", {name: "must be comma-separated integers"}) from None


def includes(request: Request) -> set[str]:
    """The names listed in `?include=a,b` (sub-resources to embed)."""
    return set(filter(None, request.query_params.get("include", "").split(",")))


def path_int(request: Request, name: str) -> int:
    """An integer path parameter, or 404."""
    try:
        return int(request.path_params[name])
    except (KeyError, ValueError):
        raise ApiFailure(404, "The requested resource was not found.") from None


def found(record: Record | None) -> Record:
    """The record, or 404."""
    if record is None:
        raise ApiFailure(404, "The requested resource was not found.")
    return record


def parse_date(value: str) -> datetime:
    """An RFC 2822 or ISO 8601 date, as the v2 date filters accept."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise ApiFailure(400, f"The date '{value}' is invalid.") from None


def id_in(ids: Collection[int] | None, field: str = "id") -> Callable[[Record], bool] | None:
    """The condition "record[field] is one of `ids`", or None (no condition) when no ids were asked for."""
    return None if ids is None else (lambda record: record[field] in ids)


def keep(items: Iterable[Record], **conditions: Callable[[Record], bool] | None) -> list[Record]:
    """Items passing every given condition (None conditions are skipped)."""
    active = [condition for condition in conditions.values() if condition is not None]
    return [item for item in items if all(condition(item) for condition in active)]


def unrouted(state: SandboxState) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The answer to a path or method the store does not serve: the generation's JSON error, with the
    rate-limit headers every answer carries (the call counts against the quota, as on the platform)."""

    async def answer(request: Request, error: Exception) -> Response:
        status = getattr(error, "status_code", 404)
        title = "The requested resource was not found." if status == 404 else "Method not allowed"
        allowed, limit_headers = state.quota.try_acquire()
        response = error_response(status if allowed else 429, title, "/v2/" in request.url.path)
        response.headers.update(limit_headers)
        return response

    return answer
