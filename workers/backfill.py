"""Backfill: turn a filed Gap (service/gaps.py) into processed events for what changed during it.

- **Intake.** Every worker process reads GAPS_STREAM in the consumer group GAPS_GROUP (XREADGROUP); a
  request a dead process had read is claimed again (XAUTOCLAIM) after CLAIM_IDLE_MS. Opening a gap writes
  its progress hash (one checkpoint per family the gap's scopes select, written only if absent), then one
  unit of work per family, then the list of families, and only then acknowledges the request: a request
  read twice resumes where the first reading stopped.
- **Work.** Each family of each gap is a unit of work in the delivery ledger (`backfill:<gap>:<family>`)
  whose message runs `backfill_family` on the lowest-priority queue. A run sweeps pages for up to
  SLICE_SECONDS, saving the checkpoint (cursor, page, counts) after every page, then sends the next slice
  (ledger first). A killed worker's slice is enqueued again by the reconciler when its lease runs out, and
  resumes from the checkpoint; a Redis lock keeps two copies from sweeping one family at once.
- **Events.** Every listed record becomes a processed event (`source: "backfill"`, scope
  `<family>/created` or `/updated`) delivered like a live one (workers/processing.py `deliver`: stream,
  forwards, handlers), with an id derived from the record's version so that a page read twice delivers
  nothing twice, and through the version fence (workers/fence.py).
- **Budget.** Calls go through the store's API client and so its shared budget; a spent budget sends the
  slice back to the broker to wait (`RateLimited`), its checkpoint intact.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq import Message

from service.bigcommerce import MissingScope, NotFound, Unauthorized
from service.events import BACKFILL_QUEUE_NAME, QUEUED_LEASE_MS
from service.gaps import (
    FAMILY_FIELD_PREFIX,
    GAP_PROGRESS_TTL_SECONDS,
    GAPS_GROUP,
    GAPS_INDEX_KEY,
    GAPS_STREAM,
    Gap,
    gap_key,
    gap_progress,
)
from workers.events import ProcessedEvent
from workers.fence import modified_ms
from workers.ledger import (
    BACKFILL_ACTOR_NAME,
    PROCESSING_LEASE_MS,
    DeliveryLedger,
    backfill_id,
    dead_letter_record,
    now_ms,
)
from workers.metrics import event_metrics
from workers.processing import STREAM_STEP, WorkerContext, deliver
from workers.store_contexts import StoreUninstalled
from workers.sweeps import OVERLAP_SECONDS, PAGE_LIMIT, Family, families_for, family_named, modified_of

SLICE_SECONDS = 20.0  # well within the actors' time limit and the processing lease
CLAIM_IDLE_MS = 60_000
INTAKE_BLOCK_MS = 1_000
INTAKE_BATCH = 10
LOCK_PREFIX = "bcwebhooks:backfill:lock:"
RUNNING, DONE, FAILED = "running", "done", "failed"
BACKFILLED = "backfilled"  # the metrics' outcome of an event a backfill delivered

log = structlog.get_logger("bcwebhooks.backfill")


@dataclass
class Checkpoint:
    """How far the sweep of one family of one gap got (saved after every page).

    Parameters:
      state: running, done or failed.
      cursor: the date_modified (Unix s) the next page starts at; None before the first page.
      page: the page number at that cursor.
      parents: a family listed per parent: the parents still to sweep, the current one first.
      listed, delivered, fenced: records read, delivered as events, and refused or already delivered.
      calls: API calls made.
      error: why it failed.
    """

    state: str = RUNNING
    cursor: float | None = None
    page: int = 1
    parents: list[int] | None = None
    listed: int = 0
    delivered: int = 0
    fenced: int = 0
    calls: int = 0
    error: str = ""

    def to_json(self) -> str:
        """As stored in the gap's progress hash."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        """From `gap_progress(...).families[name]`."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def backfill_message(gap_id: str, family: str) -> Message[Any]:
    """The message that runs the next slice of one family's sweep."""
    return Message(
        queue_name=BACKFILL_QUEUE_NAME,
        actor_name=BACKFILL_ACTOR_NAME,
        args=(gap_id, family),
        kwargs={},
        options={},
    )


