"""What Redis says about the pipeline right now: queue depths, unfinished events, dead letters, each store's
API budget and hook health. Read by the workers' /metrics (workers/metrics.py) and the dashboard, so both
show the same numbers; nothing here writes.

Delivered events are tallied per minute by the workers (`add_delivered`: a hash per minute, counts per
family and per latency bucket), so that the dashboard reads 30 small hashes instead of the stream's records.

Hook health is a record per store in HOOK_HEALTH_KEY, written with `record_hook_health` by the hook monitor
(workers/monitor.py) on each pass; until its first pass the gauge and the dashboard say nothing was checked.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from service.deadletters import count_dead_letters
from service.events import (
    BACKFILL_QUEUE_NAME,
    BUDGET_KEY_PREFIX,
    DRAMATIQ_NAMESPACE,
    FORWARD_QUEUE_NAME,
    INSTALLED_STORES_KEY,
    LEDGER_KEY,
    QUEUE_NAMES,
)

HOOK_HEALTH_KEY = "bcwebhooks:hooks:health"  # hash: store hash -> JSON {active, inactive, checked_at_ms, ...}
BUDGET_STATE_SUFFIX = ":state"
MAX_STORES = 1000  # the most stores one read lists (a bound on a label's values)
DELIVERED_PREFIX = "bcwebhooks:stats:delivered:"  # + epoch minute: hash "family:<f>" | "latency:<slot>" -> n
STATS_TTL_SECONDS = 2 * 3600
MINUTE_MS = 60_000
# Upper bounds (ms) of the latency slots; the slot after the last is everything longer.
LATENCY_BOUNDS_MS = (
    5,
    10,
    25,
    50,
    75,
    100,
    150,
    250,
    400,
    600,
    1000,
    2500,
    5000,
    10_000,
    30_000,
    60_000,
    300_000,
)


@dataclass(frozen=True)
class ApiBudgetState:
    """One store's API quota as the API last reported it (workers/budget.py keeps it)."""

    store: str
    left: int | None
    quota: int | None
    reset_at_ms: int | None
    paused_until_ms: int | None

    def remaining(self, now_ms: int) -> int | None:
        """Requests left in the current window: what the API said, or the whole quota once it has reset."""
        if self.reset_at_ms is not None and self.reset_at_ms <= now_ms and self.quota is not None:
            return self.quota
        return self.left


@dataclass(frozen=True)
class HookHealth:
    """How many of a store's hooks were active at the last check, and when that was."""

    store: str
    active: int
    inactive: int
    checked_at_ms: int
    source: str


@dataclass(frozen=True)
class MinuteTally:
    """What the workers delivered in one minute: events per family and per latency slot."""

    minute_ms: int
    families: dict[str, int]
    latency_slots: dict[int, int]


def latency_slot(latency_ms: int) -> int:
    """The latency slot of a delivery (an index into LATENCY_BOUNDS_MS, or its length for longer ones)."""
    return bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)


def add_delivered(client: redis.Redis, counts: Mapping[tuple[int, str], int]) -> None:
    """Add tallies, keyed by (epoch minute, field): `family:<family>` or `latency:<slot>`."""
    pipeline = client.pipeline(transaction=False)
    for minute in {minute for minute, _ in counts}:
        pipeline.expire(f"{DELIVERED_PREFIX}{minute}", STATS_TTL_SECONDS)
    for (minute, field), n in counts.items():
        pipeline.hincrby(f"{DELIVERED_PREFIX}{minute}", field, n)
    pipeline.execute()


def delivered(client: redis.Redis, now: int, minutes: int) -> list[MinuteTally]:
    """The tallies of the last `minutes` minutes (the current one last)."""
    last = now // MINUTE_MS
    wanted = list(range(last - minutes + 1, last + 1))
    pipeline = client.pipeline(transaction=False)
    for minute in wanted:
        pipeline.hgetall(f"{DELIVERED_PREFIX}{minute}")
    tallies = []
    for minute, fields in zip(wanted, pipeline.execute(), strict=True):
        families: dict[str, int] = {}
        slots: dict[int, int] = {}
        for raw_field, raw_count in fields.items():
            kind, _, name = raw_field.decode().partition(":")
            count = _int_or_none(raw_count) or 0
            if kind == "family":
                families[name] = count
            elif kind == "latency" and name.isdigit():
                slots[int(name)] = count
        tallies.append(MinuteTally(minute * MINUTE_MS, families, slots))
    return tallies


