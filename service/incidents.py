"""Incidents: what went wrong on BigCommerce's side of the hooks (or at our receiver), since when, and what
was done about it. Written by the hook monitor (workers/monitor.py), the workers' deliveryException
reactions (workers/hook_exceptions.py) and the receiver's early warning (service/early_warning.py); read by
`bcwebhooks incidents`, the workers' /metrics and the dashboard.

Each incident is a JSON record in INCIDENTS_KEY, indexed by its start in INCIDENTS_INDEX_KEY. At most one
incident is open per store, kind and subject (a hook id or a destination domain): opening one that is
already open returns the open one (with its `last_seen` and detail updated), so repeated reports of the
same trouble (a pass every few minutes, BigCommerce's 90001 every ten) make one incident. Opening and
resolving are each one Lua script, so the receiver (asyncio Redis) and the workers (sync Redis) share them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis

INCIDENTS_KEY = "bcwebhooks:incidents"  # hash: incident id -> Incident JSON
INCIDENTS_INDEX_KEY = "bcwebhooks:incidents:index"  # zset: incident id -> since (ms)
INCIDENTS_OPEN_KEY = "bcwebhooks:incidents:open"  # hash: store|kind|subject -> id of the open incident
MAX_INCIDENTS = 5_000  # the oldest resolved ones beyond this are dropped
MAX_LISTED = 1_000

# Kinds, each a fixed word in our code (a metric label's values).
HOOK_DEACTIVATED = "hook_deactivated"  # a declared hook is not active (BigCommerce switched it off)
HOOK_MISSING = "hook_missing"  # a declared hook is not on the store (deleted; `hooks apply` recreates it)
DOMAIN_BLOCKED = "domain_blocked"  # BigCommerce blocklisted our receiver's domain (90003, admin view)
DELIVERIES_FAILING = "deliveries_failing"  # 90001: deliveries failing, BigCommerce retrying
HOOK_DISABLING = "hook_disabling"  # 90002: every attempt exhausted, the hook is about to be disabled
BLOCKLIST_RISK = "blocklist_risk"  # the receiver's own success ratio is heading for the blocklist
RECEIVER_DOWN = "receiver_down"  # the monitor's readiness probe of the receiver failed
KINDS = (
    HOOK_DEACTIVATED,
    HOOK_MISSING,
    DOMAIN_BLOCKED,
    DELIVERIES_FAILING,
    HOOK_DISABLING,
    BLOCKLIST_RISK,
    RECEIVER_DOWN,
)
# Incidents whose start is evidence of when deliveries began to fail (the earliest start of a gap).
EVIDENCE_KINDS = (DELIVERIES_FAILING, HOOK_DISABLING, DOMAIN_BLOCKED, BLOCKLIST_RISK, RECEIVER_DOWN)

# KEYS: incidents, index, open. ARGV: open key, record JSON, last_seen, detail.
# Returns {1, record} when created, {0, record} when one was open already (its last_seen/detail updated).
OPEN = """
local id = redis.call("hget", KEYS[3], ARGV[1])
if id then
    local raw = redis.call("hget", KEYS[1], id)
    if raw then
        local record = cjson.decode(raw)
        record["last_seen"] = tonumber(ARGV[3])
        if ARGV[4] ~= "" then record["detail"] = ARGV[4] end
        raw = cjson.encode(record)
        redis.call("hset", KEYS[1], id, raw)
        return {0, raw}
    end
end
local record = cjson.decode(ARGV[2])
redis.call("hset", KEYS[1], record["id"], ARGV[2])
redis.call("zadd", KEYS[2], math.floor(record["since"] * 1000), record["id"])
redis.call("hset", KEYS[3], ARGV[1], record["id"])
return {1, ARGV[2]}
"""
# KEYS: incidents, open. ARGV: id, until, action (may be empty). Returns the record, or false.
RESOLVE = """
local raw = redis.call("hget", KEYS[1], ARGV[1])
if not raw then return false end
local record = cjson.decode(raw)
if record["until"] == cjson.null or record["until"] == nil then
    record["until"] = tonumber(ARGV[2])
    if ARGV[3] ~= "" then table.insert(record["actions"], ARGV[3]) end
    raw = cjson.encode(record)
    redis.call("hset", KEYS[1], ARGV[1], raw)