def schedule(ledger: DeliveryLedger, broker: dramatiq.Broker, gap_id: str, family: str) -> None:
    """Send a slice, in the ledger first so that it cannot be lost."""
    message = backfill_message(gap_id, family)
    ledger.open(backfill_id(gap_id, family), message, QUEUED_LEASE_MS)
    broker.enqueue(message)


def open_gap(
    client: redis.Redis, ledger: DeliveryLedger, broker: dramatiq.Broker, gap_id: str, gap: Gap
) -> list[str]:
    """Write a gap's progress and send one unit of work per family; the families (none when it was opened
    before)."""
    key = gap_key(gap_id)
    if client.hexists(key, "families"):
        return []
    sweep, unswept = families_for(gap.scopes)
    pipeline = client.pipeline()
    pipeline.hsetnx(key, "gap", gap.to_json())
    pipeline.hsetnx(key, "until", str(gap.until if gap.until is not None else time.time()))
    pipeline.hset(key, "unswept", json.dumps({u.name: u.why for u in unswept}))
    for family in sweep:
        pipeline.hsetnx(key, FAMILY_FIELD_PREFIX + family.name, Checkpoint().to_json())
    pipeline.expire(key, GAP_PROGRESS_TTL_SECONDS)
    pipeline.zadd(GAPS_INDEX_KEY, {gap_id: gap.requested_at})
    pipeline.execute()
    for family in sweep:
        schedule(ledger, broker, gap_id, family.name)
    client.hset(key, "families", json.dumps([f.name for f in sweep]))
    log.info(
        "backfill.opened",
        gap=gap_id,
        store=gap.store_hash,
        since=gap.since,
        until=gap.until,
        reason=gap.reason,
        families=[f.name for f in sweep],
        not_recoverable=[u.name for u in unswept],
    )
    if unswept:
        log.warning(
            "backfill.not_recoverable",
            gap=gap_id,
            store=gap.store_hash,
            families={u.name: u.why for u in unswept},
        )
    return [f.name for f in sweep]


def run_slice(
    gap_id: str,
    family_name: str,
    context: WorkerContext,
    broker: dramatiq.Broker,
    seconds: float = SLICE_SECONDS,
) -> Checkpoint | None:
    """Sweep one family of one gap for up to `seconds`, then send the next slice or finish; None when there
    was nothing to do (finished already, or another copy is sweeping it)."""
    work = backfill_id(gap_id, family_name)
    client = context.redis
    if not context.ledger.claim(work):
        log.info("backfill.skipped", gap=gap_id, family=family_name, reason="finished already")
        return None
    lock = LOCK_PREFIX + work
    if not client.set(lock, os.getpid(), nx=True, px=PROCESSING_LEASE_MS):
        log.info("backfill.skipped", gap=gap_id, family=family_name, reason="another copy is sweeping")
        return None
    try:
        return _sweep(gap_id, family_name, context, broker, seconds)
    finally:
        client.delete(lock)


