"""`bcwebhooks doctor`: check a setup end to end, one ✓/✗ line per check with the fix."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis

from service.bigcommerce import (
    AREAS,
    ApiClient,
    ApiError,
    MissingScope,
    NotFound,
    ServerError,
    StoreApi,
    TransportError,
    ValidationFailed,
)
from service.oauth import AUTH_PATH, TOKEN_PATH
from service.redis_connection import close_sync, sync_client
from service.registration.commands import DEFAULT_FILE, HOOKS_SCOPE_HELP, store_api
from service.registration.declaration import Declaration, DeclarationError, load_declaration
from service.settings import ConfigError, Settings, load_settings
from service.store_commands import open_stores
from service.stores import StoreError
from workers.outputs.declaration import OutputsError, load_outputs

# Doctor asks once and reports; a store that answers 5xx is a finding, not something to wait out.
DOCTOR_MAX_ATTEMPTS = 2
DOCTOR_STORE_SAMPLE = 5  # app mode: the installed stores whose token and hooks are checked
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
NO_CART = "00000000-0000-4000-8000-000000000000"
# Per OAuth scope family, a harmless (read, write) call: each names a record that cannot exist, so the
# answer is 403 (scope missing) or 404/422 (scope held, nothing found or changed).
ACCESS_PROBES: dict[str, tuple[tuple[str, str, Any], tuple[str, str, Any]]] = {
    "store_v2_products": (("GET", "/v3/catalog/products/0", None), ("PUT", "/v3/catalog/products/0", {})),
    "store_v2_orders": (("GET", "/v2/orders/0", None), ("PUT", "/v2/orders/0", {})),
    "store_v2_customers": (("GET", "/v3/customers?id:in=0", None), ("PUT", "/v3/customers", [])),
    "store_cart": (("GET", f"/v3/carts/{NO_CART}", None), ("DELETE", f"/v3/carts/{NO_CART}", None)),
    "store_checkout": (
        ("GET", f"/v3/checkouts/{NO_CART}", None),
        ("POST", f"/v3/checkouts/{NO_CART}/orders", None),
    ),
    "store_v2_information": (("GET", "/v3/hooks/0", None), ("PUT", "/v3/hooks/0", {"is_active": True})),
}
# Answers that prove the token's scope let the call through (the probed record need not exist).
ACCESS_PROVEN = (NotFound, ValidationFailed)
Check = Callable[..., bool]


def add_doctor_command(commands: Any) -> None:
    """Register `doctor` on the CLI's subparsers."""
    doctor = commands.add_parser(
        "doctor",
        help="check configuration, Redis, the token's scopes and the hooks; the first thing to run",
        description="Checks, each with ✓/✗ and how to fix it: configuration, Redis, the token, its read "
        "scopes for the declared hooks, hook management, the OAuth scopes each handler's access= needs "
        "(BCWEBHOOKS_HANDLERS) and which the token lacks, the hooks' state and the receiver URL.",
    )
    doctor.add_argument(
        "--file", type=Path, default=DEFAULT_FILE, help="declaration file (default hooks.toml)"
    )
    doctor.add_argument("--allow-http", action="store_true", help="accept http:// receivers (sandbox only)")
    doctor.set_defaults(run=run_doctor)


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
        check(False, f"configuration: {error} (see .env.example)")
        return 1
    if settings.app_mode:
        check(True, f"configuration loads (app mode, client id {settings.client_id}, API {settings.api_url})")
    else:
        check(True, f"configuration loads (store {settings.store_hash}, API {settings.api_url})")
    _check_redis(settings, check)
    _check_outputs(settings, check)
    declaration = _doctor_declaration(args, check)
    if settings.app_mode:
        check_app(settings, declaration, check)
        return 1 if failures else 0
    if settings.access_token is None:
        check(
            False,
            "BIGCOMMERCE_ACCESS_TOKEN is not set",
            "create a store-level API account and export its token",
        )
        return 1
    api = store_api(settings, max_attempts=DOCTOR_MAX_ATTEMPTS)
    with api.client as client:
        if not _check_token(client, check):
            return 1
        _check_scopes(client, declaration, check)
        _check_hook_management(client, check)
        _check_handler_access(client, settings.handler_modules, check)
        if declaration is not None:
            _check_declared_active(StoreApi(client), declaration, check)
    return 1 if failures else 0


def _check_outputs(settings: Settings, check: Check) -> None:
    """The HTTP outputs file, when BCWEBHOOKS_OUTPUTS_FILE names one."""
    if settings.outputs_file is None:
        return
    try:
        outputs = load_outputs(settings.outputs_file, os.environ)
    except OutputsError as error:
        check(False, f"HTTP outputs: {error}", "edit the file or set the variable it names")
        return
    names = ", ".join(output.name for output in outputs)
    check(True, f"HTTP outputs in {settings.outputs_file}: {names}")


