"""`bcwebhooks sandbox` and `bcwebhooks trigger`."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from service.sandbox.access import DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN, load_accounts
from service.sandbox.app import DEFAULT_STORE_HASH, SandboxConfig, create_sandbox_app
from service.sandbox.data import generate_store
from service.sandbox.delivery import RetryTimestamp, callback_body, sign_headers
from service.sandbox.oauth import (
    CALLBACK_PATHS,
    DEFAULT_APP_CLIENT_ID,
    DEFAULT_APP_CLIENT_SECRET,
    FORGERIES,
    INSTALL_FORGERIES,
    AppProfile,
)
from service.sandbox.scopes import STORE_SCOPES, close_matches
from service.sandbox.triggers import TriggerError, trigger_scope

DEFAULT_SANDBOX_PORT = 8200
DEFAULT_SANDBOX_URL = f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}"


def add_sandbox_command(commands: Any, default_sandbox: str = DEFAULT_SANDBOX_URL) -> None:
    """Register `sandbox` (and `sandbox app ...`) on the CLI's subparsers."""
    parser = commands.add_parser(
        "sandbox",
        allow_abbrev=False,  # `sandbox app ... --store` is the app command's, not --stores or --store-hash
        help="run an emulated BigCommerce store (REST API, /v3/hooks, signed deliveries)",
        description="Run a local BigCommerce store: /stores/{hash}/v2 and /v3 endpoints, OAuth scopes, the "
        "shared rate limit, /v3/hooks, and signed webhook deliveries with BigCommerce's retry schedule. "
        f"Default token: {DEFAULT_TOKEN} (full access), client secret: {DEFAULT_CLIENT_SECRET}.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_SANDBOX_PORT, help=f"port (default {DEFAULT_SANDBOX_PORT})"
    )
    parser.add_argument(
        "--store-hash", default=DEFAULT_STORE_HASH, help=f"(first) store hash (default {DEFAULT_STORE_HASH})"
    )
    parser.add_argument(
        "--stores",
        type=int,
        default=1,
        help="how many stores: HASH, HASH2, HASH3, ... each with its own data, quota and hooks (default 1)",
    )
    parser.add_argument("--seed", type=int, default=1, help="generates the same store every time (default 1)")
    parser.add_argument(
        "--products", type=int, default=60, help="products in the generated catalog (default 60)"
    )
    parser.add_argument(
        "--customers", type=int, default=40, help="customers in the generated store (default 40)"
    )
    parser.add_argument("--orders", type=int, default=50, help="orders in the generated store (default 50)")
    parser.add_argument("--quota", type=int, default=150, help="requests per window, shared (default 150)")
    parser.add_argument(
        "--window", type=float, default=30.0, help="rate-limit window in seconds (default 30)"
    )
    parser.add_argument(
        "--store-quota",
        action="append",
        default=[],
        metavar="HASH=N",
        help="one store's own quota per window (another plan's, e.g. sandbox2=450); repeatable",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="run retries and blocklist timers X times faster (default 1)",
    )
    parser.add_argument(
        "--allow-http",
        action="store_true",
        help="accept http:// hook destinations on any port (local receivers)",
    )
    parser.add_argument(
        "--retry-timestamp",
        choices=[choice.value for choice in RetryTimestamp],
        default=RetryTimestamp.FRESH.value,
        help="sign retries with a fresh webhook-timestamp (default, as Standard Webhooks says) or the first "
        "attempt's (original; with --time-scale it ages at the scaled rate)",
    )
    parser.add_argument(
        "--accounts", type=Path, help="JSON file of API accounts [{token, client_id, client_secret, scopes}]"
    )
    parser.add_argument(
        "--app-client-id",
        default=DEFAULT_APP_CLIENT_ID,
        help=f"client id of the app the OAuth flow installs (default {DEFAULT_APP_CLIENT_ID})",
    )
    parser.add_argument(
        "--app-client-secret",
        default=DEFAULT_APP_CLIENT_SECRET,
        help="its client secret, which signs its JWTs and its stores' hooks "
        f"(default {DEFAULT_APP_CLIENT_SECRET})",
    )
    parser.set_defaults(run=run_sandbox)
    actions = parser.add_subparsers(dest="sandbox_command", metavar="{app}")
    _add_app_command(actions, default_sandbox)


