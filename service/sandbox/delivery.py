"""Signed delivery of callbacks with BigCommerce's retry schedule, deactivation and domain blocklist."""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from service.sandbox.access import ApiAccount
from service.sandbox.hooks import DELIVERY_EXCEPTION_SCOPE, Hook, HookRegistry

# Seconds between attempts: 11 retries, ~48 h in all, then the hook is deactivated.
RETRY_SCHEDULE_SECONDS = (60, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 50400, 86400)
BLOCKLIST_WINDOW_SECONDS = 120
BLOCKLIST_MIN_REQUESTS = 100
BLOCKLIST_MIN_SUCCESS_RATIO = 0.9
BLOCKLIST_DURATION_SECONDS = 180
DELIVERY_EXCEPTION_INTERVAL_SECONDS = 600
DEFAULT_TIMEOUT_SECONDS = 10.0
# Attempts in flight at once (the rest wait their turn): thousands of retries of an outage must not queue
# inside the HTTP client's connection pool, whose bookkeeping grows with its waiters and starves the API.
MAX_ATTEMPTS_IN_FLIGHT = 64
STORE_ID = "1000001"


class RetryTimestamp(enum.StrEnum):
    """Which `webhook-timestamp` a retried delivery is signed with (BigCommerce does not document it)."""

    FRESH = "fresh"  # each attempt's own time, as Standard Webhooks says
    ORIGINAL = "original"  # the first attempt's time, kept on every retry


def callback_body(scope: str, store_hash: str, data: Any, created_at: int, store_id: str = STORE_ID) -> bytes:
    """The thin payload, with a SHA-1 `hash` of the event metadata (the same on every retry)."""
    digest = hashlib.sha1(  # noqa: S324 (BigCommerce's documented event hash, not a security primitive)
        json.dumps([scope, data, created_at, uuid.uuid4().hex], sort_keys=True).encode()
    ).hexdigest()
    payload = {
        "scope": scope,
        "store_id": store_id,
        "data": data,
        "hash": digest,
        "created_at": created_at,
        "producer": f"stores/{store_hash}",
    }
    return json.dumps(payload).encode()


def sign_headers(client_secret: str, webhook_id: str, body: bytes, at: float) -> dict[str, str]:
    """Standard Webhooks headers, signed with the reference library the way BigCommerce's sample keys it."""
    signer = Webhook(base64.b64encode(client_secret.encode()).decode())
    signature = signer.sign(webhook_id, datetime.fromtimestamp(at, tz=UTC), body.decode())
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(at)), "webhook-signature": signature}


@dataclass
class DomainHealth:
    """Outcomes per client + destination domain over the sliding window, and any block in force."""

    outcomes: deque[tuple[float, bool]] = field(default_factory=deque)
    url: str = ""  # the domain as /v3/hooks/admin lists it: scheme://host
    blocked_until: float = 0.0
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def count_failure(self, description: str, at: int) -> None:
        """One more failure of this kind (admin lists each kind once, with its count and latest time)."""
        for reason in self.reasons:
            if reason["failure_description"] == description:
                reason["count"] += 1
                reason["timestamp"] = at
                return
        self.reasons.append({"failure_description": description, "count": 1, "timestamp": at})