def check_app(settings: Settings, declaration: Declaration | None, check: Check) -> None:
    """App mode: the token endpoint and the app's credentials, then a sample of the installed stores."""
    _check_token_endpoint(settings, check)
    with open_stores(settings) as stores:
        installed = stores.installed()
        check(True, f"{len(installed)} store(s) have the app installed")
        for store_hash in installed[:DOCTOR_STORE_SAMPLE]:
            try:
                token = stores.token(store_hash)
            except StoreError as error:
                check(
                    False,
                    f"store {store_hash}: {error}",
                    "add the old key back to BCWEBHOOKS_ENCRYPTION_KEYS",
                )
                continue
            if token is None:
                continue  # uninstalled meanwhile
            client = ApiClient(settings.api_url, store_hash, token, max_attempts=DOCTOR_MAX_ATTEMPTS)
            with client:
                print(f"  store {store_hash}:", flush=True)
                if _check_token(client, check) and declaration is not None:
                    _check_declared_active(StoreApi(client), declaration, check)


def _check_token_endpoint(settings: Settings, check: Check) -> None:
    """Ask the token endpoint to exchange a code that cannot exist: any 4xx shows it answers and what it
    thinks of the app's credentials (401/403: they are refused)."""
    body = {
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value() if settings.client_secret else "",
        "code": "bcwebhooks-doctor-probe",
        "context": "stores/doctorprobe",
        "scope": "store_v2_information_read_only",  # no field missing: refusals concern the app
        "grant_type": "authorization_code",
        "redirect_uri": f"{settings.app_url}{AUTH_PATH}",
    }
    try:
        response = httpx.post(settings.login_url + TOKEN_PATH, json=body, timeout=10.0)
    except httpx.HTTPError as error:
        check(
            False,
            f"token endpoint {settings.login_url} unreachable ({type(error).__name__})",
            "check BIGCOMMERCE_LOGIN_URL and the network",
        )
        return
    if response.status_code in (401, 403):
        check(
            False,
            f"token endpoint refuses the app's credentials ({response.status_code})",
            "check BIGCOMMERCE_CLIENT_ID and BIGCOMMERCE_CLIENT_SECRET (Developer Portal, My Apps)",
        )
    elif response.status_code >= 500:
        check(False, f"token endpoint failing ({response.status_code})", "try again later")
    else:
        check(True, f"token endpoint {settings.login_url} answers ({response.status_code} for a probe code)")


