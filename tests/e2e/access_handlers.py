"""Handler module for the least-privilege test: one handler writes what it declared, one oversteps."""

from __future__ import annotations

from service.bigcommerce import StoreApi
from workers.events import ProcessedEvent
from workers.handlers import handler


@handler("store/order/created")
def count_the_order(event: ProcessedEvent, api: StoreApi) -> None:
    """No access declared, and none used."""


@handler("store/order/created", access={"orders": "write"})
def note_the_order(event: ProcessedEvent, api: StoreApi) -> None:
    """Within its access: write staff notes on the order."""
    api.orders.update(int(event.resource_id or 0), {"staff_notes": "noted by bcwebhooks"})


@handler("store/order/created", access={"orders": "read"})
def archive_the_order(event: ProcessedEvent, api: StoreApi) -> None:
    """Reads the order (allowed), then tries to archive it: a write it did not declare."""
    api.orders.get(int(event.resource_id or 0))
    api.orders.archive(int(event.resource_id or 0))
