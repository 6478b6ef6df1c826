"""Durable, deduplicated hand-off of accepted callbacks to the Dramatiq queue in Redis.

Group commit: callbacks that arrive while a write is in flight are written together by the next one (one
Lua call, one round trip), so under load the per-request Redis cost is shared by a batch. Nothing is
loosened: each request is answered only after Redis has confirmed its own callback (or found it a
duplicate), and a failed write fails every request in that batch with `QueueUnavailable`. When requests
come one at a time, each batch holds one callback and nothing waits for a timer.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
import uuid
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from service.events import PersistedCallback, encode_message

DRAMATIQ_NAMESPACE = "dramatiq"
DEDUP_PREFIX = "bcwebhooks:seen:"
DEFAULT_SOCKET_TIMEOUT_SECONDS = 2.0
DEFAULT_MAX_BATCH = 128
ENQUEUED = ord("1")  # the script's per-callback outcome byte
PERSIST_ONCE_SCRIPT = files("service").joinpath("persist_once.lua").read_text()


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


def dedup_key(event_id: str) -> str:
    """The Redis key that marks an event id as seen (hashed to bound its length)."""
    return DEDUP_PREFIX + hashlib.sha256(event_id.encode()).hexdigest()


def connect(redis_url: str, timeout_seconds: float = DEFAULT_SOCKET_TIMEOUT_SECONDS) -> aioredis.Redis:
    """An asyncio Redis client for the web tier: short timeouts, no silent retry loops."""
    return aioredis.Redis.from_url(
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


def frame(dedup: str, queue: str, redis_message_id: str, payload: bytes) -> bytes:
    """One callback as persist_once.lua reads it: four `<length>:<bytes>` fields."""
    key, name, message_id = dedup.encode(), queue.encode(), redis_message_id.encode()
    return b"%d:%s%d:%s%d:%s%d:%s" % (
        len(key), key, len(name), name, len(message_id), message_id, len(payload), payload,
    )  # fmt: skip


class EventQueue:
    """Persists each callback at most once per dedup window, atomically with its Dramatiq enqueue.

    Parameters:
      client: an asyncio Redis client (see `connect`).
      dedup_window_seconds: how long an event id is remembered.
      max_batch: the most callbacks one write carries.
    """

    def __init__(
        self, client: aioredis.Redis, dedup_window_seconds: int, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self.client = client
        self.dedup_window_seconds = dedup_window_seconds
        self.max_batch = max_batch
        self._ids = MessageIds()
        self._persist_once: Any = client.register_script(PERSIST_ONCE_SCRIPT)
        self._waiting: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # Redis calls made, for the benchmark and the tests

    async def persist_once(self, callback: PersistedCallback) -> bool:
        """Enqueue the callback unless its event id was seen; True when enqueued, False for a duplicate.

        Raises QueueUnavailable when Redis did not confirm the write.
        """
        redis_message_id = self._ids.next()
        queue_name, payload = encode_message(callback, redis_message_id, time.time_ns() // 1_000_000)
        queue = f"{DRAMATIQ_NAMESPACE}:{queue_name}"
        pending = _Pending(
            frame(dedup_key(callback["event_id"]), queue, redis_message_id, payload),
            asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(pending)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_waiting())
        return await pending.outcome

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
        try:
            outcomes = await self._persist_once(
                args=[self.dedup_window_seconds, b"".join(pending.frame for pending in batch)]
            )
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
        for pending, outcome in zip(batch, outcomes, strict=True):
            if not pending.outcome.done():
                pending.outcome.set_result(outcome == ENQUEUED)

    async def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Release the connection pool."""
        await self.client.aclose()


def _fail(pending: _Pending, error: QueueUnavailable) -> None:
    if not pending.outcome.done():
        pending.outcome.set_exception(error)