def latency_percentile(slots: Mapping[int, int], share: float) -> int | None:
    """The latency (ms) under which `share` of the deliveries fell, interpolated within its slot as
    Prometheus's histogram_quantile does; the last bound when it falls in the open-ended slot."""
    total = sum(slots.values())
    if total == 0:
        return None
    rank = share * total
    seen = 0
    for slot in range(len(LATENCY_BOUNDS_MS) + 1):
        count = slots.get(slot, 0)
        if count and seen + count >= rank:
            if slot == len(LATENCY_BOUNDS_MS):
                return LATENCY_BOUNDS_MS[-1]
            lower = LATENCY_BOUNDS_MS[slot - 1] if slot > 0 else 0
            return round(lower + (LATENCY_BOUNDS_MS[slot] - lower) * (rank - seen) / count)
        seen += count
    return LATENCY_BOUNDS_MS[-1]


def queue_depths(client: redis.Redis) -> dict[str, int]:
    """Messages waiting per queue (the events', the catalog's, the HTTP outputs' forwards, the backfills')
    and per delay queue (`<queue>.DQ`)."""
    names = (*QUEUE_NAMES, FORWARD_QUEUE_NAME, BACKFILL_QUEUE_NAME)
    pipeline = client.pipeline(transaction=False)
    for name in names:
        pipeline.llen(f"{DRAMATIQ_NAMESPACE}:{name}")
        pipeline.zcard(f"{DRAMATIQ_NAMESPACE}:{name}.DQ")
    answers = iter(pipeline.execute())
    depths: dict[str, int] = {}
    for name in names:
        depths[name] = int(next(answers))
        depths[f"{name}.DQ"] = int(next(answers))
    return depths


def pending_events(client: redis.Redis) -> int:
    """Events acknowledged and not yet delivered or dead-lettered (the delivery ledger's size)."""
    return int(client.zcard(LEDGER_KEY))


def dead_letters(client: redis.Redis) -> int:
    """Dead letters of every kind."""
    return count_dead_letters(client)


def api_budgets(client: redis.Redis, stores: list[str] | None) -> list[ApiBudgetState]:
    """The budget state of each store the workers serve (read by key: no scan of the keyspace); `stores`
    None: the stores that have the app installed (app mode)."""
    if stores is None:
        members: Any = client.smembers(INSTALLED_STORES_KEY)
        stores = sorted(member.decode() for member in members)
    stores = stores[:MAX_STORES]
    if not stores:
        return []
    pipeline = client.pipeline(transaction=False)
    for store in stores:
        pipeline.hgetall(f"{BUDGET_KEY_PREFIX}{store}{BUDGET_STATE_SUFFIX}")
    budgets = []
    for store, fields in zip(stores, pipeline.execute(), strict=True):
        if not fields:
            continue  # no API call made for this store yet
        values = {name.decode(): _int_or_none(value) for name, value in fields.items()}
        budgets.append(
            ApiBudgetState(
                store=store,
                left=values.get("left"),
                quota=values.get("quota"),
                reset_at_ms=values.get("reset_at"),
                paused_until_ms=values.get("paused_until"),
            )
        )
    return budgets


def hook_health(client: redis.Redis) -> list[HookHealth]:
    """The last hook check of every store that has one."""
    records: Any = client.hgetall(HOOK_HEALTH_KEY)
    health = []
    for store, raw in sorted(records.items())[:MAX_STORES]:
        try:
            record = json.loads(raw)
            health.append(
                HookHealth(
                    store=store.decode(),
                    active=int(record["active"]),
                    inactive=int(record["inactive"]),
                    checked_at_ms=int(record["checked_at_ms"]),
                    source=str(record.get("source", "")),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a damaged record is left out, never fails the read
    return health


def record_hook_health(client: redis.Redis, store: str, active: int, inactive: int, source: str) -> None:
    """Write a store's hook check (what `hook_health` reads)."""
    record = {"active": active, "inactive": inactive, "checked_at_ms": now_ms(), "source": source}
    client.hset(HOOK_HEALTH_KEY, store, json.dumps(record))


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return time.time_ns() // 1_000_000


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
