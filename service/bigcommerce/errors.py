"""One exception hierarchy for the BigCommerce REST API, grouped by kind; messages say what to do."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """Any failure talking to the BigCommerce API."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransportError(ApiError):
    """The API could not be reached (connection, DNS or timeout) after all retries."""


class Unauthorized(ApiError):
    """401: the access token is invalid, revoked or for another store."""


class MissingScope(ApiError):
    """403: the token lacks the OAuth scope this call needs; `needed` names it."""

    def __init__(self, message: str, needed: str) -> None:
        super().__init__(message, 403)
        self.needed = needed


class NotFound(ApiError):
    """404: the resource does not exist (or no longer does)."""


class ValidationFailed(ApiError):
    """422 (or 400): the API refused the request body; `errors` maps fields to messages."""

    def __init__(self, message: str, status_code: int, errors: Mapping[str, str]) -> None:
        super().__init__(message, status_code)
        self.errors = dict(errors)


class RateLimited(ApiError):
    """429 still returned after the allowed waits; `retry_after_ms` is how long the API asked us to wait."""

    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message, 429)
        self.retry_after_ms = retry_after_ms


class ServerError(ApiError):
    """5xx after all retries."""


class UnexpectedResponse(ApiError):
    """Any other status, or a body that is not the JSON the endpoint documents."""


class AccessDenied(Exception):
    """A handler called outside the access it declared; raised before any request is sent.

    Not an ApiError: the API was never asked, and a handler catching ApiError must not hide its own bug.
    """

    def __init__(self, handler: str, area: str, level: str, declared: str) -> None:
        super().__init__(f"handler {handler} may not {level} {area} (declared: {declared})")
        self.handler = handler
        self.area = area
        self.level = level
        self.declared = declared
