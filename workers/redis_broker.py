"""Dramatiq's Redis broker, with every lost or stalled Redis connection reported as a connection error.

Dramatiq's consumer thread recovers from a `BrokerConnectionError` by dropping its in-memory delay queue
and reconnecting. Any other exception sends it down a path that first requeues that delay queue, and
when Redis is still away that requeue raises a plain `redis.ConnectionError` out of the thread: the
thread dies and its queue is never read again by that process while its heartbeat says it is alive. It
happened here when Redis went down just as a delayed forward fell due (the delay consumer's `enqueue`
is not translated), and a stalled Redis (`redis.TimeoutError`) takes the same path from any call.

The translated errors stay `redis` errors too, so callers that catch `redis.RedisError` are unchanged.

A delay consumer that recovers from a connection error has dropped the messages it held in memory; they
stay in this process's ack set, where nothing takes them back while the process lives (the ledger's
reconciler would, once their lease ran out). Each new delay consumer puts them back at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
import structlog
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import q_name
from dramatiq.errors import ConnectionClosed

log = structlog.get_logger("bcwebhooks.workers")


class RedisConnectionLost(redis.ConnectionError, ConnectionClosed):
    """Redis refused or dropped the connection."""


class RedisStalled(redis.TimeoutError, ConnectionClosed):
    """Redis did not answer within the socket timeout."""


@contextmanager
def connection_errors() -> Iterator[None]:
    """Re-raise redis-py's connection and timeout errors as errors Dramatiq recovers from."""
    try:
        yield
    except (RedisConnectionLost, RedisStalled):
        raise
    except redis.ConnectionError as error:
        raise RedisConnectionLost(str(error)) from error
    except redis.TimeoutError as error:
        raise RedisStalled(str(error)) from error


class ResilientRedisConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer with every call's connection errors translated."""

    def ack(self, message: Any) -> None:
        """Acknowledge `message` on this consumer's queue."""
        with connection_errors():
            super().ack(message)  # type: ignore[no-untyped-call]

    def nack(self, message: Any) -> None:
        """Move `message` to the dead-letter queue."""
        with connection_errors():
            super().nack(message)  # type: ignore[no-untyped-call]

    def requeue(self, messages: Iterable[Any]) -> None:
        """Put `messages` back on their queue."""
        with connection_errors():
            super().requeue(messages)  # type: ignore[no-untyped-call]

    def __next__(self) -> Any:
        with connection_errors():
            return super().__next__()  # type: ignore[no-untyped-call]


class ResilientRedisBroker(RedisBroker):
    """A RedisBroker whose consumers and enqueues raise connection errors Dramatiq recovers from."""

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> ResilientRedisConsumer:
        """A consumer of `queue_name` (translated); a delay queue's strays are put back first."""
        if q_name(queue_name) != queue_name:
            self.requeue_stranded(queue_name)
        return ResilientRedisConsumer(self, queue_name, prefetch, timeout)  # type: ignore[no-untyped-call]

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        """Enqueue `message` (the delay consumer calls this when a delayed message falls due)."""
        with connection_errors():
            return super().enqueue(message, delay=delay)

    def requeue_stranded(self, delay_queue: str) -> int:
        """Put back what this process's ack set of `delay_queue` holds; how many.

        Only a delay consumer's thread moves messages in and out of that set, and it holds none in memory
        when it (re)starts: whatever the set holds then was dropped with its previous delay queue.
        """
        with connection_errors():
            members = self.client.smembers(self.acks_key(delay_queue))
            stranded = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
            if stranded:
                self.do_requeue(delay_queue, *stranded)
        if stranded:
            log.warning("worker.delayed_messages_requeued", queue=delay_queue, count=len(stranded))
        return len(stranded)

    def acks_key(self, queue_name: str) -> str:
        """The set of `queue_name`'s messages this process has fetched and not yet acknowledged."""
        return f"{self.namespace}:__acks__.{self.broker_id}.{queue_name}"
