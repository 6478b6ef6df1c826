"""Coalescing: during a storm, catalog events wait a short window and are resolved with one batch fetch.

Every webhook still yields its own processed event (created and deleted ones included: events are never
merged, only their fetches), and each record is fetched once per window, after the window, so it is the
latest. Below `threshold_per_second` events of a type, events are resolved at once and pay no window.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from service.events import LEDGER_KEY, PersistedCallback, ledger_id

DEFAULT_WINDOW_MS = 1000
DEFAULT_THRESHOLD_PER_SECOND = 20
STORM_HOLD_WINDOWS = 3

# KEYS: pending list, scheduled flag, the delivery ledger. ARGV: callback JSON, flag TTL ms, the event's
# ledger id, its new lease deadline (the flush comes after the window; see workers/ledger.py).
# Returns 1 when the caller must schedule a flush (none is scheduled yet).
ADD = """
redis.call("rpush", KEYS[1], ARGV[1])
if redis.call("zscore", KEYS[3], ARGV[3]) then
    redis.call("zadd", KEYS[3], ARGV[4], ARGV[3])
end
if redis.call("set", KEYS[2], "1", "NX", "PX", ARGV[2]) then
    return 1
end
return 0
"""
# KEYS: pending list, scheduled flag, processing list. Takes the pending events, or resumes a crashed flush.
# The scheduled flag stays until RELEASE, so that events parked meanwhile wait for a flush that starts a
# whole window after this one's fetch, never sooner.
TAKE = """
if redis.call("exists", KEYS[3]) == 0 then
    if redis.call("exists", KEYS[1]) == 1 then
        redis.call("rename", KEYS[1], KEYS[3])
    end
end
return redis.call("lrange", KEYS[3], 0, -1)
"""
# KEYS: pending list, scheduled flag. ARGV: flag TTL ms. A flush has ended: returns 1 when events parked
# meanwhile need the next flush (the flag is then set again for it), else clears the flag.
RELEASE = """
if redis.call("exists", KEYS[1]) == 1 then
    redis.call("set", KEYS[2], "1", "PX", ARGV[1])
    return 1
end
redis.call("del", KEYS[2])
return 0
"""


@dataclass
class Coalescer:
    """Parks catalog callbacks per resource type and hands them to a flush as one batch.

    Parameters:
      client: Redis (shared by every worker).
      store_hash: keys are per store.
      window_ms: how long events wait for others of their type during a storm.
      threshold_per_second: events of one type per second from which coalescing starts.
    """

    client: redis.Redis
    store_hash: str
    window_ms: int = DEFAULT_WINDOW_MS
    threshold_per_second: int = DEFAULT_THRESHOLD_PER_SECOND

    def __post_init__(self) -> None:
        self._add: Any = self.client.register_script(ADD)
        self._take: Any = self.client.register_script(TAKE)
        self._release: Any = self.client.register_script(RELEASE)

    def _key(self, resource_type: str, part: str) -> str:
        return f"bcwebhooks:coalesce:{self.store_hash}:{resource_type}:{part}"

    def storming(self, resource_type: str) -> bool:
        """Count this event; True while its type arrives faster than the threshold.

        A storm, once seen, lasts STORM_HOLD_WINDOWS windows past its last busy second, so that the first
        events of each second are not fetched one by one.
        """
        second = int(time.time())
        rate_key = self._key(resource_type, f"rate:{second}")
        storm_key = self._key(resource_type, "storm")
        pipeline = self.client.pipeline()
        pipeline.incr(rate_key)
        pipeline.expire(rate_key, 5)
        pipeline.exists(storm_key)
        count, _, storm = pipeline.execute()
        if int(count) > self.threshold_per_second:
            self.client.set(storm_key, 1, px=max(2000, self.window_ms * STORM_HOLD_WINDOWS))
            return True
        return bool(storm)

    def add(self, resource_type: str, callback: PersistedCallback, lease_deadline_ms: int) -> bool:
        """Park a callback, extending its ledger lease to `lease_deadline_ms`; True when the caller must
        schedule the flush."""
        keys = [self._key(resource_type, "pending"), self._key(resource_type, "scheduled"), LEDGER_KEY]
        args = [json.dumps(callback), self.window_ms * 4, ledger_id(callback["event_id"]), lease_deadline_ms]
        return bool(self._add(keys=keys, args=args))

    def take(self, resource_type: str, token: str) -> list[PersistedCallback]:
        """The parked callbacks for flush `token` (the same ones again if that flush is retried)."""
        keys = [
            self._key(resource_type, "pending"),
            self._key(resource_type, "scheduled"),
            self._key(resource_type, f"processing:{token}"),
        ]
        return [json.loads(raw) for raw in self._take(keys=keys)]

    def release(self, resource_type: str) -> bool:
        """A flush of this type has ended; True when the caller must schedule the next one."""
        keys = [self._key(resource_type, "pending"), self._key(resource_type, "scheduled")]
        return bool(self._release(keys=keys, args=[self.window_ms * 4]))

    def done(self, resource_type: str, token: str) -> None:
        """Forget a flush whose events were all delivered."""
        self.client.delete(self._key(resource_type, f"processing:{token}"))
