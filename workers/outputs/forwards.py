"""Forwards: one Dramatiq message per processed event and matching HTTP output, tracked by the ledger.

A forward is created in the same Redis step as the event's stream entry (workers/outputs/stream.py), as a
message on the forward queue and an entry in the delivery ledger (work id `forward:<output>:<event id>`).
It leaves the ledger when the destination answers 2xx, or as a dead letter of that output with its reason
(after the output's retries, or at once on an answer another attempt would not change). Until then the
reconciler enqueues it again whenever its message is lost, exactly as it does for events.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from dramatiq import Message

from service.events import QUEUED_LEASE_MS, ledger_id
from workers.events import ProcessedEvent
from workers.ledger import (
    DRAMATIQ_NAMESPACE,
    FORWARD_ACTOR_NAME,
    FORWARD_QUEUE_NAME,
    DeliveryLedger,
    forward_id,
    now_ms,
)
from workers.outputs.declaration import DeclaredOutput
from workers.outputs.http import ForwardError, HttpOutput, UnknownDestination, webhook_id_for
from workers.outputs.stream import QueuedWork

log = structlog.get_logger("bcwebhooks.forward")


class DestinationBusy(ForwardError):
    """Every concurrency slot of the destination is taken: wait on the broker, not in a worker thread."""


@dataclass
class Forwarding:
    """The HTTP outputs of one worker process, by name.

    Parameters:
      outputs: each declared destination's HttpOutput.
    """

    outputs: dict[str, HttpOutput] = field(default_factory=dict)

    @classmethod
    def build(cls, declared: tuple[DeclaredOutput, ...], client: redis.Redis) -> Forwarding:
        """An HttpOutput for each declared destination."""
        return cls({output.name: HttpOutput(output, client) for output in declared})

    def works_for(self, event: ProcessedEvent) -> list[QueuedWork]:
        """The forward messages of `event`, one per output whose scopes match it."""
        body = event.to_json()
        return [
            forward_work(output.declared, event.event_id, event.scope, body)
            for output in self.outputs.values()
            if output.declared.wants(event.scope)
        ]

    def close(self) -> None:
        """Close every destination's connection pool."""
        for output in self.outputs.values():
            output.close()


def forward_work(declared: DeclaredOutput, event_id: str, scope: str, body: str) -> QueuedWork:
    """The message that POSTs `body` to one destination, with that destination's retry policy."""
    redis_id = str(uuid.uuid4())
    message: Message[Any] = Message(
        queue_name=FORWARD_QUEUE_NAME,
        actor_name=FORWARD_ACTOR_NAME,
        args=(declared.name, event_id, scope, body),
        kwargs={},
        options={
            "redis_message_id": redis_id,
            "max_retries": declared.retries,
            "min_backoff": declared.min_backoff_ms,
            "max_backoff": declared.max_backoff_ms,
        },
    )
    return QueuedWork(
        ledger_id=ledger_id(forward_id(declared.name, event_id)),
        queue_key=f"{DRAMATIQ_NAMESPACE}:{FORWARD_QUEUE_NAME}",
        redis_id=redis_id,
        payload=message.encode(),
    )


def forward_lease_deadline() -> int:
    """The lease of forwards created now (as long as a queued event's)."""
    return now_ms() + QUEUED_LEASE_MS


def forward(
    outputs: Mapping[str, HttpOutput], ledger: DeliveryLedger, destination: str, event_id: str, body: str
) -> bool:
    """POST one event to one destination and take the forward out of the ledger; False when it had
    already left it (delivered or dead-lettered before). Raises ForwardError when not delivered."""
    work = forward_id(destination, event_id)
    if not ledger.claim(work):
        log.info("forward.skipped", destination=destination, event_id=event_id, reason="already done")
        return False
    output = outputs.get(destination)
    if output is None:
        raise UnknownDestination(f"output {destination!r} is not declared in the outputs file any more")
    holder = output.acquire_slot()
    if holder is None:
        raise DestinationBusy(f"{destination}: {output.declared.concurrency} request(s) already in flight")
    webhook_id = webhook_id_for(destination, event_id)
    try:
        status = output.post(webhook_id, body)
    finally:
        output.release_slot(holder)
    ledger.forget(work)
    log.info(
        "forward.delivered", destination=destination, event_id=event_id, webhook_id=webhook_id, status=status
    )
    return True
