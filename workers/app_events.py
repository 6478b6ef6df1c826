"""App mode: what a worker does when a store installs or uninstalls the app (service/oauth.py persists it).

- installed: apply hooks.toml to the store (the same plan/apply as `bcwebhooks hooks apply`, with the
  store's own token), recording the outcome on the store (`bcwebhooks stores show HASH`). A failure is
  recorded and raised, so Dramatiq retries it and dead-letters it at the end, like any event.
- uninstalled: dead-letter the store's pending events with the reason `uninstalled` (those waiting in a
  delayed retry or parked for a batch; one a worker picks up meanwhile is dead-lettered by the same rule).

App events go through the delivery ledger like callbacks, so neither is lost.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from dramatiq import Message

from service.events import (
    APP_INSTALLED_SCOPE,
    APP_SCOPE_PREFIX,
    APP_UNINSTALLED_SCOPE,
    LEDGER_MESSAGES_KEY,
    PersistedCallback,
)
from service.registration.declaration import load_declaration
from service.registration.reconcile import apply, plan
from workers.ledger import dead_letter_record, event_id_of
from workers.processing import WorkerContext
from workers.store_contexts import UNINSTALLED, StoreContexts, StoreUninstalled

SCAN_COUNT = 500

log = structlog.get_logger("bcwebhooks.worker")


def handle_app_event(callback: PersistedCallback, context: WorkerContext) -> None:
    """Act on one app event, then finish it in the ledger (skipped when it already left the ledger)."""
    stores = context.stores
    if stores is None:
        raise RuntimeError("an app event reached a worker that is not in app mode")
    if not context.ledger.claim(callback["event_id"]):
        return
    envelope = callback["envelope"]
    store_hash = str(envelope.get("producer", "")).removeprefix("stores/")
    data = envelope.get("data")
    data = data if isinstance(data, dict) else {}
    if envelope.get("scope") == APP_INSTALLED_SCOPE:
        apply_declared_hooks(stores, store_hash, int(data.get("installed_at_ms", 0)))
    elif envelope.get("scope") == APP_UNINSTALLED_SCOPE:
        dead_letter_store_events(context, stores, store_hash, callback["received_at_ms"])
    context.ledger.finish(callback["event_id"])


def apply_declared_hooks(stores: StoreContexts, store_hash: str, installed_at_ms: int) -> dict[str, Any]:
    """Make the store's hooks match hooks.toml; the outcome is recorded on the store and returned."""
    record = stores.stores.get(store_hash)
    if record is None or not record.installed or record.installed_at_ms != installed_at_ms:
        log.info("store.hooks_skipped", store=store_hash, reason="a later install or uninstall superseded it")
        return {"state": "skipped"}
    try:
        api = stores.for_store(store_hash).store_api
        declaration = load_declaration(stores.hooks_file, stores.environ, allow_http=stores.hooks_allow_http)
        done = apply(api, plan(declaration, api.list_hooks(), prune=False))
    except StoreUninstalled:
        return {"state": "skipped"}
    except Exception as error:
        outcome = {"state": "failed", "error": f"{type(error).__name__}: {error}"[:300], "at_ms": _now_ms()}
        stores.stores.record_hooks(store_hash, outcome)
        log.error("store.hooks_failed", store=store_hash, error=outcome["error"])
        raise
    outcome = {
        "state": "applied",
        "declared": len(declaration.hooks),
        "changes": len(done),
        "at_ms": _now_ms(),
    }
    stores.stores.record_hooks(store_hash, outcome)
    log.info("store.hooks_applied", store=store_hash, declared=outcome["declared"], changes=len(done))
    return outcome


def dead_letter_store_events(
    context: WorkerContext, stores: StoreContexts, store_hash: str, uninstalled_at_ms: int
) -> int:
    """Dead-letter, with the reason `uninstalled`, every pending event of the store received before its
    uninstall; none when the store installed the app again since (its events are then fetched with the
    new token). Returns how many were dead-lettered."""
    if stores.stores.is_installed(store_hash):
        return 0
    producer = f"stores/{store_hash}"
    dead = 0
    for entry, message in _ledger_messages(context):
        callback = message.args[0] if event_id_of(message) is not None else None
        if not isinstance(callback, dict):
            continue
        envelope = callback.get("envelope")
        if not isinstance(envelope, dict) or envelope.get("producer") != producer:
            continue
        if str(envelope.get("scope", "")).startswith(APP_SCOPE_PREFIX):
            continue
        if int(callback.get("received_at_ms", 0)) > uninstalled_at_ms:
            continue
        dead += context.ledger.dead_letter_entry(entry, dead_letter_record(message, UNINSTALLED, None))
    log.info("store.events_dead_lettered", store=store_hash, events=dead, reason=UNINSTALLED)
    return dead


def _ledger_messages(context: WorkerContext) -> list[tuple[str, Message[Any]]]:
    """Every (ledger id, latest message) in the delivery ledger that decodes."""
    found = []
    for entry, payload in context.redis.hscan_iter(LEDGER_MESSAGES_KEY, count=SCAN_COUNT):
        try:
            found.append((entry.decode(), Message.decode(payload)))
        except Exception:  # noqa: S112  # a damaged entry is the reconciler's to dead-letter, with its reason
            continue
    return found


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
