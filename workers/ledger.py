"""The delivery ledger: why no event we acknowledged is ever lost.

Every event the receiver acknowledges enters the ledger in the same atomic Redis step as its enqueue
(service/persist_once.lua) and leaves it in exactly two ways, each atomic with what it records:
- **finished**: the last done mark of its delivery (stream entry written, handlers run) removes it;
- **dead-lettered**: the per-event dead letter, with its reason, is written in the step that removes it.

Each entry has a lease deadline. It is extended when a worker starts on the event, when the event's message
is re-enqueued (a retry, the delay queue), and when the event is parked for a batch fetch. Nothing else
depends on a single Redis command or Dramatiq middleware step succeeding: whenever a lease runs out, the
reconciler looks for the event's latest message. If it still waits in its queue (in the queue's hash and in
no worker's ack set), the lease is extended; otherwise it was lost (Redis restarted while a retry could not
be written and the original was acked, a fetch whose reply timed out stranded it in a live worker's ack set,
a batch flush never ran) and the event is enqueued again. Delivery is idempotent per event (the stream
entry is written once, a finished event is skipped without a fetch), so an extra message costs little.
An event enqueued again `MAX_REQUEUES` times without finishing (say it crashes every worker that takes it)
is dead-lettered with that reason.

Work the workers create themselves is tracked the same way under its own work id: a batch flush
(`flush:<type>:<token>`), the backfill of one family of a gap (`backfill:<gap id>:<family>`, workers/
backfill.py), and each forward of a processed event to an HTTP output
(`forward:<output>:<event id>`, workers/outputs/forwards.py), which enters the ledger in the step that writes
the event's stream entry and leaves it when the destination has answered 2xx or as that output's dead letter.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
import structlog
from dramatiq import Broker, Message

from service.events import BACKFILL_ACTOR_NAME as EVENTS_BACKFILL_ACTOR_NAME
from service.events import DEAD_INDEX_KEY as DEAD_INDEX_KEY  # re-exported: dlq, tests
from service.events import DEAD_KEY as DEAD_KEY
from service.events import DRAMATIQ_NAMESPACE as DRAMATIQ_NAMESPACE
from service.events import FORWARD_QUEUE_NAME as FORWARD_QUEUE_NAME
from service.events import (
    LEDGER_KEY,
    LEDGER_MESSAGES_KEY,
    QUEUED_LEASE_MS,
    ledger_id,
)

REQUEUES_KEY = "bcwebhooks:ledger:requeues"  # hash: ledger id -> times the reconciler enqueued it again
DONE_PREFIX = "bcwebhooks:done:"  # set per event: the delivery steps that succeeded
COMPLETE = "complete"  # the done mark written when every step has succeeded
FLUSH_ACTOR_NAME = "flush_batch"
BACKFILL_ACTOR_NAME = EVENTS_BACKFILL_ACTOR_NAME
FORWARD_ACTOR_NAME = "forward_event"
RECONCILER_LOCK_KEY = "bcwebhooks:ledger:reconciler"
HEARTBEATS_KEY = f"{DRAMATIQ_NAMESPACE}:__heartbeats__"

# The actors time out after ACTOR_TIME_LIMIT_MS, so a lease a little longer covers every started attempt.
ACTOR_TIME_LIMIT_MS = 45_000
PROCESSING_LEASE_MS = 60_000
DEFAULT_SWEEP_INTERVAL_SECONDS = 5.0
DEFAULT_SWEEP_LIMIT = 1000
MAX_REQUEUES = 5
DROPPED_OPTIONS = ("eta", "redis_message_id", "traceback", "requeue_timestamp")

log = structlog.get_logger("bcwebhooks.ledger")

# KEYS: ledger. ARGV: id, deadline. Extends the lease of an entry that exists; 0 when there is none.
EXTEND = """
if redis.call("zscore", KEYS[1], ARGV[1]) then
    redis.call("zadd", KEYS[1], ARGV[2], ARGV[1])
    return 1
end
return 0
"""
# KEYS: ledger, messages. ARGV: id, deadline, message. Records where an unfinished event now is.
TRACK = """
if redis.call("zscore", KEYS[1], ARGV[1]) then
    redis.call("zadd", KEYS[1], ARGV[2], ARGV[1])
    redis.call("hset", KEYS[2], ARGV[1], ARGV[3])
    return 1