@dataclass
class Deliverer:
    """Posts callbacks to subscribed hooks and retries them on the documented schedule.

    Parameters:
      registry: the store's hooks.
      accounts: client id → API account (its client secret signs the callbacks).
      store_id: the numeric id callbacks carry in `store_id` (one per store).
      time_scale: how much faster than real time the schedule, windows and blocks run (1 = real).
      retry_timestamp: whether retries are signed with a fresh timestamp or the first attempt's. An
        original timestamp is as old as the schedule up to that retry, with or without a time scale, so
        the receiver sees the age a real retry would have (the last retry of the 48 h schedule is 48 h old).
    """

    registry: HookRegistry
    accounts: dict[str, ApiAccount]
    time_scale: float = 1.0
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    clock: Callable[[], float] = time.time
    retry_timestamp: RetryTimestamp = RetryTimestamp.FRESH
    store_id: str = STORE_ID
    attempts: list[dict[str, Any]] = field(default_factory=list)
    domains: dict[tuple[str, str], DomainHealth] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _last_exception_notice: dict[str, float] = field(default_factory=dict)
    _client: httpx.AsyncClient | None = None
    _slots: asyncio.Semaphore | None = None

    def fire(self, scope: str, data: Any, client_id: str | None = None) -> int:
        """Deliver one event to every active hook subscribed to it (of one client, when given)."""
        wants_exception_hook = scope == DELIVERY_EXCEPTION_SCOPE
        hooks = [
            hook
            for hook in self.registry.subscribers(scope)
            if (hook.scope == DELIVERY_EXCEPTION_SCOPE) == wants_exception_hook
            and client_id in (None, hook.client_id)
        ]
        body = callback_body(scope, self.registry.store_hash, data, int(self.clock()), self.store_id)
        for hook in hooks:
            task = asyncio.get_running_loop().create_task(
                self._deliver(hook, scope, body, f"msg_{uuid.uuid4().hex}")
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(hooks)

    async def drain(self) -> None:
        """Wait for every delivery in flight (used on shutdown and by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel pending retries and close connections."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def blocked_domains(self, client_id: str) -> list[dict[str, Any]]:
        """Blocked destinations of a client with seconds left, as /v3/hooks/admin lists them (the domain as
        a URL, `https://hooks.example.com`; seconds left in BigCommerce's time, i.e. scaled)."""
        now = self.clock()
        return [
            {
                "destination": health.url or domain,
                "time_left": int((health.blocked_until - now) * self.time_scale),
                "reasons": health.reasons[-5:],
            }
            for (client, domain), health in self.domains.items()
            if client == client_id and health.blocked_until > now
        ]

    async def _deliver(self, hook: Hook, scope: str, body: bytes, webhook_id: str) -> None:
        generation = hook.deactivations
        for attempt in range(len(RETRY_SCHEDULE_SECONDS) + 1):
            if attempt > 0 and (not hook.is_active or hook.deactivations != generation):
                return  # a deactivated hook's pending retries are dropped, even once it is active again
            outcome = await self._attempt(hook, scope, body, webhook_id, attempt)
            if outcome == "delivered":
                return
            if scope == DELIVERY_EXCEPTION_SCOPE:
                return  # failures to report failures are not themselves retried or reported
            if attempt == len(RETRY_SCHEDULE_SECONDS):
                break
            await asyncio.sleep(RETRY_SCHEDULE_SECONDS[attempt] / self.time_scale)
        self.registry.deactivate(hook, "all delivery attempts failed over 48 hours")
        self._notify_exception(
            hook, 90002, f"All attempts are exhausted. The hook {hook.id} is going to be disabled."
        )

    def signed_at(self, attempt: int, now: float) -> float:
        """The time attempt number `attempt` (0 = the first), made at `now`, is signed with.

        An original timestamp is as old as the retry schedule up to this attempt, whatever the time scale
        (scaling the real time elapsed instead would also scale the sandbox's own delays, turning a few
        milliseconds of a busy machine into seconds).
        """
        if self.retry_timestamp is RetryTimestamp.FRESH:
            return now
        return now - sum(RETRY_SCHEDULE_SECONDS[:attempt])

    async def _attempt(self, hook: Hook, scope: str, body: bytes, webhook_id: str, attempt: int) -> str:
        parts = urlsplit(hook.destination)
        domain = parts.hostname or ""
        health = self.domains.setdefault(
            (hook.client_id, domain), DomainHealth(url=f"{parts.scheme}://{domain}")
        )
        now = self.clock()
        signed_at = self.signed_at(attempt, now)
        record: dict[str, Any] = {
            "hook_id": hook.id,
            "scope": scope,
            "webhook_id": webhook_id,
            "attempt": attempt,
            "destination": hook.destination,
            "at": now,
            "signed_at": int(signed_at),
        }
        if health.blocked_until > now:
            record["outcome"] = "blocked"
            self.attempts.append(record)
            return "blocked"
        account = self.accounts[hook.client_id]
        headers = {
            "content-type": "application/json",
            **(hook.headers or {}),
            **sign_headers(account.client_secret, webhook_id, body, signed_at),
        }
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_ATTEMPTS_IN_FLIGHT)
        try:
            async with self._slots:
                response = await self._http().post(hook.destination, content=body, headers=headers)
            ok, record["status"] = 200 <= response.status_code < 300, response.status_code
        except httpx.HTTPError as error:
            ok, record["error"] = False, type(error).__name__
        record["outcome"] = "delivered" if ok else "failed"
        self.attempts.append(record)
        if scope != DELIVERY_EXCEPTION_SCOPE:
            self._record_outcome(hook, health, ok, record)
        return str(record["outcome"])

    def _record_outcome(self, hook: Hook, health: DomainHealth, ok: bool, record: dict[str, Any]) -> None:
        now = self.clock()
        health.outcomes.append((now, ok))
        while health.outcomes and health.outcomes[0][0] <= now - BLOCKLIST_WINDOW_SECONDS / self.time_scale:
            health.outcomes.popleft()
        if ok:
            return
        failure = f"status {record['status']}" if "status" in record else record.get("error", "error")
        health.count_failure(str(failure), int(now))
        self._notify_exception(
            hook, 90001, f"Non-200 response received when delivering to {hook.destination}, will retry"
        )
        successes = sum(outcome for _, outcome in health.outcomes)
        if (
            len(health.outcomes) >= BLOCKLIST_MIN_REQUESTS
            and successes / len(health.outcomes) < BLOCKLIST_MIN_SUCCESS_RATIO
        ):
            health.blocked_until = now + BLOCKLIST_DURATION_SECONDS / self.time_scale
            health.outcomes.clear()
            self._notify_exception(
                hook, 90003, f"destination domain of {hook.destination} was temporarily blocked"
            )

    def _notify_exception(self, hook: Hook, code: int, message: str) -> None:
        if code == 90001:
            last = self._last_exception_notice.get(hook.destination, float("-inf"))
            if self.clock() - last < DELIVERY_EXCEPTION_INTERVAL_SECONDS / self.time_scale:
                return
            self._last_exception_notice[hook.destination] = self.clock()
        data = {"type": "webhook", "id": hook.id, "error_code": code, "message": message}
        self.fire(DELIVERY_EXCEPTION_SCOPE, data, client_id=hook.client_id)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_seconds)
        return self._client
