"""Dramatiq middleware of the delivery guarantee: per-event dead letters, ledger tracking, quota waits.

Each is a small class (Dramatiq's `middleware/` style); workers/broker.py adds them in order.
"""

from __future__ import annotations

import json
import time
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.common import xq_name

from service.events import DLQ_REASONS_KEY as DLQ_REASONS_KEY  # re-exported
from workers.backfill import BackfillIntake, BackfillIntakeThread
from workers.ledger import (
    DRAMATIQ_NAMESPACE,
    DeliveryLedger,
    Reconciler,
    ReconcilerThread,
    dead_letter_record,
    event_id_of,
    forward_of,
    work_id_of,
)

DEAD_LETTERED_OPTION = "bcwebhooks_dead_lettered"

log = structlog.get_logger("bcwebhooks.worker")


class DeadLetters(dramatiq.Middleware):
    """Dead-letters each failed event (and each failed forward, as its output's) on its own, with its
    reason, atomically with leaving the ledger.

    Parameters:
      ledger: the delivery ledger.
      client: Redis client on the broker's server.

    Add it before Retries (`broker.add_middleware(m, before=Retries)`): `after_process_message` runs in
    reverse order, so it then sees the verdict Retries reached. Dramatiq also moves the failed message to
    its own dead-letter queue; for an event recorded here that copy is removed after the nack, so each
    dead letter exists once. A message that carries no event keeps Dramatiq's copy, with its reason
    recorded in DLQ_REASONS_KEY. If Redis cannot take the dead letter, the event stays in the ledger and
    the reconciler enqueues it again.
    """

    def __init__(self, ledger: DeliveryLedger, client: redis.Redis) -> None:
        self.ledger = ledger
        self.client = client

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Record the dead letter when Retries (or `throws`) decided the message fails for good."""
        if not message.failed or exception is None:
            return
        error = f"{type(exception).__name__}: {exception}"
        retries = message.options.get("retries", 0)
        if forward_of(message) is not None:
            self._dead_letter_forward(message, error, retries)
            return
        event_id = event_id_of(message)
        if event_id is None:
            reason = {"error": error, "retries": retries, "failed_at": int(time.time())}
            self.client.hset(DLQ_REASONS_KEY, message.message_id, json.dumps(reason))
            log.error("message.dead_lettered", actor=message.actor_name, **reason)
            work_id = work_id_of(message)
            if work_id is not None:  # a batch flush: its events are in the ledger on their own
                self.ledger.forget(work_id)
            return
        letter = dead_letter_record(message, error, retries)
        if self.ledger.dead_letter(event_id, letter):
            message.options[DEAD_LETTERED_OPTION] = True
            log.error(
                "callback.dead_lettered",
                event_id=event_id,
                scope=letter["scope"],
                error=error,
                retries=retries,
            )

    def _dead_letter_forward(self, message: Any, error: str, retries: int) -> None:
        """A forward's dead letter belongs to its output: recorded per event and destination."""
        work_id = work_id_of(message)
        letter = dead_letter_record(message, error, retries)
        if work_id is not None and self.ledger.dead_letter(work_id, letter):
            message.options[DEAD_LETTERED_OPTION] = True
            log.error(
                "forward.dead_lettered",
                destination=letter["destination"],
                event_id=letter["event_id"],
                scope=letter["scope"],
                error=error,
                retries=retries,
            )

    def after_nack(self, broker: Any, message: Any) -> None:
        """Drop Dramatiq's copy of a dead letter recorded per event."""
        if not message.options.get(DEAD_LETTERED_OPTION):
            return
        queue = f"{DRAMATIQ_NAMESPACE}:{xq_name(message.queue_name)}"
        rid = message.options.get("redis_message_id", "")
        pipeline = self.client.pipeline()
        pipeline.zrem(queue, rid)
        pipeline.hdel(f"{queue}.msgs", rid)
        pipeline.execute()


class LedgerTracking(dramatiq.Middleware):
    """Records every message an unfinished event is enqueued as (a retry, the delay queue's hand-over, a
    reconciler or replay enqueue), with a lease that covers its delay.

    Parameters:
      ledger: the delivery ledger.

    If this write fails the lease simply runs out sooner, and the reconciler checks on the event.
    """

    def __init__(self, ledger: DeliveryLedger) -> None:
        self.ledger = ledger

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        """Move the event's lease and latest message along with it."""
        self.ledger.track(message, delay or 0)


class QuotaWaits(dramatiq.Middleware):
    """Keeps `Retry(delay=…)` (a spent API quota, waited out on the broker) from using up an event's retries.

    Add it after Retries: `after_process_message` runs in reverse order, so this runs first and takes back
    the retry that Retries is about to count.
    """

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        """Uncount a quota wait."""
        if isinstance(exception, dramatiq.Retry):
            message.options["retries"] = message.options.get("retries", 0) - 1


class Reconciling(dramatiq.Middleware):
    """Runs the ledger's reconciler in every worker process (a Redis lock keeps sweeps from overlapping).

    Parameters:
      ledger: the delivery ledger.
      interval: seconds between sweeps.
    """

    def __init__(self, ledger: DeliveryLedger, interval: float) -> None:
        self.ledger = ledger
        self.interval = interval
        self._thread: ReconcilerThread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        """Start sweeping."""
        self._thread = ReconcilerThread(Reconciler(self.ledger, broker), self.interval)
        self._thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Stop sweeping."""
        if self._thread is not None:
            self._thread.stop()
            self._thread = None


class BackfillIntaking(dramatiq.Middleware):
    """Reads gap requests (service/gaps.py) in every worker process and opens their backfills.

    Parameters:
      ledger: the delivery ledger.
    """

    def __init__(self, ledger: DeliveryLedger) -> None:
        self.ledger = ledger
        self._thread: BackfillIntakeThread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        """Start reading requests."""
        self._thread = BackfillIntakeThread(BackfillIntake(self.ledger, broker))
        self._thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Stop reading requests."""
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