end
return 0
"""
# KEYS: done set, ledger, messages, requeues. ARGV: id, done TTL seconds. The event is delivered.
FINISH = """
redis.call("sadd", KEYS[1], "complete")
redis.call("expire", KEYS[1], ARGV[2])
redis.call("zrem", KEYS[2], ARGV[1])
redis.call("hdel", KEYS[3], ARGV[1])
redis.call("hdel", KEYS[4], ARGV[1])
return 1
"""
# KEYS: ledger, messages, requeues, dead, dead index. ARGV: id, dead letter JSON, now ms.
# Only an event still in the ledger is dead-lettered: one that left it was delivered (or is already dead).
DEAD_LETTER = """
if not redis.call("zscore", KEYS[1], ARGV[1]) then
    return 0
end
redis.call("hset", KEYS[4], ARGV[1], ARGV[2])
redis.call("zadd", KEYS[5], ARGV[3], ARGV[1])
redis.call("zrem", KEYS[1], ARGV[1])
redis.call("hdel", KEYS[2], ARGV[1])
redis.call("hdel", KEYS[3], ARGV[1])
return 1
"""
# KEYS: ledger, messages, requeues, dead, dead index. ARGV: id, deadline, message. A dead letter comes back.
REVIVE = """
redis.call("zadd", KEYS[1], ARGV[2], ARGV[1])
redis.call("hset", KEYS[2], ARGV[1], ARGV[3])
redis.call("hdel", KEYS[3], ARGV[1])
redis.call("hdel", KEYS[4], ARGV[1])
redis.call("zrem", KEYS[5], ARGV[1])
return 1
"""


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return time.time_ns() // 1_000_000


def done_key(event_id: str) -> str:
    """The set of delivery steps that succeeded for an event."""
    return DONE_PREFIX + ledger_id(event_id)


def flush_id(resource_type: str, token: str) -> str:
    """The ledger's id for one scheduled batch flush (a unit of work like an event)."""
    return f"flush:{resource_type}:{token}"


def backfill_id(gap_id: str, family: str) -> str:
    """The ledger's id for the backfill of one family of one gap (workers/backfill.py)."""
    return f"backfill:{gap_id}:{family}"


def forward_id(destination: str, event_id: str) -> str:
    """The ledger's id for forwarding one event to one HTTP output."""
    return f"forward:{destination}:{event_id}"


def work_id_of(message: Message[Any] | Any) -> str | None:
    """What a message does that the ledger tracks: its event, the batch flush or the forward it runs; else
    None."""
    actor = getattr(message, "actor_name", None)
    args = tuple(getattr(message, "args", ()))
    if actor == FLUSH_ACTOR_NAME:
        if len(args) == 2 and all(isinstance(arg, str) for arg in args):
            return flush_id(args[0], args[1])
        return None
    if actor == BACKFILL_ACTOR_NAME:
        if len(args) == 2 and all(isinstance(arg, str) for arg in args):
            return backfill_id(args[0], args[1])
        return None
    if actor == FORWARD_ACTOR_NAME:
        forward = forward_of(message)
        return forward_id(*forward) if forward is not None else None
    return event_id_of(message)


def forward_of(message: Message[Any] | Any) -> tuple[str, str] | None:
    """The (output, event id) a forward message delivers, else None."""
    args = tuple(getattr(message, "args", ()))
    if getattr(message, "actor_name", None) != FORWARD_ACTOR_NAME or len(args) != 4:
        return None
    if not all(isinstance(arg, str) for arg in args):
        return None
    return args[0], args[1]


def event_id_of(message: Message[Any] | Any) -> str | None:
    """The event a message carries (its single argument is a persisted callback), else None."""
    args: tuple[Any, ...] = tuple(getattr(message, "args", ()))
    if len(args) == 1 and isinstance(args[0], dict):
        event_id = args[0].get("event_id")
        return event_id if isinstance(event_id, str) else None
    return None


