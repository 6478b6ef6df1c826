"""BigCommerce REST API client used by workers and scripts (the receiver never calls the API)."""

from service.bigcommerce.client import ApiClient
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
from service.bigcommerce.ratelimit import RateLimitState
from service.bigcommerce.resources import StoreApi

__all__ = [
    "ApiClient",
    "ApiError",
    "MissingScope",
    "NotFound",
    "RateLimitState",
    "RateLimited",
    "ServerError",
    "StoreApi",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "ValidationFailed",
]
