"""The processed event: what downstream systems receive for every callback."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ProcessedEvent:
    """One callback resolved to its current record (or marked deleted), ready for handlers and outputs."""

    event_id: str
    webhook_id: str | None
    scope: str
    store_hash: str
    resource_type: str | None
    resource_id: str | None
    record: Any
    deleted: bool
    envelope: dict[str, Any]
    received_at_ms: int
    fetched_at_ms: int
    source: str = "webhook"  # "webhook": a callback BigCommerce sent; "backfill": found by a backfill sweep

    def to_json(self) -> str:
        """The whole event as JSON."""
        return json.dumps(asdict(self), separators=(",", ":"), default=str)

    def stream_fields(self) -> dict[str, str]:
        """Flat fields for a Redis Stream entry; `event` holds the whole event as JSON."""
        return {
            "event_id": self.event_id,
            "scope": self.scope,
            "store": self.store_hash,
            "resource_type": self.resource_type or "",
            "resource_id": self.resource_id or "",
            "deleted": "1" if self.deleted else "0",
            "source": self.source,
            "event": self.to_json(),
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> ProcessedEvent:
        """Rebuild an event from `to_json` output (what a stream consumer does)."""
        return cls(**json.loads(text))

    def summary(self) -> str:
        """One line about the record, for people watching `dev` or `tail`."""
        if self.deleted:
            return f"{self.resource_type} {self.resource_id} is gone (deleted)"
        if self.record is None:
            return "no record to fetch for this scope"
        return describe_record(self.resource_type, self.record)


def describe_record(resource_type: str | None, record: Any) -> str:
    """A short human description of a fetched record."""
    if isinstance(record, dict) and "order" in record:
        order = record["order"]
        lines = len(record.get("products", []))
        status, total = order.get("status"), order.get("total_inc_tax")
        return f"order {order.get('id')} {status!r} total {total} ({lines} lines)"
    if isinstance(record, list):
        return f"{len(record)} {resource_type} record(s)"
    if isinstance(record, dict):
        label = record.get("name") or record.get("email") or record.get("sku") or record.get("key") or ""
        extra = f" price {record['price']}" if "price" in record else ""
        return f"{resource_type} {record.get('id', '')} {label!s}{extra}".strip()
    return str(record)[:80]
