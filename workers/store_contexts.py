"""App mode: each store's own worker context (its token, its API budget, its coalescing), built on demand.

A context is cached per store with the ciphertext of the token it was built from; each event costs one
Redis read (HGET of that ciphertext), which is also the installed check: no token means the app was
uninstalled (or the store forgotten), and the event is dead-lettered with the reason `uninstalled` instead
of being fetched. A new token (the app re-authorized) builds a new context.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from service.bigcommerce import ApiClient, StoreApi
from service.events import PersistedCallback, build_message
from service.stores import Stores
from workers.budget import ApiBudget
from workers.coalescing import Coalescer
from workers.ledger import dead_letter_record
from workers.metrics import CountingBudget, event_metrics
from workers.processing import WorkerContext

UNINSTALLED = "uninstalled"  # the dead-letter reason of an event whose store no longer has the app
# The workers' API client leaves retries to Dramatiq (one layer decides) and waits in-thread for the
# shared budget only briefly; longer waits go back to the broker as Retry(delay=…). (Both modes.)
WORKER_API_MAX_ATTEMPTS = 1
WORKER_API_MAX_RATE_LIMIT_WAITS = 0
WORKER_API_MAX_BUDGET_WAIT_SECONDS = 3.0

log = structlog.get_logger("bcwebhooks.worker")


class StoreUninstalled(Exception):
    """The event's store does not have the app installed: nothing may be fetched for it."""


@dataclass
class StoreContexts:
    """Builds and caches the per-store contexts of an app-mode worker process.

    Parameters:
      base: the process's context (Redis, output, handlers, ledger); copied per store.
      stores: the installed stores and their encrypted tokens.
      api_url: the REST API's base URL.
      reserve_share: each store's quota share left for other apps (each store has its own budget).
      coalesce_window_ms, coalesce_threshold: coalescing, per store (0 ms: off).
      hooks_file, hooks_allow_http: the declaration applied to each store that installs the app.
      environ: where the declaration's `env:` header values are read.
    """

    base: WorkerContext
    stores: Stores
    api_url: str
    reserve_share: float
    coalesce_window_ms: int
    coalesce_threshold: int
    hooks_file: Path
    hooks_allow_http: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    _cache: dict[str, tuple[bytes, WorkerContext]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def for_store(self, store_hash: str) -> WorkerContext:
        """The store's context; StoreUninstalled when it has no token (one Redis read when cached)."""
        blob = self.stores.encrypted_token(store_hash)
        if blob is None:
            raise StoreUninstalled(store_hash)
        with self._lock:
            cached = self._cache.get(store_hash)
            if cached is not None and cached[0] == blob:
                return cached[1]
        context = self._build(store_hash, self.stores.open(store_hash, blob))
        with self._lock:
            self._cache[store_hash] = (blob, context)
        return context

    def _build(self, store_hash: str, token: str) -> WorkerContext:
        client = self.base.redis
        api_client = ApiClient(
            self.api_url,
            store_hash,
            token,
            budget=CountingBudget(ApiBudget(client, store_hash, self.reserve_share), event_metrics()),
            max_attempts=WORKER_API_MAX_ATTEMPTS,
            max_rate_limit_waits=WORKER_API_MAX_RATE_LIMIT_WAITS,
            max_budget_wait_seconds=WORKER_API_MAX_BUDGET_WAIT_SECONDS,
        )
        return dataclasses.replace(
            self.base, api=StoreApi(api_client), store_hash=store_hash, coalescer=self.coalescer(store_hash)
        )

    def coalescer(self, store_hash: str) -> Coalescer | None:
        """The store's coalescer (no token needed: parked events of an uninstalled store are drained)."""
        if self.coalesce_window_ms <= 0:
            return None
        return Coalescer(self.base.redis, store_hash, self.coalesce_window_ms, self.coalesce_threshold)


def store_of_callback(callback: PersistedCallback) -> str:
    """The store a persisted callback came from (its `producer`, stores/{hash})."""
    return str(callback["envelope"].get("producer", "")).removeprefix("stores/")


def context_for(callback: PersistedCallback, context: WorkerContext) -> WorkerContext | None:
    """The context to process `callback` with: the process's own in single-store mode, its store's in app
    mode; None when its store has no token, after dead-lettering it with the reason `uninstalled`."""
    if context.stores is None:
        return context
    try:
        return context.stores.for_store(store_of_callback(callback))
    except StoreUninstalled:
        dead_letter_uninstalled(callback, context)
        return None


def uninstalled_meanwhile(callback: PersistedCallback, context: WorkerContext) -> bool:
    """App mode: whether the callback's store no longer has the app installed (single-store: never)."""
    return context.stores is not None and not context.stores.stores.is_installed(store_of_callback(callback))


def dead_letter_uninstalled(callback: PersistedCallback, context: WorkerContext) -> bool:
    """Dead-letter an event of a store without the app, with the reason `uninstalled` (no fetch)."""
    letter = dead_letter_record(build_message(callback), UNINSTALLED, retries=None)
    if not context.ledger.dead_letter(callback["event_id"], letter):
        return False
    log.warning(
        "callback.dead_lettered",
        event_id=callback["event_id"],
        scope=letter["scope"],
        store=store_of_callback(callback),
        error=UNINSTALLED,
    )
    return True