@dataclass
class DeliveryLedger:
    """The ledger's operations for workers, the reconciler and the `dlq` command.

    Parameters:
      client: Redis (the broker's server).
      done_ttl_seconds: how long done marks are kept (the dedup window).
    """

    client: redis.Redis
    done_ttl_seconds: int

    def __post_init__(self) -> None:
        self._extend: Any = self.client.register_script(EXTEND)
        self._track: Any = self.client.register_script(TRACK)
        self._finish: Any = self.client.register_script(FINISH)
        self._dead_letter: Any = self.client.register_script(DEAD_LETTER)
        self._revive: Any = self.client.register_script(REVIVE)

    def claim(self, event_id: str, lease_ms: int = PROCESSING_LEASE_MS) -> bool:
        """Extend the lease of an event a worker starts on; False when it already left the ledger."""
        return bool(self._extend(keys=[LEDGER_KEY], args=[ledger_id(event_id), now_ms() + lease_ms]))

    def extend(self, event_ids: Iterable[str], lease_ms: int) -> list[bool]:
        """Extend the leases of several events; for each, whether it was still in the ledger."""
        deadline = now_ms() + lease_ms
        pipeline = self.client.pipeline(transaction=False)
        for event_id in event_ids:
            self._extend(keys=[LEDGER_KEY], args=[ledger_id(event_id), deadline], client=pipeline)
        return [bool(answer) for answer in pipeline.execute()]

    def open(self, work_id: str, message: Message[Any], lease_ms: int) -> None:
        """Add a unit of work the workers create themselves (a batch flush), before its message is sent."""
        pipeline = self.client.pipeline()
        pipeline.hset(LEDGER_MESSAGES_KEY, ledger_id(work_id), message.encode())
        pipeline.zadd(LEDGER_KEY, {ledger_id(work_id): now_ms() + lease_ms})
        pipeline.execute()

    def forget(self, work_id: str) -> None:
        """Drop a unit of work that needs no more tracking: a delivered forward, or a flush that ran or
        failed (its events have their own entries)."""
        pipeline = self.client.pipeline()
        pipeline.zrem(LEDGER_KEY, ledger_id(work_id))
        pipeline.hdel(LEDGER_MESSAGES_KEY, ledger_id(work_id))
        pipeline.hdel(REQUEUES_KEY, ledger_id(work_id))
        pipeline.execute()

    def track(self, message: Message[Any], delay_ms: int) -> bool:
        """Record the message an unfinished event was just enqueued as, with a lease covering its delay."""
        work_id = work_id_of(message)
        if work_id is None:
            return False
        deadline = now_ms() + delay_ms + QUEUED_LEASE_MS
        keys = [LEDGER_KEY, LEDGER_MESSAGES_KEY]
        return bool(self._track(keys=keys, args=[ledger_id(work_id), deadline, message.encode()]))

    def finish(self, event_id: str) -> None:
        """The event is delivered: mark it complete and remove it from the ledger, in one step."""
        keys = [done_key(event_id), LEDGER_KEY, LEDGER_MESSAGES_KEY, REQUEUES_KEY]
        self._finish(keys=keys, args=[ledger_id(event_id), self.done_ttl_seconds])

    def is_complete(self, event_id: str) -> bool:
        """Whether every delivery step of the event has succeeded."""
        return bool(self.client.sismember(done_key(event_id), COMPLETE))

    def dead_letter(self, event_id: str, letter: dict[str, Any]) -> bool:
        """Move an unfinished event to the dead letters with its reason; False when it had left the ledger."""
        return self.dead_letter_entry(ledger_id(event_id), letter)

    def dead_letter_entry(self, entry: str, letter: dict[str, Any]) -> bool:
        """`dead_letter` for a ledger id."""
        keys = [LEDGER_KEY, LEDGER_MESSAGES_KEY, REQUEUES_KEY, DEAD_KEY, DEAD_INDEX_KEY]
        return bool(self._dead_letter(keys=keys, args=[entry, json.dumps(letter, default=str), now_ms()]))

    def revive(self, entry: str, message: Message[Any]) -> None:
        """Put a dead-lettered event (by ledger id) back in the ledger, before its message is enqueued."""
        keys = [LEDGER_KEY, LEDGER_MESSAGES_KEY, REQUEUES_KEY, DEAD_KEY, DEAD_INDEX_KEY]
        args = [entry, now_ms() + QUEUED_LEASE_MS, message.encode()]
        self._revive(keys=keys, args=args)

    def pending(self) -> int:
        """How many units of work (events, batch flushes, forwards) are not yet finished or dead-lettered."""
        return int(self.client.zcard(LEDGER_KEY))


