"""What the dashboard shows, read from Redis in one go: delivered events per minute by family, end-to-end
latency, queues, API budgets, hook health, dead letters and outputs.

Events and latency come from the workers' per-minute tallies (service/pipeline_state.py), not from the
processed stream's records, so a poll costs a few small reads however busy the store is.
"""

from __future__ import annotations

from typing import Any

import redis

from service.deadletters import list_dead_letters
from service.incidents import list_incidents
from service.pipeline_state import (
    ApiBudgetState,
    MinuteTally,
    api_budgets,
    delivered,
    hook_health,
    latency_percentile,
    now_ms,
    pending_events,
    queue_depths,
)

CHART_MINUTES = 30
LATENCY_MINUTES = 5  # the percentiles are over the deliveries of the last five minutes
MAX_DEAD_LETTERS_SHOWN = 100
RECENT_INCIDENTS_SHOWN = 10  # besides every open one


def read_state(client: redis.Redis, stream: str, stores: list[str] | None) -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-friendly values; `stores` None: the installed stores (app
    mode)."""
    now = now_ms()
    tallies = delivered(client, now, CHART_MINUTES)
    letters = sorted(list_dead_letters(client), key=lambda letter: -letter.dead_at_ms)
    return {
        "now_ms": now,
        "chart": per_minute(tallies),
        "latency": latency(tallies[-LATENCY_MINUTES:]),
        "queues": queue_depths(client),
        "pending": pending_events(client),
        "budgets": [_budget(budget, now) for budget in api_budgets(client, stores)],
        "hooks": [vars(health) for health in hook_health(client)],
        "incidents": incidents(client),
        "dead_letter_count": len(letters),
        "dead_letters": [letter.describe() for letter in letters[:MAX_DEAD_LETTERS_SHOWN]],
        "outputs": [{"name": "stream", "target": stream, "length": int(client.xlen(stream))}],
    }


def incidents(client: redis.Redis) -> list[dict[str, Any]]:
    """Every open incident, then the most recent resolved ones (newest first within each)."""
    found = list_incidents(client, limit=200)
    shown = [i for i in found if i.open] + [i for i in found if not i.open][:RECENT_INCIDENTS_SHOWN]
    return [{**i.public(), "since_ms": int(i.since * 1000)} for i in shown]


def per_minute(tallies: list[MinuteTally]) -> dict[str, Any]:
    """Delivered events per minute and family (oldest minute first)."""
    families = sorted({family for tally in tallies for family in tally.families})
    return {
        "minutes": [tally.minute_ms for tally in tallies],
        "series": {family: [tally.families.get(family, 0) for tally in tallies] for family in families},
    }


def latency(tallies: list[MinuteTally]) -> dict[str, Any]:
    """p50 and p99 of accepted → delivered over these minutes, in milliseconds (estimated from slots)."""
    slots: dict[int, int] = {}
    for tally in tallies:
        for slot, count in tally.latency_slots.items():
            slots[slot] = slots.get(slot, 0) + count
    return {
        "count": sum(slots.values()),
        "minutes": len(tallies),
        "p50_ms": latency_percentile(slots, 0.50),
        "p99_ms": latency_percentile(slots, 0.99),
    }


def _budget(budget: ApiBudgetState, now: int) -> dict[str, Any]:
    paused = budget.paused_until_ms is not None and budget.paused_until_ms > now
    reset_in = None if budget.reset_at_ms is None else max(0, budget.reset_at_ms - now) / 1000
    return {
        "store": budget.store,
        "remaining": budget.remaining(now),
        "quota": budget.quota,
        "reset_in_s": reset_in,
        "paused": paused,
    }