def _sweep(
    gap_id: str, family_name: str, context: WorkerContext, broker: dramatiq.Broker, seconds: float
) -> Checkpoint:
    work = backfill_id(gap_id, family_name)
    progress = gap_progress(context.redis, gap_id)
    if progress.gap is None or progress.until is None:
        raise RuntimeError(f"backfill {gap_id}: no progress recorded (expired?)")
    gap, family = progress.gap, family_named(family_name)
    checkpoint = Checkpoint.from_dict(progress.families.get(family_name, {}))
    if checkpoint.state == FAILED:  # a dead letter replayed (`dlq replay`): resume from the checkpoint
        checkpoint.state, checkpoint.error = RUNNING, ""
    try:
        store = store_context(context, gap.store_hash)
    except StoreUninstalled:
        return _fail(context, gap_id, family_name, checkpoint, "the store uninstalled the app")
    started = time.monotonic()
    try:
        while checkpoint.state == RUNNING:  # at least one page per slice
            sweep_page(family, checkpoint, store, gap.since - OVERLAP_SECONDS, progress.until)
            save(context.redis, gap_id, family_name, checkpoint)
            context.ledger.claim(work)
            if time.monotonic() - started >= seconds:
                break
    except (Unauthorized, MissingScope) as error:
        return _fail(context, gap_id, family_name, checkpoint, str(error))
    if checkpoint.state == RUNNING:
        schedule(context.ledger, broker, gap_id, family_name)
    else:
        context.ledger.forget(work)
        log.info(
            "backfill.family_done",
            gap=gap_id,
            store=gap.store_hash,
            family=family_name,
            **_counts(checkpoint),
        )
    return checkpoint


def sweep_page(
    family: Family, checkpoint: Checkpoint, context: WorkerContext, since: float, until: float
) -> None:
    """Read one page at the checkpoint, deliver its records, and move the checkpoint on."""
    cursor = since if checkpoint.cursor is None else checkpoint.cursor
    client = context.store_api.client
    if family.parents is not None and checkpoint.parents is None:
        checkpoint.parents = family.parents(client)
        checkpoint.calls += 1
    parent = checkpoint.parents[0] if checkpoint.parents else None
    if family.parents is not None and parent is None:
        checkpoint.state = DONE
        return
    try:
        items = family.page(client, cursor, until, checkpoint.page, parent)
    except NotFound:
        if parent is None:
            raise
        items = []  # the price list was deleted meanwhile: nothing more of it to recover
    checkpoint.calls += 1
    checkpoint.listed += len(items)
    for item in items:
        event = event_for(family, item, context.store_hash)
        if STREAM_STEP in deliver(event, context):
            checkpoint.delivered += 1
            event_metrics().outcome(event.scope, BACKFILLED)
        else:
            checkpoint.fenced += 1
    if len(items) < PAGE_LIMIT and checkpoint.parents:
        checkpoint.parents, checkpoint.page = checkpoint.parents[1:], 1
        checkpoint.state = RUNNING if checkpoint.parents else DONE
    elif len(items) < PAGE_LIMIT:
        checkpoint.state = DONE
    elif family.sorted and (last := modified_of(items[-1])) > cursor:
        checkpoint.cursor, checkpoint.page = last, 1
    else:
        checkpoint.cursor, checkpoint.page = cursor, checkpoint.page + 1


def event_for(family: Family, item: dict[str, Any], store_hash: str) -> ProcessedEvent:
    """The processed event of one listed record; its id names the record's version."""
    version = modified_ms(str(item["date_modified"]))
    resource_id = family.resource_id(item)
    scope = family.scope_of(item)
    envelope = {
        "scope": scope,
        "data": {"type": family.resource_type, "id": item.get("id", resource_id)},
        "producer": f"stores/{store_hash}",
        "created_at": version // 1000,
    }
    now = now_ms()
    return ProcessedEvent(
        event_id=f"backfill:{store_hash}:{family.resource_type}:{resource_id}:{version}",
        webhook_id=None,
        scope=scope,
        store_hash=store_hash,
        resource_type=family.resource_type,
        resource_id=resource_id,
        record=family.record(item),
        deleted=False,
        envelope=envelope,
        received_at_ms=now,
        fetched_at_ms=now,
        source="backfill",
    )


def store_context(context: WorkerContext, store_hash: str) -> WorkerContext:
    """The context whose API client reads `store_hash` (app mode: that store's token and budget)."""
    if context.stores is not None:
        return context.stores.for_store(store_hash)
    if store_hash != context.store_hash:
        raise StoreUninstalled(f"{store_hash} is not this deployment's store ({context.store_hash})")
    return context


