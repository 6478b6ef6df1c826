"""BigCommerce REST API client used by workers and scripts (the receiver never calls the API)."""

from service.bigcommerce.access import AREAS, AccessDeclarationError, AccessPolicy, parse_access
from service.bigcommerce.client import ApiClient
from service.bigcommerce.errors import (
    AccessDenied,
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
from service.bigcommerce.resources import StoreApi, operations

__all__ = [
    "AREAS",
    "AccessDeclarationError",
    "AccessDenied",
    "AccessPolicy",
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
    "operations",
    "parse_access",
]
