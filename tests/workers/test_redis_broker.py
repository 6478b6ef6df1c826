"""Dramatiq's consumer threads against a Redis of their own that goes away: they must outlive it."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from tests.servers import RedisProcess, wait_for
from workers.consumer_watch import replace_dead_consumers
from workers.redis_broker import RedisConnectionLost, ResilientRedisBroker, connection_errors

QUEUE = "resilience"
DELAY_QUEUE = f"{QUEUE}.DQ"


class LosableRedis(redis.Redis):
    """A client whose broker writes fail as if Redis had gone away, while `lost` is set: Redis lost right
    after the delay consumer's last poll, before it moves a message that fell due (a window of one poll)."""

    lost = False

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.lost and ("enqueue" in args or "requeue" in args):
            raise redis.ConnectionError("Error 111 connecting to the test's Redis. Connection refused.")
        return super().execute_command(*args, **options)


def start_worker(broker_class: type[RedisBroker], server: RedisProcess) -> tuple[Any, Any, list[int], Any]:
    client = LosableRedis(unix_socket_path=str(server.socket_path), socket_timeout=2)
    broker = broker_class(client=client)
    done: list[int] = []
    actor = dramatiq.actor(done.append, broker=broker, queue_name=QUEUE, actor_name="record")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    return broker, worker, done, actor


def test_the_delay_consumer_outlives_redis_going_away_as_a_delayed_message_falls_due(
    own_redis: RedisProcess,
) -> None:
    broker, worker, done, actor = start_worker(ResilientRedisBroker, own_redis)
    try:
        for number in range(3):  # more than one: Dramatiq requeues the rest of its delay queue on errors
            actor.send_with_options(args=(number,), delay=500)
        consumer = worker.consumers[DELAY_QUEUE]
        wait_for(lambda: consumer.delay_queue.qsize() == 3, 10, "the delayed messages to be fetched")
        broker.client.lost = True
        time.sleep(1.0)  # the messages fall due: moving them fails
        assert worker.consumers[DELAY_QUEUE].is_alive()
        broker.client.lost = False
        # The new delay consumer put back what the old one dropped with its delay queue.
        wait_for(lambda: sorted(done) == [0, 1, 2], 20, "the delayed messages to be processed")
        actor.send_with_options(args=(99,), delay=10)
        wait_for(lambda: 99 in done, 20, "a delayed message sent after Redis came back to be processed")
        assert sorted(done) == [0, 1, 2, 99]
    finally:
        worker.stop(timeout=5_000)
        broker.close()


def test_connection_and_timeout_errors_become_errors_dramatiq_recovers_from_and_stay_redis_errors() -> None:
    for raised in (redis.ConnectionError("refused"), redis.TimeoutError("stalled")):
        with pytest.raises(dramatiq.errors.ConnectionClosed) as caught, connection_errors():
            raise raised
        assert isinstance(caught.value, type(raised))
        assert str(caught.value) == str(raised)
    with pytest.raises(redis.ResponseError), connection_errors():
        raise redis.ResponseError("WRONGTYPE")  # a server's answer is not a connection problem
    assert isinstance(RedisConnectionLost("x"), redis.RedisError)


def test_a_consumer_thread_that_died_is_replaced_and_reads_its_queue_again(own_redis: RedisProcess) -> None:
    broker, worker, done, actor = start_worker(ResilientRedisBroker, own_redis)
    try:
        dead = threading.Thread(target=lambda: None)
        dead.running = True  # type: ignore[attr-defined]  # as a ConsumerThread that crashed leaves it
        dead.start()
        dead.join()
        worker.consumers[QUEUE].stop()
        worker.consumers[QUEUE].join(5)
        worker.consumers[QUEUE] = dead
        assert replace_dead_consumers(worker) == [QUEUE]
        assert worker.consumers[QUEUE].is_alive()
        actor.send(7)
        wait_for(lambda: 7 in done, 20, "a message on the replaced consumer's queue to be processed")
        assert replace_dead_consumers(worker) == []
    finally:
        worker.stop(timeout=5_000)
        broker.close()
