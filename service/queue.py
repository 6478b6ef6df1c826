"""Durable, deduplicated hand-off of accepted callbacks to the Dramatiq queue in Redis.

Group commit: callbacks that arrive while a write is in flight are written together by the next one (one
Lua call, one round trip), so under load the per-request Redis cost is shared by a batch. Nothing is
loosened: each request is answered only after Redis has confirmed its own callback (or found it a
duplicate), and a failed write fails every request in that batch with `QueueUnavailable`. When requests
come one at a time, each batch holds one callback and nothing waits for a timer.

With `min_replicas`, a write is confirmed only once that many replicas have it: the writer pipelines
Redis's `WAIT` after the script, on the same connection, and a batch short of replicas fails with
`NotReplicated` (503; the callback stays persisted on the primary and is processed, and BigCommerce's
retry finds it a duplicate). A duplicate is no proof either: its first write may have come from another
receiver and not reached the replicas yet, so a batch that enqueued nothing writes a probe key
(persist_once.lua), which makes the `WAIT` cover everything the primary had written before it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from service.events import (
    INSTALLED_STORES_KEY,
    LEDGER_KEY,
    LEDGER_MESSAGES_KEY,
    QUEUED_LEASE_MS,
    PersistedCallback,
    encode_message,
    is_catalog_scope,
    ledger_id,
)
from service.lanes import StormLanes
from service.redis_connection import async_client, close_async
from service.settings import DEFAULT_REPLICA_TIMEOUT_MS

DRAMATIQ_NAMESPACE = "dramatiq"
DEDUP_PREFIX = "bcwebhooks:seen:"
PROBE_KEY = "bcwebhooks:replication:probe"  # written by a batch that enqueued nothing, when WAIT follows
DEFAULT_SOCKET_TIMEOUT_SECONDS = 2.0
DEFAULT_MAX_BATCH = 128
ENQUEUED = ord("1")  # the script's per-callback outcome bytes
NOT_INSTALLED = ord("2")
PERSIST_ONCE_SCRIPT = files("service").joinpath("persist_once.lua").read_text()
PERSIST_KEYS = [LEDGER_KEY, LEDGER_MESSAGES_KEY, INSTALLED_STORES_KEY]


class MessageIds:
    """UUID-shaped message ids, unique across processes, without a getrandom() call per request.

    Each instance draws its prefix once (the first 24 characters of a uuid4: 74 random bits), then
    counts; the last 12 hex digits are the counter.
    """

    def __init__(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]
        self._counter = itertools.count()

    def next(self) -> str:
        """The next id."""
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


class QueueUnavailable(Exception):
    """Redis could not be reached or refused the write; the callback was not persisted."""


class NotReplicated(QueueUnavailable):
    """The primary has the write, but fewer replicas than required confirmed it in time."""


class StoreNotInstalled(Exception):
    """App mode: the callback's store does not have the app installed; nothing was persisted."""


def dedup_key(event_id: str) -> str:
    """The Redis key that marks an event id as seen (hashed to bound its length)."""
    return DEDUP_PREFIX + ledger_id(event_id)


def connect(redis_url: str, timeout_seconds: float = DEFAULT_SOCKET_TIMEOUT_SECONDS) -> aioredis.Redis:
    """An asyncio Redis client for the web tier (any URL form of service/redis_connection.py): short
    timeouts, no silent retry loops."""
    return async_client(
        redis_url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )


@dataclass(slots=True)
class _Pending:
    """One callback waiting for the next write, framed for the script, and the future its request awaits."""

    frame: bytes
    outcome: asyncio.Future[bool]


def frame(dedup: str, queue: str, redis_message_id: str, payload: bytes, store: str = "") -> bytes:
    """One callback as persist_once.lua reads it: five `<length>:<bytes>` fields."""
    key, name, message_id, check = dedup.encode(), queue.encode(), redis_message_id.encode(), store.encode()
    return b"%d:%s%d:%s%d:%s%d:%s%d:%s" % (
        len(key), key, len(name), name, len(message_id), message_id, len(payload), payload, len(check), check,
    )  # fmt: skip


