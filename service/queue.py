"""Durable, deduplicated hand-off of accepted callbacks to the Dramatiq queue in Redis."""

from __future__ import annotations

import hashlib
import uuid
from importlib.resources import files
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from service.events import PersistedCallback, build_message

DRAMATIQ_NAMESPACE = "dramatiq"
DEDUP_PREFIX = "bcwebhooks:seen:"
DEFAULT_SOCKET_TIMEOUT_SECONDS = 2.0
PERSIST_ONCE_SCRIPT = files("service").joinpath("persist_once.lua").read_text()


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


class EventQueue:
    """Persists each callback at most once per dedup window, atomically with its Dramatiq enqueue.

    Parameters:
      client: an asyncio Redis client (see `connect`).
      dedup_window_seconds: how long an event id is remembered.
    """

    def __init__(self, client: aioredis.Redis, dedup_window_seconds: int) -> None:
        self.client = client
        self.dedup_window_seconds = dedup_window_seconds
        self._persist_once: Any = client.register_script(PERSIST_ONCE_SCRIPT)

    async def persist_once(self, callback: PersistedCallback) -> bool:
        """Enqueue the callback unless its event id was seen; True when enqueued, False for a duplicate."""
        message = build_message(callback)
        redis_message_id = str(uuid.uuid4())
        message = message.copy(options={"redis_message_id": redis_message_id})
        queue = f"{DRAMATIQ_NAMESPACE}:{message.queue_name}"
        try:
            result = await self._persist_once(
                keys=[dedup_key(callback["event_id"]), queue, f"{queue}.msgs"],
                args=[self.dedup_window_seconds, redis_message_id, message.encode()],
            )
        except (RedisError, OSError) as error:
            raise QueueUnavailable(type(error).__name__) from error
        return bool(result)

    async def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        """Release the connection pool."""
        await self.client.aclose()