@dataclass(frozen=True)
class SweepReport:
    """What one sweep found among the expired leases."""

    waiting: int = 0
    requeued: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True)
class Whereabouts:
    """Where the reconciler found a ledger entry's latest message."""

    stored: bool  # its body is in the queue's message hash
    queued: bool  # it waits in the queue's list, held by no live worker
    ack_sets: tuple[str, ...]  # the live workers' ack sets holding it


class Reconciler:
    """Re-enqueues every unfinished event whose lease ran out and whose message is no longer waiting.

    Parameters:
      ledger: the delivery ledger.
      broker: the broker new messages are enqueued on.
      limit: the most expired entries one sweep handles.
    """

    def __init__(self, ledger: DeliveryLedger, broker: Broker, limit: int = DEFAULT_SWEEP_LIMIT) -> None:
        self.ledger = ledger
        self.client = ledger.client
        self.broker = broker
        self.limit = limit

    def sweep(self) -> SweepReport:
        """Handle every expired lease once."""
        expired: list[bytes] = self.client.zrangebyscore(  # type: ignore[assignment]
            LEDGER_KEY, "-inf", now_ms(), start=0, num=self.limit
        )
        if not expired:
            return SweepReport()
        payloads: list[bytes | None] = self.client.hmget(LEDGER_MESSAGES_KEY, expired)  # type: ignore[assignment]
        messages = {
            entry.decode(): _decoded(payload) for entry, payload in zip(expired, payloads, strict=True)
        }
        found = self._whereabouts({key: m for key, m in messages.items() if m is not None})
        waiting = {key for key, where in found.items() if where.queued}
        if waiting:
            pipeline = self.client.pipeline(transaction=False)
            pipeline.zadd(LEDGER_KEY, dict.fromkeys(waiting, now_ms() + QUEUED_LEASE_MS), xx=True)
            pipeline.execute()
        requeued = dead = 0
        for key, message in messages.items():
            if key in waiting:
                continue
            if self._requeue(key, message):
                requeued += 1
            else:
                dead += 1
            where = found.get(key)
            if message is not None and where is not None and where.stored:
                self._release(message, where.ack_sets)
        report = SweepReport(len(waiting), requeued, dead)
        log.info("ledger.swept", waiting=report.waiting, requeued=requeued, dead_lettered=dead)
        return report

    def _whereabouts(self, messages: dict[str, Message[Any]]) -> dict[str, Whereabouts]:
        """Where each entry's latest message is: in its queue's list, in live workers' ack sets, or neither.

        A message stored but neither queued nor held by a live worker is stranded: Dramatiq drops a consumer's
        prefetched and delayed messages when its connection fails, leaving them in that worker's ack set (or,
        once the worker is gone from the heartbeats, nowhere) for as long as it lives.
        """
        brokers = [member.decode() for member in self.client.zrange(HEARTBEATS_KEY, 0, -1)]  # type: ignore[union-attr]
        pipeline = self.client.pipeline(transaction=False)
        order = list(messages.items())
        for _, message in order:
            rid = message.options.get("redis_message_id", "")
            queue = message.queue_name
            pipeline.hexists(f"{DRAMATIQ_NAMESPACE}:{queue}.msgs", rid)
            pipeline.lpos(f"{DRAMATIQ_NAMESPACE}:{queue}", rid)
            for broker_id in brokers:
                pipeline.sismember(f"{DRAMATIQ_NAMESPACE}:__acks__.{broker_id}.{queue}", rid)
        answers = iter(pipeline.execute())
        found: dict[str, Whereabouts] = {}
        for key, message in order:
            stored = bool(next(answers))
            listed = next(answers) is not None
            held = [broker_id for broker_id in brokers if next(answers)]  # read every answer of this entry
            queue = message.queue_name
            acks = tuple(f"{DRAMATIQ_NAMESPACE}:__acks__.{broker_id}.{queue}" for broker_id in held)
            found[key] = Whereabouts(stored=stored, queued=stored and listed and not held, ack_sets=acks)
        return found

    def _release(self, message: Message[Any], ack_sets: tuple[str, ...]) -> None:
        """Drop a stranded copy (a fetch whose reply never arrived, a message a consumer dropped) once the
        event was enqueued again.

        A worker that does hold it and acks it later only finds nothing left to remove.
        """
        rid = message.options.get("redis_message_id", "")
        pipeline = self.client.pipeline()
        for ack_set in ack_sets:
            pipeline.srem(ack_set, rid)
        pipeline.hdel(f"{DRAMATIQ_NAMESPACE}:{message.queue_name}.msgs", rid)
        pipeline.execute()

    def _requeue(self, key: str, message: Message[Any] | None) -> bool:
        """Enqueue the event again; False when it was dead-lettered instead."""
        count = int(self.client.hincrby(REQUEUES_KEY, key, 1))
        work_id = work_id_of(message) if message is not None else None
        if message is None or work_id is None or count > MAX_REQUEUES:
            reason = (
                f"not finished after {MAX_REQUEUES} re-enqueues (its message was lost or its worker died "
                "each time)"
                if message is not None
                else "ledger entry without a readable message"
            )
            self._dead_letter_entry(key, message, reason)
            return False
        fresh = fresh_copy(message)
        self.broker.enqueue(fresh)
        log.warning(
            "ledger.requeued",
            work=work_id,
            requeues=count,
            was=f"{message.queue_name}/{message.options.get('redis_message_id')}",
        )
        return True

    def _dead_letter_entry(self, key: str, message: Message[Any] | None, reason: str) -> None:
        letter = dead_letter_record(message, reason, retries=None) if message else {"error": reason}
        self.ledger.dead_letter_entry(key, letter)
        log.error("callback.dead_lettered", ledger_id=key, error=reason)


