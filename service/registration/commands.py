"""`bcwebhooks hooks plan|apply|status` (also `scripts/register_hooks.py`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from service.bigcommerce import ApiClient, ApiError, MissingScope, StoreApi
from service.registration.declaration import Declaration, DeclarationError, load_declaration
from service.registration.reconcile import UNCHANGED, WRITES, Action, apply, plan
from service.settings import ConfigError, Settings, load_settings
from service.store_commands import open_stores
from service.stores import Stores

DEFAULT_FILE = Path("hooks.toml")
HOOKS_SCOPE_HELP = (
    "the token lacks store_v2_information: in the control panel, edit the API account and set "
    "Information & Settings to modify (webhooks are managed with it)"
)


def add_commands(commands: Any) -> None:
    """Register `hooks` on the CLI's subparsers."""
    hooks = commands.add_parser(
        "hooks",
        help="make the store's /v3/hooks match hooks.toml (plan, apply, status)",
        description="Declare hooks in hooks.toml; `plan` shows what would change (never writes), `apply` "
        "does it, `status` shows each hook's state and exits 1 when a declared hook is not active. Hooks "
        "that do not point at the declared receiver are never touched; --prune deletes only ours.",
    )
    actions = hooks.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("plan", "show what apply would do"),
        ("apply", "create, update, reactivate (and prune)"),
        ("status", "state of every hook, blocked domains; exit 1 if a declared hook is down"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--file", type=Path, default=DEFAULT_FILE, help="declaration file (default hooks.toml)"
        )
        action.add_argument("--json", action="store_true", help="JSON output")
        action.add_argument(
            "--allow-http", action="store_true", help="accept http:// receivers (the sandbox store only)"
        )
        if name != "status":
            action.add_argument(
                "--prune", action="store_true", help="delete our hooks that are no longer declared"
            )
        which = action.add_mutually_exclusive_group()
        which.add_argument("--store", metavar="HASH", help="app mode: this installed store")
        which.add_argument("--all-stores", action="store_true", help="app mode: every installed store")
    hooks.set_defaults(run=run_hooks)


def store_api(settings: Settings, **client_options: Any) -> StoreApi:
    """The API client for the configured store; ConfigError without an access token."""
    if settings.access_token is None:
        raise ConfigError("BIGCOMMERCE_ACCESS_TOKEN: not set (needed to manage hooks)")
    token = settings.access_token.get_secret_value()
    return StoreApi(ApiClient(settings.api_url, settings.single_store_hash, token, **client_options))


def run_hooks(args: argparse.Namespace) -> int:
    """plan / apply / status: for the configured store, or (app mode) --store HASH or --all-stores."""
    settings = load_settings()
    if not settings.app_mode:
        if args.store or args.all_stores:
            raise ConfigError("--store and --all-stores are for app mode (BCWEBHOOKS_ENCRYPTION_KEYS set)")
        return _hooks_for(args, lambda: store_api(settings))
    if not (args.store or args.all_stores):
        raise ConfigError("app mode: pass --store HASH or --all-stores (see `bcwebhooks stores list`)")
    with open_stores(settings) as stores:
        worst = 0
        for store_hash in [args.store] if args.store else stores.installed():
            worst = max(worst, _hooks_for_installed(args, settings, stores, store_hash))
        return worst


def _hooks_for_installed(
    args: argparse.Namespace, settings: Settings, stores: Stores, store_hash: str
) -> int:
    """plan / apply / status for one installed store, with its own token; an apply is recorded on it."""
    print(f"== store {store_hash}", flush=True)
    token = stores.token(store_hash)
    if token is None:
        print(f"bcwebhooks hooks: store {store_hash} does not have the app installed", file=sys.stderr)
        return 1
    code = _hooks_for(args, lambda: StoreApi(ApiClient(settings.api_url, store_hash, token)))
    if code == 0 and args.action == "apply":
        stores.record_hooks(store_hash, {"state": "applied", "by": "hooks apply", "at_ms": now_ms()})
    return code