def save(client: redis.Redis, gap_id: str, family_name: str, checkpoint: Checkpoint) -> None:
    """Record a family's checkpoint."""
    client.hset(gap_key(gap_id), FAMILY_FIELD_PREFIX + family_name, checkpoint.to_json())


def _fail(
    context: WorkerContext, gap_id: str, family_name: str, checkpoint: Checkpoint, error: str
) -> Checkpoint:
    checkpoint.state, checkpoint.error = FAILED, error
    save(context.redis, gap_id, family_name, checkpoint)
    letter = dead_letter_record(backfill_message(gap_id, family_name), error, retries=None)
    context.ledger.dead_letter(backfill_id(gap_id, family_name), letter)
    log.error("backfill.failed", gap=gap_id, family=family_name, error=error)
    return checkpoint


def _counts(checkpoint: Checkpoint) -> dict[str, int]:
    return {
        "listed": checkpoint.listed,
        "delivered": checkpoint.delivered,
        "fenced": checkpoint.fenced,
        "calls": checkpoint.calls,
    }


class BackfillIntake:
    """Reads gap requests in the consumer group and opens each one.

    Parameters:
      ledger: the delivery ledger (its client is the broker's Redis).
      broker: where the slices are sent.
      consumer: this reader's name in the group.
      claim_idle_ms: how long a request read by another reader stays unacknowledged before it is claimed.
    """

    def __init__(
        self,
        ledger: DeliveryLedger,
        broker: dramatiq.Broker,
        consumer: str | None = None,
        claim_idle_ms: int = CLAIM_IDLE_MS,
    ) -> None:
        self.ledger = ledger
        self.client = ledger.client
        self.broker = broker
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        self._group_ready = False

    def poll(self, block_ms: int = INTAKE_BLOCK_MS) -> int:
        """Open the requests another reader left behind, then new ones (waiting up to `block_ms`; 0: not at
        all)."""
        try:
            return self._poll(block_ms)
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # A promoted replica or a restarted Redis may lack the group (or the stream): create it again.
            self._group_ready = False
            return self._poll(block_ms)

    def _poll(self, block_ms: int) -> int:
        self._ensure_group()
        claimed: Any = self.client.xautoclaim(
            GAPS_STREAM, GAPS_GROUP, self.consumer, self.claim_idle_ms, "0-0", count=INTAKE_BATCH
        )
        entries = list(claimed[1])
        fresh: Any = self.client.xreadgroup(
            GAPS_GROUP, self.consumer, {GAPS_STREAM: ">"}, count=INTAKE_BATCH, block=block_ms or None
        )  # (BLOCK 0 would wait forever: 0 does not wait)
        for _, items in fresh or []:
            entries.extend(items)
        for entry_id, fields in entries:
            self._open(entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), fields)
        return len(entries)

    def _open(self, gap_id: str, fields: dict[bytes, bytes] | None) -> None:
        try:
            gap = Gap.from_json((fields or {})[b"gap"])
        except (KeyError, TypeError, ValueError) as error:
            log.error("backfill.unreadable_request", gap=gap_id, error=f"{type(error).__name__}: {error}")
        else:
            open_gap(self.client, self.ledger, self.broker, gap_id, gap)
        self.client.xack(GAPS_STREAM, GAPS_GROUP, gap_id)

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(GAPS_STREAM, GAPS_GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True


class BackfillIntakeThread:
    """Runs `BackfillIntake.poll` in a daemon thread until stopped.

    Parameters:
      intake: what to run.
    """

    def __init__(self, intake: BackfillIntake) -> None:
        self.intake = intake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcwebhooks-backfill-intake", daemon=True)

    def start(self) -> None:
        """Start reading requests."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current poll."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(INTAKE_BLOCK_MS / 1000 * 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.intake.poll()
            except Exception as error:  # Redis down or stalled: try again shortly
                log.warning("backfill.intake_failed", error=f"{type(error).__name__}: {error}")
                self._stop.wait(INTAKE_BLOCK_MS / 1000)