end
local key = record["store"] .. "|" .. record["kind"] .. "|" .. record["subject"]
if redis.call("hget", KEYS[2], key) == ARGV[1] then redis.call("hdel", KEYS[2], key) end
return raw
"""
# KEYS: incidents. ARGV: id, action, extra fields JSON. Appends an action; returns the record, or false.
NOTE = """
local raw = redis.call("hget", KEYS[1], ARGV[1])
if not raw then return false end
local record = cjson.decode(raw)
if ARGV[2] ~= "" then table.insert(record["actions"], ARGV[2]) end
for name, value in pairs(cjson.decode(ARGV[3])) do record[name] = value end
raw = cjson.encode(record)
redis.call("hset", KEYS[1], ARGV[1], raw)
return raw
"""


@dataclass(frozen=True)
class Incident:
    """One incident.

    Parameters:
      id: a random id.
      store: the store hash ("" for the deployment as a whole, e.g. the receiver's early warning).
      kind: one of KINDS.
      subject: what it is about within the store: "hook:<id>", "domain:<host>", or "" (the receiver).
      hook_id, scope, destination: the hook concerned, when one is.
      since: when it started (Unix seconds; the best evidence we have).
      until: when it was resolved (None: open).
      last_seen: the latest report of it.
      actions: what was done, in order ("reactivated hook 12", "gap filed 1700000000-1700003600", ...).
      detail: the latest human-readable detail.
      alerted: the last state sent to BCWEBHOOKS_ALERT_URL ("", "open", "resolved").
    """

    id: str
    store: str
    kind: str
    subject: str
    since: float
    until: float | None = None
    last_seen: float = 0.0
    hook_id: int | None = None
    scope: str | None = None
    destination: str | None = None
    actions: list[str] = field(default_factory=list)
    detail: str = ""
    alerted: str = ""

    @property
    def open(self) -> bool:
        """Still going on."""
        return self.until is None

    def public(self) -> dict[str, Any]:
        """The record as JSON for the CLI, the dashboard and alerts."""
        return {**asdict(self), "open": self.open}

    @classmethod
    def from_json(cls, raw: str | bytes) -> Incident:
        """A record read back from Redis (cjson writes an empty list as {})."""
        data: dict[str, Any] = json.loads(raw)
        data["actions"] = list(data.get("actions") or [])
        known = set(cls.__dataclass_fields__)
        return cls(**{name: value for name, value in data.items() if name in known})


def open_key(store: str, kind: str, subject: str) -> str:
    """The key of the one open incident of a store, kind and subject."""
    return f"{store}|{kind}|{subject}"


def hook_subject(hook_id: int) -> str:
    """The subject of an incident about one hook."""
    return f"hook:{hook_id}"


def domain_subject(domain: str) -> str:
    """The subject of an incident about one destination domain."""
    return f"domain:{domain}"


def new_incident(
    store: str,
    kind: str,
    subject: str,
    since: float,
    detail: str = "",
    hook_id: int | None = None,
    scope: str | None = None,
    destination: str | None = None,
) -> Incident:
    """A new open incident (not yet recorded)."""
    return Incident(
        id=uuid.uuid4().hex[:16],
        store=store,
        kind=kind,
        subject=subject,
        since=since,
        last_seen=time.time(),
        hook_id=hook_id,
        scope=scope,
        destination=destination,
        detail=detail,
    )


def _open_args(incident: Incident) -> tuple[list[str], list[str]]:
    keys = [INCIDENTS_KEY, INCIDENTS_INDEX_KEY, INCIDENTS_OPEN_KEY]
    record = json.dumps(asdict(incident), separators=(",", ":"))
    args = [open_key(incident.store, incident.kind, incident.subject), record, str(incident.last_seen)]
    return keys, [*args, incident.detail]


def open_incident(client: redis.Redis, incident: Incident) -> tuple[Incident, bool]:
    """Record `incident` unless one of its store, kind and subject is open; returns the open incident and
    whether it is new."""
    keys, args = _open_args(incident)
    created, raw = client.eval(OPEN, len(keys), *keys, *args)
    if created:
        _trim(client)
    return Incident.from_json(raw), bool(created)


async def open_incident_async(client: aioredis.Redis, incident: Incident) -> tuple[Incident, bool]:
    """As open_incident, on the receiver's asyncio client."""
    keys, args = _open_args(incident)
    created, raw = await client.eval(OPEN, len(keys), *keys, *args)
    return Incident.from_json(raw), bool(created)


def resolve_incident(
    client: redis.Redis, incident_id: str, until: float | None = None, action: str = ""
) -> Incident | None:
    """Close an incident (a no-op on one already closed, apart from freeing its open slot)."""
    until = time.time() if until is None else until
    raw = client.eval(RESOLVE, 2, INCIDENTS_KEY, INCIDENTS_OPEN_KEY, incident_id, str(until), action)
    return Incident.from_json(raw) if raw else None


async def resolve_open_async(
    client: aioredis.Redis, store: str, kind: str, subject: str, action: str = ""
) -> Incident | None:
    """Close the open incident of a store, kind and subject, if any (the receiver's asyncio client)."""
    incident_id = await client.hget(INCIDENTS_OPEN_KEY, open_key(store, kind, subject))
    if not incident_id:
        return None
    raw = await client.eval(
        RESOLVE, 2, INCIDENTS_KEY, INCIDENTS_OPEN_KEY, incident_id, str(time.time()), action
    )
    return Incident.from_json(raw) if raw else None


def note_action(client: redis.Redis, incident_id: str, action: str = "", **fields: Any) -> Incident | None:
    """Append what was done to an incident, and set `fields` (alerted, detail, ...)."""
    raw = client.eval(NOTE, 1, INCIDENTS_KEY, incident_id, action, json.dumps(fields))
    return Incident.from_json(raw) if raw else None


def get_incident(client: redis.Redis, incident_id: str) -> Incident | None:
    """One incident by id."""
    raw: Any = client.hget(INCIDENTS_KEY, incident_id)
    return Incident.from_json(raw) if raw else None


def find_open(client: redis.Redis, store: str, kind: str, subject: str) -> Incident | None:
    """The open incident of a store, kind and subject, if any."""
    incident_id: Any = client.hget(INCIDENTS_OPEN_KEY, open_key(store, kind, subject))
    return get_incident(client, incident_id.decode()) if incident_id else None


def open_incidents(client: redis.Redis, store: str | None = None) -> list[Incident]:
    """Every open incident (of one store), oldest first."""
    ids: Any = client.hvals(INCIDENTS_OPEN_KEY)
    found = _by_ids(client, [i.decode() for i in ids])
    return sorted((i for i in found if i.open and (store is None or i.store == store)), key=lambda i: i.since)


def list_incidents(
    client: redis.Redis, store: str | None = None, only_open: bool = False, limit: int = 100
) -> list[Incident]:
    """The newest incidents first (of one store; only the open ones)."""
    if only_open:
        return list(reversed(open_incidents(client, store)))[:limit]
    ids: Any = client.zrevrange(INCIDENTS_INDEX_KEY, 0, MAX_LISTED - 1)
    found = [i for i in _by_ids(client, [i.decode() for i in ids]) if store is None or i.store == store]
    return found[:limit]


def count_open_by_kind(client: redis.Redis) -> dict[str, int]:
    """Open incidents per kind (every kind present, 0 when none)."""
    counts = dict.fromkeys(KINDS, 0)
    for incident in open_incidents(client):
        counts[incident.kind] = counts.get(incident.kind, 0) + 1
    return counts


def earliest_evidence(
    client: redis.Redis,
    store: str,
    hook_id: int | None,
    destination: str | None,
    after: float,
    before: float | None = None,
) -> float | None:
    """The earliest start of an incident that shows deliveries to a hook (or its destination, or the whole
    receiver) failing, among those that started by `before` and were still open or resolved after `after`;
    None when there is none."""
    starts = [
        incident.since
        for incident in list_incidents(client, limit=MAX_LISTED)
        if incident.kind in EVIDENCE_KINDS
        and incident.store in (store, "")
        and (before is None or incident.since <= before)
        and (incident.until is None or incident.until >= after)
        and (
            incident.store == ""
            or incident.hook_id in (None, hook_id)
            or (destination is not None and incident.destination == destination)
        )
    ]
    return min(starts) if starts else None


def _by_ids(client: redis.Redis, ids: list[str]) -> list[Incident]:
    if not ids:
        return []
    raws: Any = client.hmget(INCIDENTS_KEY, ids)
    found = []
    for raw in raws:
        if raw:
            try:
                found.append(Incident.from_json(raw))
            except (ValueError, TypeError):
                continue  # a damaged record is left out, never fails the read
    return found


def _trim(client: redis.Redis) -> None:
    """Drop the oldest resolved incidents beyond MAX_INCIDENTS."""
    excess = int(client.zcard(INCIDENTS_INDEX_KEY)) - MAX_INCIDENTS
    if excess <= 0:
        return
    oldest: Any = client.zrange(INCIDENTS_INDEX_KEY, 0, excess - 1)
    keep_open = {i.decode() for i in client.hvals(INCIDENTS_OPEN_KEY)}  # type: ignore[union-attr]
    dropped = [i.decode() for i in oldest if i.decode() not in keep_open]
    if dropped:
        client.zrem(INCIDENTS_INDEX_KEY, *dropped)
        client.hdel(INCIDENTS_KEY, *dropped)