def _add_app_command(actions: Any, default_sandbox: str) -> None:
    app = actions.add_parser(
        "app",
        help="install, load or uninstall the app on a sandbox store, as BigCommerce does",
        description="Act as BigCommerce on a running sandbox store: `install` sends the app's auth callback "
        "a code (which the app exchanges at the sandbox's POST /oauth2/token for the store's token); `load`, "
        "`uninstall` and `remove-user` GET the app's callbacks with a signed_payload_jwt (HS256, the app's "
        "client secret). `uninstall` first revokes the store's token and deletes the app's hooks there. "
        "--forge sends what an app must refuse, and changes nothing in the sandbox.",
    )
    app.add_argument("action", choices=["install", "load", "uninstall", "remove-user"])
    app.add_argument("--store", help="the store's hash (default: the sandbox's first store)")
    app.add_argument(
        "--app-url",
        help="the base of the app's callbacks: "
        + ", ".join(f"{path} ({name})" for name, path in CALLBACK_PATHS.items())
        + " under it (default: the base last given for this app, or of the auth callback it was installed "
        "with)",
    )
    app.add_argument("--callback-url", help="the exact callback URL to call instead of one under --app-url")
    app.add_argument(
        "--client-id", default=DEFAULT_APP_CLIENT_ID, help=f"the app (default {DEFAULT_APP_CLIENT_ID})"
    )
    app.add_argument(
        "--scope", action="append", help="a scope to grant on install (repeat; default the app's)"
    )
    app.add_argument("--user-id", type=int, help="the acting user's id (default the store owner's)")
    app.add_argument("--user-email", help="the acting user's email (default the store owner's)")
    app.add_argument(
        "--forge",
        choices=[*FORGERIES, *INSTALL_FORGERIES],
        help="send a JWT signed with the wrong secret, expired, not yet valid, for another audience or "
        "issuer, or unsigned; or (install) a code never issued",
    )
    app.add_argument(
        "--sandbox",
        default=default_sandbox,
        help=f"sandbox URL (default: the one `bcwebhooks dev` runs, else {DEFAULT_SANDBOX_URL})",
    )
    app.set_defaults(run=run_app_control)


def add_trigger_command(commands: Any, default_sandbox: str = DEFAULT_SANDBOX_URL) -> None:
    """Register `trigger` on the CLI's subparsers; --sandbox defaults to `default_sandbox`."""
    parser = commands.add_parser(
        "trigger",
        help="fire webhook events: through the sandbox, or signed straight at a receiver",
        description="Fire events for a documented scope. Against the sandbox (default) the change really "
        "happens in the store and its hooks deliver it; with --to the callback is signed with --secret and "
        "POSTed straight to that receiver URL.",
    )
    parser.add_argument("scope", help="a documented scope, e.g. store/product/updated")
    parser.add_argument("--id", help="the record to act on (default: one of the store's)")
    parser.add_argument("--count", type=int, default=1, help="how many times (default 1)")
    parser.add_argument(
        "--sandbox",
        default=default_sandbox,
        help=f"sandbox URL (default: the one `bcwebhooks dev` runs, else {DEFAULT_SANDBOX_URL})",
    )
    parser.add_argument("--to", help="receiver URL to POST signed callbacks to directly")
    parser.add_argument("--secret", help="client secret to sign with (with --to)")
    parser.add_argument(
        "--store",
        "--store-hash",
        dest="store_hash",
        help="the sandbox store to change (default its first), or with --to the producer store hash "
        f"(default {DEFAULT_STORE_HASH})",
    )
    parser.add_argument("--header", action="append", default=[], help="extra header NAME=VALUE (with --to)")
    parser.set_defaults(run=run_trigger)


def run_sandbox(args: argparse.Namespace) -> int:
    """Serve the sandbox store until interrupted."""
    config = SandboxConfig(
        store_hash=args.store_hash,
        seed=args.seed,
        products=args.products,
        customers=args.customers,
        orders=args.orders,
        quota=args.quota,
        window_seconds=args.window,
        time_scale=args.time_scale,
        allow_http=args.allow_http,
        retry_timestamp=RetryTimestamp(args.retry_timestamp),
        stores=args.stores,
        apps=[AppProfile(args.app_client_id, args.app_client_secret)],
    )
    if args.stores < 1:
        print("bcwebhooks sandbox: --stores must be at least 1", file=sys.stderr)
        return 2
    try:
        config.store_quotas = {h: int(n) for h, n in (q.split("=", 1) for q in args.store_quota)}
    except ValueError:
        print("bcwebhooks sandbox: --store-quota takes HASH=N, e.g. sandbox2=450", file=sys.stderr)
        return 2
    if args.accounts:
        config.accounts = load_accounts(args.accounts)
    hashes = config.store_hashes()
    print(
        f"bcwebhooks sandbox: store{'s' if len(hashes) > 1 else ''} {', '.join(hashes)} at "
        f"http://{args.host}:{args.port} (BIGCOMMERCE_API_URL=http://{args.host}:{args.port} "
        f"BIGCOMMERCE_STORE_HASH={config.store_hash}); quota {config.quota} per {config.window_seconds:g} s "
        f"each; time scale {config.time_scale:g}; app {args.app_client_id} (token endpoint /oauth2/token)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        create_sandbox_app(config), host=args.host, port=args.port, log_level="warning", access_log=False
    )
    return 0


