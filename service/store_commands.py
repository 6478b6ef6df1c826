"""`bcwebhooks stores list|show|forget|rotate-keys|new-key`: the installed stores of app mode."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import redis

from service.embedded_redis import resolve_redis_url
from service.events import APP_UNINSTALLED_SCOPE, PersistedCallback
from service.queue import persist_now
from service.redis_connection import sync_client
from service.settings import Settings, load_settings
from service.stores import StoreRecord, Stores, new_key, stores_from_settings


def add_stores_command(commands: Any) -> None:
    """Register `stores` on the CLI's subparsers."""
    stores = commands.add_parser(
        "stores",
        help="app mode: list, show or forget the stores that installed the app; rotate the encryption key",
        description="App mode (BCWEBHOOKS_ENCRYPTION_KEYS set): every store that installed the app, with "
        "its scopes, users and the outcome of applying hooks.toml to it. Tokens are never shown.",
    )
    actions = stores.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every recorded store, installed or not")
    listing.add_argument("--json", action="store_true", help="JSON output")
    show = actions.add_parser("show", help="one store's record (never its token)")
    show.add_argument("store", metavar="HASH", help="the store hash")
    show.add_argument("--json", action="store_true", help="JSON output")
    forget = actions.add_parser(
        "forget",
        help="delete a store's token and record; its pending events are dead-lettered (uninstalled)",
        description="As if the store had uninstalled the app, then delete its record: callbacks from it are "
        "refused, workers fetch nothing more for it and dead-letter its pending events with the reason "
        "`uninstalled`. The merchant can install the app again.",
    )
    forget.add_argument("store", metavar="HASH", help="the store hash")
    actions.add_parser(
        "rotate-keys",
        help="re-encrypt every token under the first key of BCWEBHOOKS_ENCRYPTION_KEYS",
        description="Put a new key first in BCWEBHOOKS_ENCRYPTION_KEYS (keep the old ones after it), "
        "restart the receivers and workers, then run this; afterwards the old keys can be removed.",
    )
    actions.add_parser("new-key", help="print a new key for BCWEBHOOKS_ENCRYPTION_KEYS")
    stores.set_defaults(run=run_stores)


@contextlib.contextmanager
def open_stores(settings: Settings) -> Iterator[Stores]:
    """The stores on REDIS_URL (or dev's Redis, or an embedded one, stopped on the way out)."""
    url, embedded = resolve_redis_url(settings.resolved_redis_url(os.environ), settings.data_dir)
    client = sync_client(url)
    try:
        yield stores_from_settings(settings, client)
    finally:
        client.close()
        if embedded is not None:
            embedded.stop()


def run_stores(args: argparse.Namespace) -> int:
    """list / show / forget / rotate-keys / new-key."""
    if args.action == "new-key":
        print(new_key())
        return 0
    settings = load_settings()
    with open_stores(settings) as stores:
        if args.action == "list":
            records = [r for r in (stores.get(h) for h in stores.known()) if r is not None]
            _print_list(records, args.json)
            return 0
        if args.action == "show":
            record = stores.get(args.store)
            if record is None:
                print(f"bcwebhooks stores: no store {args.store} is recorded", file=sys.stderr)
                return 1
            _print_record(record, args.json)
            return 0
        if args.action == "forget":
            return _forget(stores, args.store, settings)
        rotated = stores.rotate_keys()
        print(f"re-encrypted {rotated} token(s) under the first key; none is left under an older key")
        return 0


def _forget(stores: Stores, store_hash: str, settings: Settings) -> int:
    """Uninstall locally (token gone, callbacks refused), have a worker dead-letter its pending events,
    then delete the record."""
    if stores.get(store_hash) is None:
        print(f"bcwebhooks stores: no store {store_hash} is recorded", file=sys.stderr)
        return 1
    stores.uninstall(store_hash)
    _enqueue_uninstalled(stores.client, store_hash, settings)
    stores.forget(store_hash)
    print(f"forgot store {store_hash}: its token is deleted and its pending events will be dead-lettered")
    return 0


def _enqueue_uninstalled(client: redis.Redis, store_hash: str, settings: Settings) -> None:
    """Persist the `uninstalled` app event the way the receiver does (ledger, dedup mark, queue)."""
    now = _now_ms()
    callback = PersistedCallback(
        event_id=f"app:uninstalled:{store_hash}:{now}:forget",
        webhook_id=None,
        received_at_ms=now,
        envelope={"scope": APP_UNINSTALLED_SCOPE, "producer": f"stores/{store_hash}", "data": {}},
    )
    persist_now(client, callback, settings.dedup_window_seconds)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _print_list(records: list[StoreRecord], as_json: bool) -> None:
    if as_json:
        print(json.dumps([record.public() for record in records], indent=2))
        return
    if not records:
        print("no store has installed the app yet")
        return
    print(f"{'store':<16} {'state':<12} {'hooks':<10} installed")
    for record in records:
        state = "installed" if record.installed else "uninstalled"
        hooks = str(record.hooks.get("state", "-"))
        print(f"{record.store_hash:<16} {state:<12} {hooks:<10} {_when(record.installed_at_ms)}")
    print(f"{sum(r.installed for r in records)} installed, {sum(not r.installed for r in records)} not")


def _print_record(record: StoreRecord, as_json: bool) -> None:
    if as_json:
        print(json.dumps(record.public(), indent=2))
        return
    print(f"store        {record.store_hash}")
    print(f"state        {'installed' if record.installed else 'uninstalled'}")
    print(f"token        {'stored (encrypted)' if record.has_token else 'none'}")
    print(f"scope        {record.scope or '-'}")
    print(f"installed    {_when(record.installed_at_ms)}")
    print(f"uninstalled  {_when(record.uninstalled_at_ms)}")
    print(f"owner        {record.owner.get('email', '-')} (id {record.owner.get('id', '-')})")
    print(f"users        {', '.join(str(user) for user in record.users) or '-'}")
    print(f"hooks        {json.dumps(record.hooks)}")