class EventQueue:
    """Persists each callback once per dedup window, atomically with its enqueue and its ledger entry.

    The delivery ledger is what the workers' reconciler sweeps (workers/ledger.py).

    Parameters:
      client: an asyncio Redis client (see `connect`).
      dedup_window_seconds: how long an event id is remembered.
      max_batch: the most callbacks one write carries.
      min_replicas: replicas that must confirm a write before it counts (Redis WAIT); 0 for none.
      replica_timeout_ms: how long a write waits for them.
      lanes: sends a storming store's catalog callbacks to the bulk lane (service/lanes.py); None: never.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        dedup_window_seconds: int,
        max_batch: int = DEFAULT_MAX_BATCH,
        min_replicas: int = 0,
        replica_timeout_ms: int = DEFAULT_REPLICA_TIMEOUT_MS,
        lanes: StormLanes | None = None,
    ) -> None:
        self.client = client
        self.dedup_window_seconds = dedup_window_seconds
        self.max_batch = max_batch
        self.min_replicas = min_replicas
        self.replica_timeout_ms = replica_timeout_ms
        self.lanes = lanes
        self._ids = MessageIds()
        self._persist_once: Any = client.register_script(PERSIST_ONCE_SCRIPT)
        self._waiting: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # Redis calls made, for the benchmark and the tests

    async def persist_once(self, callback: PersistedCallback, installed_store: str = "") -> bool:
        """Enqueue the callback unless its event id was seen; True when enqueued, False for a duplicate.

        `installed_store` (app mode): refuse the callback, raising StoreNotInstalled, unless that store has
        the app installed. Raises QueueUnavailable when Redis did not confirm the write.
        """
        redis_message_id = self._ids.next()
        bulk = self._bulk(callback)
        queue_name, payload = encode_message(callback, redis_message_id, time.time_ns() // 1_000_000, bulk)
        queue = f"{DRAMATIQ_NAMESPACE}:{queue_name}"
        pending = _Pending(
            frame(dedup_key(callback["event_id"]), queue, redis_message_id, payload, installed_store),
            asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(pending)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_waiting())
        return await pending.outcome

    def _bulk(self, callback: PersistedCallback) -> bool:
        envelope = callback["envelope"]
        if self.lanes is None or not is_catalog_scope(str(envelope.get("scope", ""))):
            return False
        return self.lanes.bulk(str(envelope.get("producer", "")))

    async def _write_waiting(self) -> None:
        """Write batches until nobody waits; one write in flight at a time."""
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                await self._write(batch)
        except BaseException as error:
            # Cancelled (shutdown) or a bug: nobody may be left waiting on an answer that never comes.
            for pending in self._waiting:
                _fail(pending, QueueUnavailable(type(error).__name__))
            self._waiting.clear()
            raise
        finally:
            self._writer = None

    async def _write(self, batch: list[_Pending]) -> None:
        self.writes += 1
        args = [
            self.dedup_window_seconds,
            b"".join(pending.frame for pending in batch),
            time.time_ns() // 1_000_000 + QUEUED_LEASE_MS,
            PROBE_KEY if self.min_replicas else "",
        ]
        confirmed = self.min_replicas  # unless WAIT says otherwise
        try:
            if self.min_replicas:
                outcomes, confirmed = await self._persist_and_wait(args)
            else:
                outcomes = await self._persist_once(keys=PERSIST_KEYS, args=args)
        except BaseException as error:
            reason = type(error).__name__
            for pending in batch:
                _fail(pending, QueueUnavailable(reason))
            if isinstance(error, RedisError | OSError):
                return
            raise
        if len(outcomes) != len(batch):
            for pending in batch:
                _fail(pending, QueueUnavailable("unexpected script reply"))
            return
        if confirmed < self.min_replicas:
            wanted, timeout = self.min_replicas, self.replica_timeout_ms
            reason = f"{confirmed} of {wanted} replicas confirmed within {timeout} ms"
            for pending in batch:
                _fail(pending, NotReplicated(reason))
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.outcome.done():
                continue
            if outcome == NOT_INSTALLED:
                pending.outcome.set_exception(StoreNotInstalled())
            else:
                pending.outcome.set_result(outcome == ENQUEUED)

    async def _persist_and_wait(self, args: list[Any]) -> tuple[bytes, int]:
        """The script, then WAIT, pipelined on one connection (WAIT counts its own connection's writes).

        A pipeline takes a connection from the pool, which asks the Sentinels for the primary when it
        reconnects. A server without the script (a new primary after a failover) gets it loaded, once.
        """
        keys = PERSIST_KEYS
        for attempt in range(2):
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.evalsha(self._persist_once.sha, len(keys), *keys, *args)
                pipe.wait(self.min_replicas, self.replica_timeout_ms)
                try:
                    outcomes, confirmed = await pipe.execute()
                except NoScriptError:
                    if attempt:
                        raise
                    await self.client.script_load(PERSIST_ONCE_SCRIPT)
                    continue
            return outcomes, int(confirmed)
        raise AssertionError("unreachable")

    async def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Release the connection pool (and the Sentinel connections, if any)."""
        await close_async(self.client)


def _fail(pending: _Pending, error: QueueUnavailable) -> None:
    if not pending.outcome.done():
        pending.outcome.set_exception(error)


def persist_now(client: redis.Redis, callback: PersistedCallback, dedup_window_seconds: int) -> bool:
    """`EventQueue.persist_once` for one callback on a synchronous client (commands, not the hot path)."""
    redis_message_id = str(uuid.uuid4())
    queue_name, payload = encode_message(callback, redis_message_id, time.time_ns() // 1_000_000)
    script: Any = client.register_script(PERSIST_ONCE_SCRIPT)
    framed = frame(
        dedup_key(callback["event_id"]), f"{DRAMATIQ_NAMESPACE}:{queue_name}", redis_message_id, payload
    )
    outcome = script(
        keys=[LEDGER_KEY, LEDGER_MESSAGES_KEY, INSTALLED_STORES_KEY],
        args=[dedup_window_seconds, framed, time.time_ns() // 1_000_000 + QUEUED_LEASE_MS],
    )
    return bytes(outcome)[:1] == b"1"
