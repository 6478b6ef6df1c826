"""A watch on Dramatiq's consumer threads: one that dies is logged and replaced.

A consumer thread that dies leaves its queue unread by this process while the process's heartbeat says
it is alive, so nothing else takes its messages over (workers/redis_broker.py removes the cause we know).
The messages it held stay in this worker's ack set, where the ledger's reconciler finds them.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
import structlog
from dramatiq.common import q_name

log = structlog.get_logger("bcwebhooks.workers")

DEFAULT_WATCH_INTERVAL_SECONDS = 1.0


def replace_dead_consumers(worker: Any) -> list[str]:
    """Start a new consumer thread for each of `worker`'s queues whose thread has died; their names."""
    replaced = []
    for queue_name, consumer in list(worker.consumers.items()):
        if consumer.is_alive() or not consumer.running:
            continue  # alive, or stopped on purpose (running is cleared by stop())
        log.critical("worker.consumer_died", queue=queue_name)
        del worker.consumers[queue_name]
        worker._add_consumer(queue_name, delay=q_name(queue_name) != queue_name)
        replaced.append(queue_name)
    return replaced


class ConsumerWatch(dramatiq.Middleware):
    """Replaces consumer threads that died (see the module docstring).

    Parameters:
      interval: seconds between looks.
    """

    def __init__(self, interval: float = DEFAULT_WATCH_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._stop = threading.Event()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        """Start watching."""
        self._stop.clear()
        thread = threading.Thread(
            target=self._watch, args=(worker,), name="bcwebhooks-consumer-watch", daemon=True
        )
        thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Stop watching (the worker stops its consumers on purpose now)."""
        self._stop.set()

    def _watch(self, worker: Any) -> None:
        while not self._stop.wait(self.interval):
            try:
                replace_dead_consumers(worker)
            except Exception as error:  # never let the watch itself die silently
                log.error("worker.consumer_watch_failed", error=f"{type(error).__name__}: {error}")
