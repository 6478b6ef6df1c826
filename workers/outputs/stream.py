"""The built-in output: every processed event appended to a capped Redis Stream, once per event.

The same step creates the event's forwards (workers/outputs/forwards.py): the Dramatiq messages that POST it
to each matching HTTP output, each entered in the delivery ledger, so that no forward can be lost between
the stream entry and its enqueue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from service.events import LEDGER_KEY, LEDGER_MESSAGES_KEY
from workers.events import ProcessedEvent
from workers.fence import FENCE_TTL_SECONDS, FenceMark, fence_key

# KEYS: the event's done set, the stream, the ledger, the ledger's messages, the store's version fence.
# ARGV: step name, done TTL seconds, maxlen, lease deadline ms, fence field ("" when the record is not
# fenced), version ms, digest, source, fence TTL seconds, number of queued works N, then N times
# (ledger id, queue key, redis message id, encoded message), then the entry's field, value, ...
# The entry, its forwards and the done mark are written in one step, so a retry, a duplicate message or a
# reply lost to a timeout (the XADD was applied, the client gave up) can never append the same event twice,
# and a forward exists exactly when the entry does. Forward messages are written as Dramatiq's RedisBroker
# writes an enqueue (HSET <queue>.msgs id payload; RPUSH <queue> id), as service/persist_once.lua does.
# The version fence (workers/fence.py) is compared and recorded in the same step: a record older than the
# one delivered (or the same one again, when a backfill is involved) is not appended; the step is marked
# done with "fenced" and the verdict returned.
EMIT_ONCE = """
if redis.call("sismember", KEYS[1], ARGV[1]) == 1 then
    return false
end
local fenced = ARGV[5] ~= ""
if fenced then
    local seen = redis.call("hget", KEYS[5], ARGV[5])
    if seen then
        local first = string.find(seen, "|", 1, true)
        local second = string.find(seen, "|", first + 1, true)
        local version = tonumber(string.sub(seen, 1, first - 1))
        local digest = string.sub(seen, first + 1, second - 1)
        local source = string.sub(seen, second + 1)
        local mine = tonumber(ARGV[6])
        local verdict = nil
        if mine < version then
            verdict = "superseded"
        elseif mine == version and digest == ARGV[7] and (ARGV[8] == "backfill" or source == "backfill") then
            verdict = "duplicate"
        end
        if verdict then
            redis.call("sadd", KEYS[1], ARGV[1], "fenced")
            redis.call("expire", KEYS[1], ARGV[2])
            return "fenced:" .. verdict
        end
    end
end
local works = tonumber(ARGV[10])
local fields = 11 + works * 4
local entry = redis.call("xadd", KEYS[2], "MAXLEN", "~", ARGV[3], "*", unpack(ARGV, fields))
for index = 11, fields - 1, 4 do
    local ledger_id, queue, id, payload = ARGV[index], ARGV[index + 1], ARGV[index + 2], ARGV[index + 3]
    redis.call("hset", queue .. ".msgs", id, payload)
    redis.call("rpush", queue, id)
    redis.call("hset", KEYS[4], ledger_id, payload)
    redis.call("zadd", KEYS[3], ARGV[4], ledger_id)
end
if fenced then
    redis.call("hset", KEYS[5], ARGV[5], ARGV[6] .. "|" .. ARGV[7] .. "|" .. ARGV[8])
    redis.call("expire", KEYS[5], ARGV[9])
end
redis.call("sadd", KEYS[1], ARGV[1])
redis.call("expire", KEYS[1], ARGV[2])
return entry
"""


@dataclass(frozen=True)
class QueuedWork:
    """A Dramatiq message to enqueue and track in the delivery ledger in the same step as a stream entry.

    Parameters:
      ledger_id: the work's id in the ledger.
      queue_key: the Redis list of its queue (`dramatiq:<queue>`).
      redis_id: the id the message is stored under (its `redis_message_id` option).
      payload: the encoded message.
    """

    ledger_id: str
    queue_key: str
    redis_id: str
    payload: bytes


@dataclass
class StreamOutput:
    """XADD each event to `name` (at most once per event), trimming to about `maxlen` entries.

    Parameters:
      client: a Redis client (the broker's server).
      name: the stream key downstream consumers read (with consumer groups).
      maxlen: approximate cap on the stream's length.
    """

    client: redis.Redis
    name: str
    maxlen: int
    _emit_once: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._emit_once = self.client.register_script(EMIT_ONCE)

    def emit_once(
        self,
        event: ProcessedEvent,
        done_key: str,
        step: str,
        done_ttl_seconds: int,
        works: Sequence[QueuedWork] = (),
        lease_deadline_ms: int = 0,
        fence: FenceMark | None = None,
    ) -> str | None:
        """Append the event unless `step` is already in its done set, and enqueue `works` (leased until
        `lease_deadline_ms`) in the same step; the entry id, or None when the step was done before.

        With a `fence` mark the record's version is checked and recorded in that step; when the fence
        refuses it, nothing is appended and `fenced:superseded` or `fenced:duplicate` is returned.
        """
        fields = [item for pair in event.stream_fields().items() for item in pair]
        queued = [item for w in works for item in (w.ledger_id, w.queue_key, w.redis_id, w.payload)]
        mark = fence or FenceMark(fence_key(event.store_hash), "", 0, "", "")
        fence_args = [mark.field, mark.version_ms, mark.digest, mark.source, FENCE_TTL_SECONDS]
        entry_id = self._emit_once(
            keys=[done_key, self.name, LEDGER_KEY, LEDGER_MESSAGES_KEY, mark.key],
            args=[
                step,
                done_ttl_seconds,
                self.maxlen,
                lease_deadline_ms,
                *fence_args,
                len(works),
                *queued,
                *fields,
            ],
        )
        if entry_id is None:
            return None
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
