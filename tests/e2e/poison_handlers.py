"""Handler module for the fault suite's poison scenario: one marked event can never be processed.

`scripts/bench_faults.py` sends one catalog callback whose `webhook-id` starts with POISON_PREFIX inside a
storm and names this module in BCWEBHOOKS_HANDLERS: every run of that event raises, the others pass.
"""

from __future__ import annotations

from typing import Any

from workers.events import ProcessedEvent
from workers.handlers import handler

POISON_PREFIX = "msg_poison_"


class PoisonEvent(Exception):
    """The event the fault suite marked as impossible to process."""


@handler("store/product/*")
def refuse_the_poison_event(event: ProcessedEvent, api: Any) -> None:
    """Raise for the marked event, every time; do nothing for any other."""
    if (event.webhook_id or "").startswith(POISON_PREFIX):
        raise PoisonEvent(f"{event.webhook_id} is the fault suite's poison event")