def _hooks_for(args: argparse.Namespace, make_api: Callable[[], StoreApi]) -> int:
    """plan / apply / status for one store."""
    try:
        declaration = load_declaration(args.file, os.environ, allow_http=args.allow_http)
        api = make_api()
        with api.client:
            if args.action == "status":
                return _status(api, declaration, args.json)
            actions = plan(declaration, api.list_hooks(), prune=getattr(args, "prune", False))
            if args.action == "apply":
                done = apply(api, actions)
                performed = iter(done)
                shown = [next(performed) if a.kind in WRITES else a for a in actions]
                footer = f"applied {len(done)} change(s)" if done else "nothing to change: the store matches"
                _print_actions(shown, args.json, footer)
            else:
                _print_actions(actions, args.json, "")
    except DeclarationError as error:
        print(f"bcwebhooks hooks: {error}", file=sys.stderr)
        return 2
    except MissingScope:
        print(f"bcwebhooks hooks: {HOOKS_SCOPE_HELP}", file=sys.stderr)
        return 1
    except ApiError as error:
        print(f"bcwebhooks hooks: {error}", file=sys.stderr)
        return 1
    return 0


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return time.time_ns() // 1_000_000


def _print_actions(actions: list[Action], as_json: bool, footer: str) -> None:
    if as_json:
        print(json.dumps([a.public() for a in actions], indent=2))
        return
    rows = [(a.kind, a.scope, a.destination, str(a.hook_id or "-"), _fields(a)) for a in actions]
    _table(("action", "scope", "destination", "id", "changes"), rows)
    writes = sum(a.kind in WRITES for a in actions)
    print(footer or f"{writes} change(s); {sum(a.kind == UNCHANGED for a in actions)} unchanged")


def _fields(action: Action) -> str:
    shown = action.public()["fields"]
    return ", ".join(f"{k}={v}" for k, v in shown.items()) if shown else ""


def _status(api: StoreApi, declaration: Declaration, as_json: bool) -> int:
    admin = api.hooks_admin()
    hooks = admin.get("hooks_list", [])
    by_key = {(h["scope"], h["destination"]): h for h in hooks}
    rows, problems = [], 0
    for declared in declaration.hooks:
        found = by_key.get((declared.scope, declared.destination))
        state = (
            "missing"
            if found is None
            else str(found.get("status") or ("active" if found["is_active"] else "inactive"))
        )
        healthy = state == "active" or (state == "inactive" and not declared.active)
        problems += not healthy
        rows.append(
            {
                "scope": declared.scope,
                "destination": declared.destination,
                "state": state,
                "declared": True,
                "ok": healthy,
                "id": found["id"] if found else None,
            }
        )
    declared_keys = {(d.scope, d.destination) for d in declaration.hooks}
    for hook in hooks:
        if (hook["scope"], hook["destination"]) not in declared_keys:
            rows.append(
                {
                    "scope": hook["scope"],
                    "destination": hook["destination"],
                    "state": hook.get("status"),
                    "declared": False,
                    "ok": True,
                    "id": hook["id"],
                }
            )
    blocked = admin.get("blocked_domains", [])
    problems += len(blocked)
    if as_json:
        print(
            json.dumps(
                {"hooks": rows, "blocked_domains": blocked, "emails": admin.get("emails", [])}, indent=2
            )
        )
    else:
        _table(
            ("", "state", "scope", "destination", "id"),
            [
                (
                    "✓" if r["ok"] else "✗",
                    str(r["state"]),
                    str(r["scope"]),
                    str(r["destination"]),
                    str(r["id"] or "-"),
                )
                for r in rows
            ],
        )
        for domain in blocked:
            print(f"✗ domain {domain['destination']} is blocked for {domain['time_left']} s more")
        print("all declared hooks are active" if problems == 0 else f"{problems} problem(s)")
    return 1 if problems else 0


def _table(headings: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headings)]
    print("  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
