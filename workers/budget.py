"""One API budget per store, shared by every worker process and thread through Redis.

BigCommerce's quota (e.g. 150 requests per 30 s) is shared with every other app on the store. The budget
lets our workers use at most `1 - reserve_share` of it over any rolling window, watches what the API says
is left (`X-Rate-Limit-Requests-Left`, `-Time-Reset-Ms`) so that other apps' usage counts too, and when a
429 arrives anyway it pauses every worker until the reset time.

Dramatiq's rate limiters were not used: they only grant or refuse (no "wait this long"), their window is
1-second granular with up to 2x bursts, and they cannot take the server's own count into account
(DRAMATIQ.md §4). One Lua script does the whole decision atomically instead.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from service.bigcommerce.ratelimit import RateLimitState, is_quota_429, wait_ms_for_429
from service.events import BUDGET_KEY_PREFIX

DEFAULT_RESERVE_SHARE = 0.2
DEFAULT_QUOTA = 150
DEFAULT_WINDOW_MS = 30_000

# KEYS: sent (zset of our request times), state (hash)
# ARGV: now_ms, default quota, default window_ms, reserve share, member
# Returns 0 when a request may go now (and counts it), else milliseconds to wait.
ACQUIRE = """
local now = tonumber(ARGV[1])
local quota = tonumber(redis.call("hget", KEYS[2], "quota") or ARGV[2])
local window = tonumber(redis.call("hget", KEYS[2], "window_ms") or ARGV[3])
local reserve = tonumber(ARGV[4])
local paused_until = tonumber(redis.call("hget", KEYS[2], "paused_until") or "0")
if paused_until > now then
    return paused_until - now
end
redis.call("zremrangebyscore", KEYS[1], "-inf", now - window)
local ours = math.floor(quota * (1 - reserve))
if redis.call("zcard", KEYS[1]) >= ours then
    local oldest = redis.call("zrange", KEYS[1], 0, 0, "withscores")
    return math.max(1, tonumber(oldest[2]) + window - now)
end
local server_left = tonumber(redis.call("hget", KEYS[2], "left") or "-1")
local server_reset = tonumber(redis.call("hget", KEYS[2], "reset_at") or "0")
if server_left >= 0 and server_reset > now and server_left <= math.ceil(quota * reserve) then
    return server_reset - now
end
redis.call("zadd", KEYS[1], now, ARGV[5])
redis.call("pexpire", KEYS[1], window * 2)
if server_left > 0 and server_reset > now then
    redis.call("hincrby", KEYS[2], "left", -1)
end
return 0
"""


@dataclass
class ApiBudget:
    """The shared budget of one store.

    Parameters:
      client: Redis (the broker's server, shared by every worker).
      store_hash: whose quota this is.
      reserve_share: the part of the quota left for other apps (default 20 %).
    """

    client: redis.Redis
    store_hash: str
    reserve_share: float = DEFAULT_RESERVE_SHARE

    def __post_init__(self) -> None:
        self._acquire: Any = self.client.register_script(ACQUIRE)
        prefix = f"{BUDGET_KEY_PREFIX}{self.store_hash}"
        self._keys = [f"{prefix}:sent", f"{prefix}:state"]

    def acquire(self) -> float:
        """Count one request when the budget allows it now (returns 0.0); else the seconds to wait."""
        now = _now_ms()
        args = [now, DEFAULT_QUOTA, DEFAULT_WINDOW_MS, self.reserve_share, f"{now}-{uuid.uuid4().hex[:8]}"]
        return int(self._acquire(keys=self._keys, args=args)) / 1000

    def observe(self, status_code: int, headers: Mapping[str, str]) -> None:
        """Learn from a response: the server's remaining quota, or a 429 that pauses every worker."""
        now = _now_ms()
        state = self._keys[1]
        if status_code == 429 and is_quota_429(headers):
            until = now + wait_ms_for_429(headers)
            pipeline = self.client.pipeline()
            pipeline.hset(state, "paused_until", until)
            pipeline.hset(state, "left", 0)
            pipeline.hset(state, "reset_at", until)
            pipeline.execute()
            return
        seen = RateLimitState.from_headers(headers)
        if seen.left is None or seen.reset_ms is None:
            return
        fields: dict[str, int] = {"left": seen.left, "reset_at": now + seen.reset_ms}
        if seen.quota:
            fields["quota"] = seen.quota
        if seen.window_ms:
            fields["window_ms"] = seen.window_ms
        self.client.hset(state, mapping=fields)  # type: ignore[arg-type]

    def our_limit(self, quota: int = DEFAULT_QUOTA) -> int:
        """Requests per window our workers may make."""
        return math.floor(quota * (1 - self.reserve_share))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
