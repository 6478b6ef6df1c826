"""Version fencing: a record is never delivered older than one already delivered for the same resource.

Each delivered record of a fenced type leaves its version in a per-store hash: field `<type>:<id>`, value
`<date_modified in ms>|<digest of the record>|<source>`. The stream output's Lua step (workers/outputs/
stream.py) compares and records in the same atomic step as the stream entry, so a live event and a backfill
delivering the same resource at the same moment cannot both win:

- an **older** version than the one delivered is refused: the event is finished as `superseded` (no stream
  entry, no forwards, no handlers; logged and counted), whatever its source;
- the **same** version (same date_modified and same record digest) is refused as a `duplicate` when either
  side is a backfill: a backfill never delivers again what was delivered, and a late live event does not
  repeat what a backfill already delivered. Two live events at one version (BigCommerce fires created and
  updated for one write) are both delivered, as before;
- the same date_modified with a different digest (two writes within one second: BigCommerce's dates have
  second precision) is delivered.

Memory is bounded: one hash per store (`bcwebhooks:fence:<store>`), one field per resource that changed,
expiring FENCE_TTL_SECONDS after the store's last fenced delivery, which is longer than BigCommerce's 48 h of
retries plus the time to notice and backfill a gap. Deleted resources and records without a modification
time (carts, variants, categories, ...) are not fenced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

FENCE_KEY_PREFIX = "bcwebhooks:fence:"
FENCE_TTL_SECONDS = 8 * 24 * 3600
FENCED = "fenced"  # the done mark of an event the fence refused
SUPERSEDED, DUPLICATE = "superseded", "duplicate"
FENCED_TYPES = frozenset({"order", "product", "customer", "subscriber", "price_list", "channel"})


@dataclass(frozen=True)
class FenceMark:
    """The version of one record, as the fence compares it.

    Parameters:
      key: the store's fence hash.
      field: `<resource type>:<id>`.
      version_ms: the record's date_modified, in milliseconds.
      digest: a digest of the record (tells two writes within one second apart).
      source: "webhook" or "backfill".
    """

    key: str
    field: str
    version_ms: int
    digest: str
    source: str


def fence_key(store_hash: str) -> str:
    """The fence hash of a store."""
    return FENCE_KEY_PREFIX + store_hash


def mark_for(
    store_hash: str, resource_type: str | None, resource_id: str | None, record: Any, source: str
) -> FenceMark | None:
    """The fence mark of a record, or None when its type is not fenced or it carries no date_modified."""
    if resource_type not in FENCED_TYPES or resource_id is None or not isinstance(record, dict):
        return None
    primary = record.get("order") if resource_type == "order" else record
    if not isinstance(primary, dict) or not primary.get("date_modified"):
        return None
    try:
        version_ms = modified_ms(str(primary["date_modified"]))
    except ValueError:
        return None
    return FenceMark(
        fence_key(store_hash), f"{resource_type}:{resource_id}", version_ms, record_digest(primary), source
    )


def modified_ms(value: str) -> int:
    """A date_modified in either of BigCommerce's formats (ISO-8601, RFC-2822) as Unix milliseconds."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise ValueError(f"not a date: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def record_digest(record: Any) -> str:
    """A short digest of a record's content (key order does not matter)."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(canonical.encode()).hexdigest()[:16]  # noqa: S324 (a content digest)
