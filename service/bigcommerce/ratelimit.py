"""The X-Rate-Limit-* headers every API response carries, and how long a 429 asks us to wait."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# A 429 without rate-limit headers means platform load (BigCommerce docs): wait a little and retry.
DEFAULT_WAIT_MS = 1000


@dataclass(frozen=True)
class RateLimitState:
    """The store's shared quota as of one response; None where the header was absent or malformed."""

    window_ms: int | None
    reset_ms: int | None
    quota: int | None
    left: int | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitState:
        """Parse the four headers (names are case-insensitive in httpx.Headers)."""
        return cls(
            window_ms=_int(headers.get("x-rate-limit-time-window-ms")),
            reset_ms=_int(headers.get("x-rate-limit-time-reset-ms")),
            quota=_int(headers.get("x-rate-limit-requests-quota")),
            left=_int(headers.get("x-rate-limit-requests-left")),
        )


def is_quota_429(headers: Mapping[str, str]) -> bool:
    """Whether a 429 means the store's request quota is spent. One that says requests are left refuses
    something else: a bulk job already running (a second price-list record upsert), which a short wait
    resolves and which must not pause every worker of the store."""
    left = _int(headers.get("x-rate-limit-requests-left"))
    return left is None or left == 0


def wait_ms_for_429(headers: Mapping[str, str]) -> int:
    """Honour the longer of X-Retry-After (seconds) and X-Rate-Limit-Time-Reset-Ms, as the docs say; a 429
    that is not about the quota waits X-Retry-After or a second."""
    retry_after_s = _int(headers.get("x-retry-after"))
    if not is_quota_429(headers):
        return retry_after_s * 1000 if retry_after_s else DEFAULT_WAIT_MS
    reset_ms = _int(headers.get("x-rate-limit-time-reset-ms"))
    candidates = [
        value for value in (reset_ms, retry_after_s * 1000 if retry_after_s is not None else None) if value
    ]
    return max(candidates) if candidates else DEFAULT_WAIT_MS


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(0, int(float(value.strip())))
    except ValueError:
        return None
