"""When each store wants a monitor pass besides the periodic ones: a deliveryException event asks for one
now, a blocked domain for one when its block ends (read by the monitor loop, workers/monitor_loop.py)."""

from __future__ import annotations

import time
from typing import Any

import redis

DUE_KEY = "bcwebhooks:monitor:due"  # zset: store hash -> when it wants a pass (ms)


def request_pass(client: redis.Redis, store_hash: str, at: float | None = None) -> None:
    """Ask for a monitor pass of one store at `at` (Unix seconds; default now); an earlier request stands."""
    moment = time.time() if at is None else at
    client.zadd(DUE_KEY, {store_hash: int(moment * 1000)}, lt=True)


def due_stores(client: redis.Redis, now: float) -> list[str]:
    """The stores whose requested pass is due, taken off the schedule."""
    found: Any = client.zrangebyscore(DUE_KEY, "-inf", int(now * 1000))
    stores = [store.decode() for store in found]
    if stores:
        client.zrem(DUE_KEY, *stores)
    return stores