def dead_letter_record(message: Message[Any], error: str, retries: int | None) -> dict[str, Any]:
    """The dead letter of an event (or of one forward, naming its `destination`): the reason, and the
    message that can enqueue it again."""
    forward = forward_of(message)
    if forward is not None:
        return {
            "event_id": forward[1],
            "scope": message.args[2],
            "destination": forward[0],
            "error": error,
            "retries": retries,
            "failed_at": int(time.time()),
            "message": message.encode().decode(),
        }
    callback = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
    envelope = callback.get("envelope") if isinstance(callback.get("envelope"), dict) else {}
    return {
        "event_id": callback.get("event_id"),
        "scope": envelope.get("scope") if isinstance(envelope, dict) else None,
        "error": error,
        "retries": retries,
        "failed_at": int(time.time()),
        "message": message.encode().decode(),
    }


def _decoded(payload: bytes | None) -> Message[Any] | None:
    if payload is None:
        return None
    try:
        return Message.decode(payload)
    except Exception:  # a damaged entry is dead-lettered with its reason, never retried forever
        return None


def fresh_copy(message: Message[Any], keep_retries: bool = True) -> Message[Any]:
    """The same message for its main queue again: no eta, no Redis id, the retry count kept or not."""
    dropped = DROPPED_OPTIONS if keep_retries else (*DROPPED_OPTIONS, "retries")
    options = {key: value for key, value in message.options.items() if key not in dropped}
    queue = message.queue_name.removesuffix(".DQ").removesuffix(".XQ")
    return Message(
        queue_name=queue,
        actor_name=message.actor_name,
        args=message.args,
        kwargs=message.kwargs,
        options=options,
        message_id=message.message_id,
        message_timestamp=message.message_timestamp,
    )


class ReconcilerThread:
    """Runs `Reconciler.sweep` every `interval` seconds in a daemon thread, one sweep at a time anywhere.

    Parameters:
      reconciler: what to run.
      interval: seconds between sweeps (a Redis lock that expires after it keeps sweeps from overlapping).
    """

    def __init__(self, reconciler: Reconciler, interval: float = DEFAULT_SWEEP_INTERVAL_SECONDS) -> None:
        self.reconciler = reconciler
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bcwebhooks-reconciler", daemon=True)

    def start(self) -> None:
        """Start sweeping."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current sweep."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval * 2)

    def _run(self) -> None:
        client = self.reconciler.client
        while not self._stop.wait(self.interval):
            try:
                if client.set(RECONCILER_LOCK_KEY, "1", nx=True, px=int(self.interval * 900)):
                    self.reconciler.sweep()
            except Exception as error:  # Redis down or stalled: try again next interval
                log.warning("ledger.sweep_failed", error=f"{type(error).__name__}: {error}")
