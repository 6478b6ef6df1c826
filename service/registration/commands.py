"""`bcwebhooks hooks plan|apply|status` and `bcwebhooks doctor` (also `scripts/register_hooks.py`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from service.bigcommerce import ApiClient, ApiError, MissingScope, StoreApi
from service.registration.declaration import Declaration, DeclarationError, load_declaration
from service.registration.reconcile import UNCHANGED, WRITES, Action, apply, plan
from service.settings import ConfigError, Settings, load_settings

DEFAULT_FILE = Path("hooks.toml")
HOOKS_SCOPE_HELP = (
    "the token lacks store_v2_information: in the control panel, edit the API account and set "
    "Information & Settings to modify (webhooks are managed with it)"
)


def add_commands(commands: Any) -> None:
    """Register `hooks` and `doctor` on the CLI's subparsers."""
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
    hooks.set_defaults(run=run_hooks)

    doctor = commands.add_parser(
        "doctor",
        help="check configuration, Redis, the token's scopes and the hooks; the first thing to run",
        description="Checks, each with ✓/✗ and how to fix it: configuration, Redis, the token, its read "
        "scopes for the declared hooks, hook management, the hooks' state and the receiver URL.",
    )
    doctor.add_argument(
        "--file", type=Path, default=DEFAULT_FILE, help="declaration file (default hooks.toml)"
    )
    doctor.add_argument("--allow-http", action="store_true", help="accept http:// receivers (sandbox only)")
    doctor.set_defaults(run=run_doctor)


def _api(settings: Settings) -> StoreApi:
    if settings.access_token is None:
        raise ConfigError("BIGCOMMERCE_ACCESS_TOKEN: not set (needed to manage hooks)")
    return StoreApi(
        ApiClient(settings.api_url, settings.store_hash, settings.access_token.get_secret_value())
    )


def run_hooks(args: argparse.Namespace) -> int:
    """plan / apply / status."""
    settings = load_settings()
    try:
        declaration = load_declaration(args.file, os.environ, allow_http=args.allow_http)
        api = _api(settings)
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


# ---- doctor

SCOPE_PROBES: tuple[tuple[str, str, str, str], ...] = (
    # (family, read probe path, scope, control-panel name); a 404 on a probe id still proves access.
    ("orders", "/v2/orders?limit=1", "store_v2_orders", "Orders"),
    ("products", "/v3/catalog/products?limit=1", "store_v2_products", "Products"),
    ("customers", "/v3/customers?limit=1", "store_v2_customers", "Customers"),
    ("carts", "/v3/carts/00000000-0000-4000-8000-000000000000", "store_cart", "Carts"),
    ("store information", "/v2/store", "store_v2_information", "Information & Settings"),
    ("transactions", "/v3/orders/1/transactions", "store_v2_transactions", "Order Transactions"),
)
FAMILY_OF_SCOPE = {
    "store/order/transaction": "transactions",
    "store/order": "orders",
    "store/cart": "carts",
    "store/customer": "customers",
    "store/information": "store information",
    "store/product": "products",
    "store/sku": "products",
    "store/category": "products",
    "store/brand": "products",
    "store/subscriber": "customers",
    "store/shipment": "orders",
}


def run_doctor(args: argparse.Namespace) -> int:
    """Run every check, print ✓/✗ lines with fixes, exit 1 when something needed is missing."""
    failures = 0

    def check(ok: bool, text: str, fix: str = "") -> bool:
        nonlocal failures
        failures += not ok
        print(f"{'✓' if ok else '✗'} {text}" + (f"\n    fix: {fix}" if not ok and fix else ""), flush=True)
        return ok

    try:
        settings = load_settings()
    except ConfigError as error:
        check(False, f"configuration: {error}", "set the variable (see .env.example)")
        return 1
    check(True, f"configuration loads (store {settings.store_hash}, API {settings.api_url})")
    _check_redis(settings, check)
    declaration = _doctor_declaration(args, check)
    if settings.access_token is None:
        check(
            False,
            "BIGCOMMERCE_ACCESS_TOKEN is not set",
            "create a store-level API account and export its token",
        )
        return 1
    with _api(settings).client as client:
        if not _check_token(client, check):
            return 1
        _check_scopes(client, declaration, check)
        _check_hook_management(client, check)
        if declaration is not None:
            _check_declared_active(StoreApi(client), declaration, check)
    return 1 if failures else 0


