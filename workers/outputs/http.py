"""The HTTP output: POST a processed event to one destination, signed the Standard Webhooks way.

Signatures come from the reference implementation (`standardwebhooks`), so any Standard Webhooks library
verifies them. `webhook-id` is the same for every attempt of one event to one destination (consumers drop
repeats by it); `webhook-timestamp` is the attempt's time, as the specification says.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from standardwebhooks import Webhook

from service import __version__
from workers.outputs.declaration import DeclaredOutput

USER_AGENT = f"bcwebhooks/{__version__}"
# A slot a worker died holding frees itself this long after the attempt's timeout.
SLOT_GRACE_MS = 5_000
# Answers worth another attempt: a timeout, rate limiting, and the server's own failures.
RETRYABLE_4XX = frozenset({408, 425, 429})

# KEYS: the destination's slots (zset: holder -> expiry ms). ARGV: now ms, holder, expiry ms, concurrency.
ACQUIRE = """
redis.call("zremrangebyscore", KEYS[1], "-inf", ARGV[1])
if redis.call("zcard", KEYS[1]) < tonumber(ARGV[4]) then
    redis.call("zadd", KEYS[1], ARGV[3], ARGV[2])
    redis.call("pexpire", KEYS[1], tonumber(ARGV[3]) - tonumber(ARGV[1]))
    return 1
end
return 0
"""


class ForwardError(Exception):
    """A forward was not delivered."""


class DestinationUnavailable(ForwardError):
    """The destination timed out, was unreachable, or answered 408, 425, 429 or 5xx: worth retrying."""


class DestinationRejected(ForwardError):
    """The destination answered with a status that another attempt would not change (a 4xx, a 3xx)."""


class UnknownDestination(ForwardError):
    """The forward names an output that outputs.toml no longer declares."""


def webhook_id_for(destination: str, event_id: str) -> str:
    """The `webhook-id` of one event's forwards to one destination: stable across attempts and replays."""
    digest = hashlib.sha256(f"{destination}\n{event_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def signed_headers(secret: str, webhook_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers for `body`, signed with `secret` at `now` (default: this moment)."""
    moment = now or datetime.now(tz=UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, moment, body),
    }


@dataclass
class HttpOutput:
    """POSTs events to one declared destination, at most `concurrency` requests at once across workers.

    Parameters:
      declared: the destination as outputs.toml declares it.
      client: Redis (the broker's server), which holds the concurrency slots.
    """

    declared: DeclaredOutput
    client: redis.Redis
    _http: httpx.Client = field(init=False, repr=False)
    _acquire: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._http = httpx.Client(timeout=self.declared.timeout, follow_redirects=False)
        self._acquire = self.client.register_script(ACQUIRE)

    @property
    def slots_key(self) -> str:
        """The zset of attempts in flight to this destination."""
        return f"bcwebhooks:forward:slots:{self.declared.name}"

    def acquire_slot(self) -> str | None:
        """Take one of the destination's concurrency slots; its holder id, or None when all are busy."""
        holder = uuid.uuid4().hex
        now = time.time_ns() // 1_000_000
        expiry = now + int(self.declared.timeout * 1000) + SLOT_GRACE_MS
        taken = self._acquire(keys=[self.slots_key], args=[now, holder, expiry, self.declared.concurrency])
        return holder if taken else None

    def release_slot(self, holder: str) -> None:
        """Give a slot back."""
        self.client.zrem(self.slots_key, holder)

    def post(self, webhook_id: str, body: str) -> int:
        """POST one signed event; the status of a 2xx answer, else a ForwardError saying why."""
        headers = {
            **signed_headers(self.declared.secret, webhook_id, body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            response = self._http.post(self.declared.url, content=body.encode(), headers=headers)
        except httpx.TimeoutException:
            raise DestinationUnavailable(f"no answer within {self.declared.timeout:g} s") from None
        except httpx.HTTPError as error:
            raise DestinationUnavailable(f"unreachable: {type(error).__name__}: {error}") from None
        status = response.status_code
        if 200 <= status < 300:
            return status
        if status >= 500 or status in RETRYABLE_4XX:
            raise DestinationUnavailable(f"answered {status}")
        raise DestinationRejected(f"answered {status}, which another attempt would not change")

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
