"""Running the hook monitor: exactly one per deployment, every BCWEBHOOKS_MONITOR_INTERVAL seconds.

Every worker process (and `bcwebhooks monitor` without --once) runs a `MonitorLoop` thread that ticks once a
second and tries to hold MONITOR_LOCK_KEY (SET NX PX, renewed by its holder each tick, so the lock of a
holder that died expires within LEADER_TTL_MS and another process takes over). Only the holder runs
passes: every store when the interval is up (the next due time is kept in Redis, so a new holder keeps the
schedule), and any store a deliveryException event or a blocklist asked a pass for (`request_pass`). A
store's pass also holds a per-store lock, so `bcwebhooks monitor --once` never runs beside the loop's pass of
the same store.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import redis
import structlog

from workers.monitor import HookMonitor, PassReport
from workers.monitor_schedule import due_stores

MONITOR_LOCK_KEY = "bcwebhooks:monitor:leader"
NEXT_PASS_KEY = "bcwebhooks:monitor:next"  # noqa: S105 (a Redis key, not a password); when the next pass over every store is due (ms)
PASS_LOCK_PREFIX = "bcwebhooks:monitor:pass:"  # noqa: S105 (a Redis key prefix); + store hash: held while a pass of that store runs
LEADER_TTL_MS = 15_000
PASS_LOCK_TTL_MS = 120_000
TICK_SECONDS = 1.0
DEFAULT_INTERVAL_SECONDS = 300
AFTER_PASS_SECONDS = 15.0
FAILURE_LOG_SECONDS = 30.0

# KEYS: lock. ARGV: token, ttl. Extends the lock when this token holds it.
RENEW = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("pexpire", KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""

log = structlog.get_logger("bcwebhooks.monitor")


@dataclass
class RedisLock:
    """A lock one holder at a time holds for `ttl_ms` unless it renews it.

    Parameters:
      client: Redis.
      key: the lock's key.
      ttl_ms: how long it outlives its holder's last renewal.
    """

    client: redis.Redis
    key: str
    ttl_ms: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def hold(self) -> bool:
        """Take the lock or renew it; False when another holder has it."""
        if self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return True
        return bool(self.client.eval(RENEW, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        """Give the lock up (only if this token holds it)."""
        self.client.eval(RELEASE, 1, self.key, self.token)


def run_store_pass(monitor: HookMonitor, store_hash: str, wait_seconds: float = 0.0) -> PassReport | None:
    """One store's pass under its per-store lock; None when another pass of it runs past `wait_seconds`."""
    lock = RedisLock(monitor.client, PASS_LOCK_PREFIX + store_hash, PASS_LOCK_TTL_MS)
    deadline = time.monotonic() + wait_seconds
    while not lock.hold():
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)
    try:
        return monitor.check_store(store_hash)
    finally:
        lock.release()


@dataclass
class MonitorLoop:
    """The loop that holds the deployment's monitor lock and runs passes when they are due.

    Parameters:
      monitor: what checks a store.
      stores: the stores to check (single-store: the configured one; app mode: every installed store).
      interval: seconds between passes over every store.
      after_pass: called after each tick that ran passes, and every AFTER_PASS_SECONDS while this loop
        holds the lock (alerts are sent from there, those of incidents others recorded too).
    """

    monitor: HookMonitor
    stores: Callable[[], list[str]]
    interval: float = DEFAULT_INTERVAL_SECONDS
    after_pass: Callable[[], None] = lambda: None
    tick_seconds: float = TICK_SECONDS
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _after_pass_at: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.lock = RedisLock(self.monitor.client, MONITOR_LOCK_KEY, LEADER_TTL_MS)

    def start(self) -> None:
        """Tick in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="bcwebhooks-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current tick and give the lock up."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(5.0)
        try:
            self.lock.release()
        except (redis.RedisError, OSError):
            pass  # it expires by itself

    def run(self) -> None:
        """Tick until stopped; Redis or API trouble is logged and the next tick tries again."""
        last_logged = float("-inf")
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
                last_logged = float("-inf")
            except Exception as error:  # Redis down, a bug in one pass: the loop must go on
                if time.monotonic() - last_logged >= FAILURE_LOG_SECONDS:  # one line per 30 s of outage
                    last_logged = time.monotonic()
                    log.warning("monitor.tick_failed", error=f"{type(error).__name__}: {error}")

    def tick(self) -> list[PassReport]:
        """Hold the lock, then run the passes that are due; returns their reports."""
        if not self.lock.hold():
            return []
        client = self.monitor.client
        now = time.time()
        wanted = due_stores(client, now)
        next_pass: Any = client.get(NEXT_PASS_KEY)
        if next_pass is None:
            # A deployment's first pass comes one interval after it starts (nothing to notice before).
            client.set(NEXT_PASS_KEY, int((now + self.interval) * 1000))
        elif int(next_pass) <= now * 1000:
            client.set(NEXT_PASS_KEY, int((now + self.interval) * 1000))
            wanted = [*wanted, *self.stores()]
        reports = []
        for store_hash in dict.fromkeys(wanted):
            if self._stop.is_set() or not self.lock.hold():
                break
            report = run_store_pass(self.monitor, store_hash)
            if report is not None:
                reports.append(report)
        if reports or now - self._after_pass_at >= AFTER_PASS_SECONDS:
            self._after_pass_at = now
            self.after_pass()
        return reports


class Monitoring(dramatiq.Middleware):
    """Runs a MonitorLoop in every worker process (the lock lets one of them run passes).

    Parameters:
      build: makes the loop once the process's worker context exists (after boot).
    """

    def __init__(self, build: Callable[[], MonitorLoop]) -> None:
        self.build = build
        self._loop: MonitorLoop | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        """Start the loop."""
        self._loop = self.build()
        self._loop.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """Stop the loop and release the lock, so another process takes over at once."""
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
