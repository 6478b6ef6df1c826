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

from service.bigcommerce.webhook_scopes import STORE_SCOPES, close_matches
from service.sandbox.access import DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN, load_accounts
from service.sandbox.app import DEFAULT_STORE_HASH, SandboxConfig, create_sandbox_app
from service.sandbox.data import generate_store
from service.sandbox.delivery import callback_body, sign_headers
from service.sandbox.triggers import TriggerError, trigger_scope

DEFAULT_SANDBOX_PORT = 8200
DEFAULT_SANDBOX_URL = f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}"


def add_sandbox_command(commands: Any) -> None:
    """Register `sandbox` on the CLI's subparsers."""
    parser = commands.add_parser(
        "sandbox",
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
        "--store-hash", default=DEFAULT_STORE_HASH, help=f"store hash (default {DEFAULT_STORE_HASH})"
    )
    parser.add_argument("--seed", type=int, default=1, help="generates the same store every time (default 1)")
    parser.add_argument(
        "--products", type=int, default=60, help="products in the generated catalog (default 60)"
    )
    parser.add_argument("--quota", type=int, default=150, help="requests per window, shared (default 150)")
    parser.add_argument(
        "--window", type=float, default=30.0, help="rate-limit window in seconds (default 30)"
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
        "--accounts", type=Path, help="JSON file of API accounts [{token, client_id, client_secret, scopes}]"
    )
    parser.set_defaults(run=run_sandbox)


def add_trigger_command(commands: Any) -> None:
    """Register `trigger` on the CLI's subparsers."""
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
        "--sandbox", default=DEFAULT_SANDBOX_URL, help=f"sandbox URL (default {DEFAULT_SANDBOX_URL})"
    )
    parser.add_argument("--to", help="receiver URL to POST signed callbacks to directly")
    parser.add_argument("--secret", help="client secret to sign with (with --to)")
    parser.add_argument("--store-hash", default=DEFAULT_STORE_HASH, help="producer store hash (with --to)")
    parser.add_argument("--header", action="append", default=[], help="extra header NAME=VALUE (with --to)")
    parser.set_defaults(run=run_trigger)


def run_sandbox(args: argparse.Namespace) -> int:
    """Serve the sandbox store until interrupted."""
    config = SandboxConfig(
        store_hash=args.store_hash,
        seed=args.seed,
        products=args.products,
        quota=args.quota,
        window_seconds=args.window,
        time_scale=args.time_scale,
        allow_http=args.allow_http,
    )
    if args.accounts:
        config.accounts = load_accounts(args.accounts)
    print(
        f"bcwebhooks sandbox: store {config.store_hash} at http://{args.host}:{args.port} "
        f"(BIGCOMMERCE_API_URL=http://{args.host}:{args.port} BIGCOMMERCE_STORE_HASH={config.store_hash}); "
        f"quota {config.quota} per {config.window_seconds:g} s; time scale {config.time_scale:g}",
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
                f"{args.sandbox}/_sandbox/trigger", json={"scope": args.scope, "id": args.id}, timeout=10
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