def run_trigger(args: argparse.Namespace) -> int:
    """Fire `--count` events of a scope, through the sandbox or directly at a receiver."""
    if args.scope not in STORE_SCOPES:
        suggestions = ", ".join(close_matches(args.scope)) or "none"
        print(
            f"bcwebhooks trigger: unknown scope {args.scope!r}; close matches: {suggestions}", file=sys.stderr
        )
        return 2
    if args.to:
        return _trigger_direct(args)
    return _trigger_sandbox(args)


def _trigger_sandbox(args: argparse.Namespace) -> int:
    for _ in range(args.count):
        try:
            response = httpx.post(
                f"{args.sandbox}/_sandbox/trigger",
                params={"store": args.store_hash} if args.store_hash else None,
                json={"scope": args.scope, "id": args.id},
                timeout=10,
            )
        except httpx.HTTPError as error:
            print(
                f"bcwebhooks trigger: cannot reach the sandbox at {args.sandbox} ({type(error).__name__})",
                file=sys.stderr,
            )
            return 1
        if response.status_code != 200:
            print(f"bcwebhooks trigger: {response.json().get('error', response.text)}", file=sys.stderr)
            return 1
        for event in response.json()["events"]:
            print(f"{event['scope']} {json.dumps(event['data'])} -> {event['hooks']} hook(s)")
    return 0


def _trigger_direct(args: argparse.Namespace) -> int:
    if not args.secret:
        print(
            "bcwebhooks trigger: --to needs --secret (the client secret the receiver verifies)",
            file=sys.stderr,
        )
        return 2
    extra = dict(header.split("=", 1) for header in args.header if "=" in header)
    args.store_hash = args.store_hash or DEFAULT_STORE_HASH
    store = generate_store(args.store_hash, seed=1)
    failures = 0
    for _ in range(args.count):
        try:
            events = trigger_scope(store, args.scope, args.id)
        except TriggerError as error:
            print(f"bcwebhooks trigger: {error}", file=sys.stderr)
            return 2
        for scope, data in events:
            body = callback_body(scope, args.store_hash, data, int(time.time()))
            headers = {
                "content-type": "application/json",
                **extra,
                **sign_headers(args.secret, f"msg_{uuid.uuid4().hex}", body, time.time()),
            }
            try:
                response = httpx.post(args.to, content=body, headers=headers, timeout=10)
            except httpx.HTTPError as error:
                print(f"{scope} -> cannot reach {args.to} ({type(error).__name__})", file=sys.stderr)
                return 1
            failures += not 200 <= response.status_code < 300
            print(f"{scope} {json.dumps(data)} -> {response.status_code} {response.text[:120]}".rstrip())
    return 1 if failures else 0


def run_app_control(args: argparse.Namespace) -> int:
    """POST /_sandbox/app/ACTION on the running sandbox and print what the app answered."""
    body: dict[str, Any] = {
        "client_id": args.client_id,
        "app_url": args.app_url,
        "callback_url": args.callback_url,
    }
    if args.scope:
        body["scopes"] = args.scope
    if args.forge:
        body["forge"] = args.forge
    if args.user_id is not None or args.user_email:
        body["user"] = {
            key: value
            for key, value in (("id", args.user_id), ("email", args.user_email))
            if value is not None
        }
    action = args.action.replace("-", "_")
    try:
        response = httpx.post(
            f"{args.sandbox}/_sandbox/app/{action}",
            params={"store": args.store} if args.store else None,
            json=body,
            timeout=60,
        )
    except httpx.HTTPError as error:
        print(
            f"bcwebhooks sandbox app: cannot reach the sandbox at {args.sandbox} ({type(error).__name__})",
            file=sys.stderr,
        )
        return 1
    answer = response.json()
    if "status" not in answer:
        print(f"bcwebhooks sandbox app: {answer.get('error', response.text)}", file=sys.stderr)
        return 1
    facts = " ".join(f"{key}={answer[key]}" for key in ("exchanged", "installed") if key in answer)
    print(f"{args.action} -> {answer['callback']}: {answer['status']} {facts}".rstrip())
    return 0 if 200 <= answer["status"] < 400 else 1
