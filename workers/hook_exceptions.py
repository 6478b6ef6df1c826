"""The workers' built-in reaction to `store/hook/deliveryException` events (BigCommerce's own report that
it cannot deliver to us), run once per event as a step of its delivery (workers/processing.py); the event
still goes to the stream, the outputs and the handlers like any other.

- 90001 (deliveries failing, BigCommerce retrying): incident `deliveries_failing`; its start is the earliest
  evidence of a gap should the hook be deactivated later;
- 90002 (every attempt exhausted, the hook is about to be disabled): incident `hook_disabling`, and a monitor
  pass of the store right away;
- 90003 (the destination domain is blocklisted): incident `domain_blocked`, and a monitor pass right away,
  which schedules another for when the block ends; that one files the blocked window as a gap.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import structlog

from service.incidents import (
    DELIVERIES_FAILING,
    DOMAIN_BLOCKED,
    HOOK_DISABLING,
    Incident,
    domain_subject,
    hook_subject,
    new_incident,
    open_incident,
)
from workers.events import ProcessedEvent
from workers.monitor import hostname
from workers.monitor_schedule import request_pass

DELIVERY_EXCEPTION_SCOPE = "store/hook/deliveryException"
REACTION_STEP = "reaction:delivery_exception"  # its done mark (workers/processing.py)
KIND_BY_CODE = {90001: DELIVERIES_FAILING, 90002: HOOK_DISABLING, 90003: DOMAIN_BLOCKED}
TEXT_BY_CODE = {
    90001: "deliveries failing, BigCommerce retrying",
    90002: "hook about to be disabled: every delivery attempt is exhausted",
    90003: "domain blocklisted by BigCommerce",
}

log = structlog.get_logger("bcwebhooks.worker")


def react_to_delivery_exception(event: ProcessedEvent, client: redis.Redis) -> Incident | None:
    """Record the incident a deliveryException event reports (and ask for a pass); None for an unknown
    code."""
    data: Any = event.envelope.get("data")
    data = data if isinstance(data, dict) else {}
    try:
        code = int(data.get("error_code"))
    except (TypeError, ValueError):
        code = 0
    kind = KIND_BY_CODE.get(code)
    if kind is None:
        log.warning(
            "delivery_exception.unknown_code", store=event.store_hash, error_code=data.get("error_code")
        )
        return None
    hook: dict[str, Any] = event.record if isinstance(event.record, dict) else {}
    hook_id = _int_or_none(data.get("id"))
    destination = str(hook["destination"]) if hook.get("destination") else None
    created = event.envelope.get("created_at")
    since = float(created) if isinstance(created, int | float) else event.received_at_ms / 1000
    subject = (
        domain_subject(hostname(destination) if destination else "")
        if kind == DOMAIN_BLOCKED
        else hook_subject(hook_id or 0)
    )
    detail = f"{code}: {TEXT_BY_CODE[code]}"
    if data.get("message"):
        detail = f"{detail} ({str(data['message'])[:200]})"
    incident, created_now = open_incident(
        client,
        new_incident(
            event.store_hash,
            kind,
            subject,
            since,
            detail,
            hook_id=hook_id,
            scope=str(hook["scope"]) if hook.get("scope") else None,
            destination=destination,
        ),
    )
    if code in (90002, 90003):
        request_pass(client, event.store_hash, time.time())
    log.warning(
        "delivery_exception.recorded",
        store=event.store_hash,
        hook_id=hook_id,
        error_code=code,
        incident=incident.id,
        new=created_now,
    )
    return incident


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