def _check_redis(settings: Settings, check: Check) -> None:
    url = settings.redis_url
    if not url:
        check(True, f"Redis: REDIS_URL unset, an embedded Redis will keep data in {settings.data_dir}")
        return
    client = sync_client(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
        check(True, "Redis answers at REDIS_URL")
        if settings.redis_min_replicas:
            _check_replicas(client, settings.redis_min_replicas, check)
    except (redis.RedisError, OSError) as error:
        check(
            False,
            f"Redis at REDIS_URL does not answer ({type(error).__name__})",
            "start Redis or fix REDIS_URL",
        )
    finally:
        close_sync(client)


def _check_replicas(client: redis.Redis, wanted: int, check: Check) -> None:
    info: dict[str, Any] = client.info("replication")
    online = sum(1 for key, value in info.items() if key.startswith("slave") and _online(value))
    check(
        online >= wanted,
        f"Redis primary has {online} replica(s) online; BCWEBHOOKS_REDIS_MIN_REPLICAS={wanted}",
        "start the replicas, or lower BCWEBHOOKS_REDIS_MIN_REPLICAS: until then every callback gets 503",
    )


def _online(replica: object) -> bool:
    return isinstance(replica, dict) and replica.get("state") == "online"


def _doctor_declaration(args: argparse.Namespace, check: Check) -> Declaration | None:
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


def unavailable_fix(error: ApiError) -> str:
    """How to fix an API that did not answer usefully (network, 5xx, anything unexpected)."""
    if isinstance(error, TransportError):
        return "check BIGCOMMERCE_API_URL and the network, then run doctor again"
    if isinstance(error, ServerError):
        return "BigCommerce is failing right now: check https://status.bigcommerce.com and run doctor again"
    return "check BIGCOMMERCE_API_URL and BIGCOMMERCE_STORE_HASH"


def _check_token(client: ApiClient, check: Check) -> bool:
    try:
        client.get_json("/v3/catalog/products", {"limit": 1})
    except MissingScope:
        return check(True, "token works (it cannot read products, checked below)")
    except (TransportError, ServerError) as error:
        return check(False, f"token not checked: {error}", unavailable_fix(error))
    except ApiError as error:
        return check(False, f"token: {error}", "check BIGCOMMERCE_ACCESS_TOKEN and BIGCOMMERCE_STORE_HASH")
    return check(True, "token works (listed products)")


def _check_scopes(client: ApiClient, declaration: Declaration | None, check: Check) -> None:
    needed = _needed_families(declaration)
    for family, path, scope, label in SCOPE_PROBES:
        required = family in needed
        try:
            client.get_json(path)
        except MissingScope:
            if required:
                check(
                    False,
                    f"cannot read {family}, which the declared hooks need",
                    f"grant {label}: read-only ({scope}_read_only) to the API account",
                )
            else:
                print(f"- cannot read {family} (not needed by the declared hooks)")
            continue
        except ACCESS_PROVEN:
            pass
        except ApiError as error:
            check(False, f"cannot tell whether the token can read {family}: {error}", unavailable_fix(error))
            continue
        check(True, f"can read {family} ({scope}_read_only or {scope})")


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


def _check_hook_management(client: ApiClient, check: Check) -> None:
    try:
        client.send_json("PUT", "/v3/hooks/0", {"is_active": True})  # hook 0 never exists: 404 proves access
    except MissingScope:
        check(False, "cannot manage hooks", HOOKS_SCOPE_HELP)
        return
    except ACCESS_PROVEN:
        pass
    except ApiError as error:
        check(False, f"cannot tell whether the token can manage hooks: {error}", unavailable_fix(error))
        return
    check(True, "can manage hooks (store_v2_information)")


def _check_declared_active(api: StoreApi, declaration: Declaration, check: Check) -> None:
    try:
        listed = api.hooks_admin().get("hooks_list", [])
    except ApiError as error:
        check(False, f"cannot list the store's hooks: {error}", unavailable_fix(error))
        return
    hooks = {(h["scope"], h["destination"]): h for h in listed}
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


def _check_handler_access(client: ApiClient, modules: tuple[str, ...], check: Check) -> None:
    """Per configured handler: the OAuth scopes its declared access needs, and which the token lacks."""
    if not modules:
        print("- no handlers configured (BCWEBHOOKS_HANDLERS): no handler access to check")
        return
    from workers.handlers import REGISTRY, HandlerModuleError, load_handler_modules

    try:
        load_handler_modules(modules)
    except HandlerModuleError as error:
        check(False, str(error), "fix the module or BCWEBHOOKS_HANDLERS")
        return
    registrations = [r for r in REGISTRY.registrations if r.function.__module__.startswith(modules)]
    every = {scope for r in registrations for scope in r.access.scopes()}
    together = sorted(
        s for s in every if s.removesuffix("_read_only") == s or s[: -len("_read_only")] not in every
    )
    print(f"- the {len(registrations)} handler(s) together need: {', '.join(together) or 'no OAuth scope'}")
    held: dict[str, bool | None] = {}
    for registration in registrations:
        needed = registration.access.scopes()
        title = f"handler {registration.name} ({registration.access.describe()})"
        if not needed:
            check(True, f"{title}: needs no OAuth scope")
            continue
        for scope in needed:
            if scope not in held:
                held[scope] = token_has_scope(client, scope)
        lacking = [scope for scope in needed if held[scope] is False]
        unknown = [scope for scope in needed if held[scope] is None]
        text = f"{title}: needs {', '.join(needed)}"
        if lacking:
            check(False, f"{text}; the token lacks {', '.join(lacking)}", _grant(lacking))
        elif unknown:
            check(
                False, f"{text}; cannot tell whether the token has {', '.join(unknown)}", "run doctor again"
            )
        else:
            check(True, f"{text}; the token has them")


def token_has_scope(client: ApiClient, scope: str) -> bool | None:
    """Whether the token holds `scope` (a `_read_only` form is also held through its modify form);
    None when the API's answer does not tell."""
    family = scope.removesuffix("_read_only")
    read_probe, write_probe = ACCESS_PROBES[family]
    method, path, body = read_probe if scope.endswith("_read_only") else write_probe
    path, _, query = path.partition("?")
    params = dict(item.split("=", 1) for item in query.split("&")) if query else None
    try:
        client.request(method, path, params=params, json=body)
    except MissingScope:
        return False
    except ACCESS_PROVEN:
        return True
    except ApiError:
        return None
    return True


def _grant(scopes: list[str]) -> str:
    labels = {area.scope: area.label for area in AREAS.values()}
    grants = [
        f"{labels[s.removesuffix('_read_only')]}: {'read-only' if s.endswith('_read_only') else 'modify'}"
        for s in scopes
    ]
    return f"grant {', '.join(grants)} to the API account (or narrow the handler's access=)"
