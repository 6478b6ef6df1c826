"""Gaps: periods in which BigCommerce may have raised events that never reached us, waiting to be backfilled.

Whoever notices a gap (the hook monitor, a deliveryException event, the receiver's early warning, a person
running `bcwebhooks backfill`) calls `request_backfill`. The request is appended to a Redis stream (durable
like every acknowledged callback: AOF, and a consumer group so that a request a worker was reading when it
died is read again); the backfill runner (workers/backfill.py) consumes the stream and sweeps the store's
list endpoints for what changed between `since` and `until`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

GAPS_STREAM = "bcwebhooks:backfill:requests"  # stream of requested gaps, fields: "gap" -> Gap JSON
GAPS_GROUP = "backfill"  # the consumer group the backfill runner reads GAPS_STREAM with
GAPS_MAXLEN = 10_000  # requests kept (approximate trim): far more than a deployment files in a retention


@dataclass(frozen=True)
class Gap:
    """A period of one store to backfill.

    Parameters:
      store_hash: the store.
      since: start, Unix seconds (UTC).
      until: end, Unix seconds; None means "up to when the backfill starts".
      scopes: webhook scope globs whose families to sweep ("*" is every family that can be swept).
      reason: why, for people and the incident record ("hook 12 deactivated", "blocklisted", "on demand").
      requested_at: when the gap was reported, Unix seconds.
    """

    store_hash: str
    since: float
    until: float | None
    reason: str
    scopes: tuple[str, ...] = ("*",)
    requested_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        """The request as stored in GAPS_STREAM."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Gap:
        """A request read back from GAPS_STREAM."""
        data: dict[str, Any] = json.loads(raw)
        data["scopes"] = tuple(data.get("scopes") or ("*",))
        return cls(**data)


def request_backfill(client: redis.Redis, gap: Gap) -> str:
    """File `gap` for the backfill runner; returns the request's stream id."""
    if gap.until is not None and gap.until < gap.since:
        raise ValueError(f"a gap ends before it starts ({gap.until} < {gap.since})")
    entry_id = client.xadd(GAPS_STREAM, {"gap": gap.to_json()}, maxlen=GAPS_MAXLEN, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


# Progress, written by the backfill runner (workers/backfill.py) and read by `bcwebhooks backfill status`.
GAPS_INDEX_KEY = "bcwebhooks:backfill:gaps"  # zset: gap id (its request's stream id) -> requested at (s)
GAP_KEY_PREFIX = "bcwebhooks:backfill:gap:"  # hash per gap: gap, until, families, unswept, family:<name>
GAP_PROGRESS_TTL_SECONDS = 30 * 24 * 3600  # a gap's progress is kept this long after it was opened
FAMILY_FIELD_PREFIX = "family:"


def gap_key(gap_id: str) -> str:
    """The progress hash of one gap."""
    return GAP_KEY_PREFIX + gap_id


@dataclass(frozen=True)
class GapProgress:
    """A gap and how far its backfill got: per family the checkpoint (`state` running/done/failed,
    `listed`, `delivered`, `fenced`, `calls`, `cursor`, `page`), and the families no sweep can recover."""

    gap_id: str
    gap: Gap | None
    until: float | None
    families: dict[str, dict[str, Any]]
    unswept: dict[str, str]
    opened: bool = False

    @property
    def done(self) -> bool:
        """Every family finished (done or failed); False while the request waits to be opened."""
        return self.opened and all(f.get("state") in ("done", "failed") for f in self.families.values())

    def to_dict(self) -> dict[str, Any]:
        """For --json output."""
        return {
            "gap_id": self.gap_id,
            "gap": asdict(self.gap) if self.gap else None,
            "until": self.until,
            "families": self.families,
            "unswept": self.unswept,
            "opened": self.opened,
            "done": self.done,
        }


def gap_progress(client: redis.Redis, gap_id: str) -> GapProgress:
    """What the runner recorded for one gap (empty while the request waits in GAPS_STREAM)."""
    raw: dict[bytes, bytes] = client.hgetall(gap_key(gap_id))  # type: ignore[assignment]
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    families = {
        name.removeprefix(FAMILY_FIELD_PREFIX): json.loads(value)
        for name, value in fields.items()
        if name.startswith(FAMILY_FIELD_PREFIX)
    }
    return GapProgress(
        gap_id=gap_id,
        gap=Gap.from_json(fields["gap"]) if "gap" in fields else None,
        until=float(fields["until"]) if "until" in fields else None,
        families=families,
        unswept=json.loads(fields.get("unswept", "{}")),
        opened="families" in fields,
    )


def recent_gaps(client: redis.Redis, limit: int = 20) -> list[GapProgress]:
    """The latest opened gaps, newest first, with their progress."""
    ids: list[bytes] = client.zrevrange(GAPS_INDEX_KEY, 0, limit - 1)  # type: ignore[assignment]
    return [gap_progress(client, gap_id.decode()) for gap_id in ids]
