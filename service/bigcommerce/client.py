"""HTTP transport to the BigCommerce REST API: auth, retries, rate-limit waits, error mapping, pagination."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import httpx

from service.bigcommerce.errors import (
    ApiError,
    MissingScope,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    ValidationFailed,
)
from service.bigcommerce.ratelimit import RateLimitState, wait_ms_for_429
from service.bigcommerce.scopes import describe_missing_scope

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_RATE_LIMIT_WAITS = 10
DEFAULT_MIN_BACKOFF_SECONDS = 0.5
DEFAULT_MAX_BACKOFF_SECONDS = 8.0
MAX_PAGE_SIZE = 250
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})

Params = Mapping[str, str | int | bool]
DEFAULT_MAX_BUDGET_WAIT_SECONDS = 120.0


class Budget(Protocol):
    """A shared request budget: how long to wait before the next call, and what each answer said."""

    def acquire(self) -> float:
        """Seconds to wait (0.0: go now, the request is counted)."""

    def observe(self, status_code: int, headers: Mapping[str, str]) -> None:
        """Learn from a response (its rate-limit headers, or a 429)."""


class ApiClient:
    """A connection-pooled client for one store.

    Parameters:
      api_url: `https://api.bigcommerce.com`, or the sandbox store's URL.
      store_hash: the store's hash; paths are relative to /stores/{store_hash}.
      access_token: sent as X-Auth-Token.
      transport: an httpx transport (tests pass httpx.MockTransport).
      max_attempts: tries for 5xx and network errors (idempotent methods; POST only when nothing was sent).
      max_rate_limit_waits: 429s waited out before RateLimited is raised; they do not count as failures.
      sleep: how to wait (tests pass a recorder).
    """

    def __init__(
        self,
        api_url: str,
        store_hash: str,
        access_token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_rate_limit_waits: int = DEFAULT_MAX_RATE_LIMIT_WAITS,
        sleep: Callable[[float], None] = time.sleep,
        budget: Budget | None = None,
        max_budget_wait_seconds: float = DEFAULT_MAX_BUDGET_WAIT_SECONDS,
    ) -> None:
        self.host = httpx.URL(api_url).host
        self.max_attempts = max_attempts
        self.max_rate_limit_waits = max_rate_limit_waits
        self.last_rate_limit: RateLimitState | None = None
        self._sleep = sleep
        self.budget = budget
        self.max_budget_wait_seconds = max_budget_wait_seconds
        self._http = httpx.Client(
            base_url=f"{api_url.rstrip('/')}/stores/{store_hash}",
            headers={"X-Auth-Token": access_token, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0)),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            transport=transport,
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, *, params: Params | None = None, json: Any = None
    ) -> httpx.Response:
        """Send one call, waiting out 429s and retrying transient failures; raise ApiError subclasses."""
        method = method.upper()
        failures = 0
        rate_limit_waits = 0
        while True:
            self._wait_for_budget(method, path)
            try:
                response = self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as error:
                failures += 1
                if failures >= self.max_attempts or not _may_resend(method, error):
                    raise TransportError(
                        f"could not reach {self.host} for {method} {path}: {type(error).__name__}"
                    ) from error
                self._sleep(backoff_seconds(failures))
                continue
            self.last_rate_limit = RateLimitState.from_headers(response.headers)
            if self.budget is not None:
                self.budget.observe(response.status_code, response.headers)
            if response.status_code == 429:
                rate_limit_waits += 1
                wait_ms = wait_ms_for_429(response.headers)
                if rate_limit_waits > self.max_rate_limit_waits:
                    raise RateLimited(
                        f"rate limited on {method} {path} after {rate_limit_waits - 1} waits", wait_ms
                    )
                self._sleep(wait_ms / 1000)
                continue
            if response.status_code in RETRYABLE_STATUS and method in IDEMPOTENT_METHODS:
                failures += 1
                if failures < self.max_attempts:
                    self._sleep(backoff_seconds(failures))
                    continue
            return raise_for_status(method, path, response)

    def _wait_for_budget(self, method: str, path: str) -> None:
        if self.budget is None:
            return
        waited = 0.0
        while (wait := self.budget.acquire()) > 0:
            if waited + wait > self.max_budget_wait_seconds:
                raise RateLimited(f"API budget exhausted for {method} {path}", int(wait * 1000))
            self._sleep(wait)
            waited += wait

    def get_json(self, path: str, params: Params | None = None) -> Any:
        """GET and decode JSON; None for 204 No Content."""
        return decode_json(self.request("GET", path, params=params), "GET", path)

    def send_json(self, method: str, path: str, body: Any) -> Any:
        """POST/PUT/DELETE with a JSON body and decode the answer; None for 204."""
        return decode_json(self.request(method, path, json=body), method, path)

    def v3_items(self, path: str, params: Params | None = None, limit: int = MAX_PAGE_SIZE) -> Iterator[Any]:
        """Every item of a v3 list, following meta.pagination page by page."""
        page = 1
        while True:
            body = self.get_json(path, {**(params or {}), "page": page, "limit": limit})
            if body is None:
                return
            yield from body.get("data", [])
            pagination = body.get("meta", {}).get("pagination", {})
            if page >= int(pagination.get("total_pages", page)):
                return
            page += 1

    def v2_items(self, path: str, params: Params | None = None, limit: int = MAX_PAGE_SIZE) -> Iterator[Any]:
        """Every item of a v2 list: pages until a short page or 204 No Content."""
        page = 1
        while True:
            items = self.get_json(path, {**(params or {}), "page": page, "limit": limit})
            if not items:
                return
            yield from items
            if len(items) < limit:
                return
            page += 1


def backoff_seconds(failures: int) -> float:
    """Exponential backoff with jitter: about 0.5 s, 1 s, 2 s, … capped at 8 s, each scaled by 0.5-1.5."""
    base = min(DEFAULT_MAX_BACKOFF_SECONDS, DEFAULT_MIN_BACKOFF_SECONDS * 2.0 ** (failures - 1))
    return base * (0.5 + random.random())  # noqa: S311 (jitter, not cryptography)


def _may_resend(method: str, error: httpx.TransportError) -> bool:
    # A POST is only resent when the request never left (connection refused, DNS, connect timeout).
    return method in IDEMPOTENT_METHODS or isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)


def raise_for_status(method: str, path: str, response: httpx.Response) -> httpx.Response:
    """Return a 2xx response; map every other status to its ApiError subclass."""
    status = response.status_code
    if 200 <= status < 300:
        return response
    if status == 401:
        raise Unauthorized(
            f"token invalid: BigCommerce answered 401 to {method} {path}; "
            "check BIGCOMMERCE_ACCESS_TOKEN and BIGCOMMERCE_STORE_HASH",
            status,
        )
    if status == 403:
        needed, message = describe_missing_scope(method, path)
        raise MissingScope(message, needed)
    if status == 404:
        raise NotFound(f"not found: {method} {path}", status)
    if status in (400, 409, 422):
        errors = field_errors(response)
        detail = "; ".join(f"{field}: {text}" for field, text in errors.items()) or error_title(response)
        raise ValidationFailed(f"{method} {path} refused ({status}): {detail}", status, errors)
    if status in RETRYABLE_STATUS:
        raise ServerError(f"BigCommerce answered {status} to {method} {path} after retries", status)
    raise UnexpectedResponse(
        f"BigCommerce answered {status} to {method} {path}: {error_title(response)}", status
    )


def field_errors(response: httpx.Response) -> dict[str, str]:
    """Field errors from a v3 `{errors: {field: msg}}` body or a v2 `[{status, message, details}]` array."""
    body = _body_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        return {str(key): str(value) for key, value in body["errors"].items()}
    if isinstance(body, list):
        found: dict[str, str] = {}
        for index, item in enumerate(body):
            if isinstance(item, dict):
                details = item.get("details")
                key = str(details.get("invalid_reason", index)) if isinstance(details, dict) else str(index)
                found[key] = str(item.get("message", item))
        return found
    return {}


def error_title(response: httpx.Response) -> str:
    """The short human text of an error body (v3 `title`, v2 `message`), else the reason phrase."""
    body = _body_or_none(response)
    if isinstance(body, dict) and body.get("title"):
        return str(body["title"])
    if isinstance(body, list) and body and isinstance(body[0], dict) and body[0].get("message"):
        return str(body[0]["message"])
    return response.reason_phrase


def decode_json(response: httpx.Response, method: str, path: str) -> Any:
    """The JSON body, None for an empty 204; UnexpectedResponse when it is not JSON."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise UnexpectedResponse(f"{method} {path} answered non-JSON", response.status_code) from None


def _body_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


__all__ = ["ApiClient", "ApiError", "backoff_seconds"]