def _check_redis(settings: Settings, check: Callable[..., bool]) -> None:
    import redis

    url = settings.redis_url
    if not url:
        check(True, f"Redis: REDIS_URL unset, an embedded Redis will keep data in {settings.data_dir}")
        return
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        check(True, "Redis answers at REDIS_URL")
    except (redis.RedisError, OSError) as error:
        check(
            False,
            f"Redis at REDIS_URL does not answer ({type(error).__name__})",
            "start Redis or fix REDIS_URL",
        )


def _doctor_declaration(args: argparse.Namespace, check: Callable[..., bool]) -> Declaration | None:
    if not args.file.exists():
        check(True, f"{args.file} not found: hook checks skipped (copy hooks.toml to declare hooks)")
        return None
    try:
        declaration = load_declaration(args.file, os.environ, allow_http=args.allow_http)
    except DeclarationError as error:
        check(False, str(error), "edit the declaration")
        return None
    check(
        True,
        f"{args.file}: {len(declaration.hooks)} hook(s); receiver {declaration.receiver} is https on 443"
        if not args.allow_http
        else f"{args.file}: {len(declaration.hooks)} hook(s) (http allowed for the sandbox)",
    )
    return declaration


def _check_token(client: ApiClient, check: Callable[..., bool]) -> bool:
    try:
        client.get_json("/v3/catalog/products", {"limit": 1})
    except MissingScope:
        return check(True, "token works (it cannot read products, checked below)")
    except ApiError as error:
        return check(False, f"token: {error}", "check BIGCOMMERCE_ACCESS_TOKEN and BIGCOMMERCE_STORE_HASH")
    return check(True, "token works (listed products)")


def _check_scopes(client: ApiClient, declaration: Declaration | None, check: Callable[..., bool]) -> None:
    needed = _needed_families(declaration)
    for family, path, scope, label in SCOPE_PROBES:
        required = family in needed
        try:
            client.get_json(path)
            ok = True
        except MissingScope:
            ok = False
        except ApiError:
            ok = True  # 404 and the like: the scope let the call through
        if ok:
            check(True, f"can read {family} ({scope}_read_only or {scope})")
        elif required:
            check(
                False,
                f"cannot read {family}, which the declared hooks need",
                f"grant {label}: read-only ({scope}_read_only) to the API account",
            )
        else:
            print(f"- cannot read {family} (not needed by the declared hooks)")


def _needed_families(declaration: Declaration | None) -> set[str]:
    if declaration is None:
        return {family for family, *_ in SCOPE_PROBES}
    needed = set()
    for hook in declaration.hooks:
        for prefix, family in FAMILY_OF_SCOPE.items():
            if hook.scope.startswith(prefix):
                needed.add(family)
                break
    return needed


def _check_hook_management(client: ApiClient, check: Callable[..., bool]) -> None:
    try:
        client.send_json("PUT", "/v3/hooks/0", {"is_active": True})  # hook 0 never exists: 404 proves access
        check(True, "can manage hooks (store_v2_information)")
    except MissingScope:
        check(False, "cannot manage hooks", HOOKS_SCOPE_HELP)
    except ApiError:
        check(True, "can manage hooks (store_v2_information)")


def _check_declared_active(api: StoreApi, declaration: Declaration, check: Callable[..., bool]) -> None:
    hooks = {(h["scope"], h["destination"]): h for h in api.hooks_admin().get("hooks_list", [])}
    for declared in declaration.hooks:
        found = hooks.get((declared.scope, declared.destination))
        if found is None:
            check(False, f"hook {declared.scope} is not registered", "run `bcwebhooks hooks apply`")
        elif declared.active and not found.get("is_active"):
            check(
                False,
                f"hook {declared.scope} is {found.get('status', 'inactive')}",
                "run `bcwebhooks hooks apply`",
            )
        else:
            check(True, f"hook {declared.scope} is {found.get('status', 'active')}")
