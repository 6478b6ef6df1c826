"""The sandbox store as an ASGI app: the REST API under /stores/{hash}, /v3/hooks, and /_sandbox controls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import Receive, Scope, Send

from service.sandbox import changes
from service.sandbox.access import INFORMATION, ApiAccount, default_accounts
from service.sandbox.channel_events import with_channel_events
from service.sandbox.data import generate_store
from service.sandbox.delivery import STORE_ID, Deliverer, RetryTimestamp
from service.sandbox.errors import ApiFailure, ChangeError
from service.sandbox.hooks import HookRegistry
from service.sandbox.http import (
    Fault,
    SandboxState,
    endpoint,
    fire,
    json_body,
    path_int,
    unrouted,
    v3_list,
    v3_one,
)
from service.sandbox.oauth import AppDirectory, AppProfile, app_control_routes, default_apps, oauth_routes
from service.sandbox.quota import DEFAULT_QUOTA, DEFAULT_WINDOW_SECONDS, RollingQuota
from service.sandbox.routes import api_routes
from service.sandbox.triggers import TriggerError, trigger_scope

DEFAULT_STORE_HASH = "sandbox"


@dataclass
class SandboxConfig:
    """How to build a sandbox store.

    Parameters:
      store_hash: the first store's hash in /stores/{store_hash}.
      stores: how many stores: `store_hash`, then `{store_hash}2`, `{store_hash}3`, ... each with its own
        data (seed, seed + 1, ...), quota, hooks and accounts (tokens after the first store's end in -{hash}).
      seed: generates the same store every time.
      products, customers, orders: how many of each the generated store has.
      quota, window_seconds: the shared rate limit (150 per 30 s by default).
      time_scale: delivery retries, blocklist windows and blocks run this many times faster.
      allow_http: accept http:// hook destinations on any port (local receivers).
      retry_timestamp: retries signed with a fresh timestamp (default) or the first attempt's.
    """

    store_hash: str = DEFAULT_STORE_HASH
    seed: int = 1
    products: int = 60
    customers: int = 40
    orders: int = 50
    quota: int = DEFAULT_QUOTA
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    time_scale: float = 1.0
    allow_http: bool = False
    retry_timestamp: RetryTimestamp = RetryTimestamp.FRESH
    accounts: list[ApiAccount] = field(default_factory=default_accounts)
    stores: int = 1
    apps: list[AppProfile] = field(default_factory=default_apps)
    store_quotas: dict[str, int] = field(default_factory=dict)  # a store's own quota (another plan's)

    def store_hashes(self) -> list[str]:
        """The stores' hashes, the first one's first."""
        return [self.store_hash, *(f"{self.store_hash}{n}" for n in range(2, self.stores + 1))]


def build_state(config: SandboxConfig, index: int = 0) -> SandboxState:
    """A fresh store (the config's `index`-th) with its accounts, quota, hooks and deliverer."""
    store_hash = config.store_hashes()[index]
    own = [a if index == 0 else replace(a, token=f"{a.token}-{store_hash}") for a in config.accounts]
    accounts = {account.token: account for account in own}
    registry = HookRegistry(store_hash, allow_http=config.allow_http)
    deliverer = Deliverer(
        registry,
        {a.client_id: a for a in own},
        time_scale=config.time_scale,
        retry_timestamp=config.retry_timestamp,
        store_id=str(int(STORE_ID) + index),
    )
    return SandboxState(
        store=generate_store(
            store_hash,
            config.seed + index,
            products=config.products,
            customers=config.customers,
            orders=config.orders,
        ),
        accounts=accounts,
        quota=RollingQuota(config.store_quotas.get(store_hash, config.quota), config.window_seconds),
        hooks=registry,
        deliverer=deliverer,
    )


def create_sandbox_app(config: SandboxConfig) -> Starlette:
    """The sandbox's ASGI app; `app.state.sandbox` holds the first store's SandboxState, `app.state.stores`
    every store's by hash, `app.state.apps` the OAuth side."""
    states = {
        store_hash: build_state(config, index) for index, store_hash in enumerate(config.store_hashes())
    }
    directory = AppDirectory({app.client_id: app for app in config.apps}, states)
    controls = {
        store_hash: Router([*control_routes(state), *app_control_routes(directory, state)])
        for store_hash, state in states.items()
    }

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for state in states.values():
            await state.deliverer.close()

    first = states[config.store_hash]
    app = Starlette(
        routes=[
            *(
                Mount(f"/stores/{store_hash}", routes=[*api_routes(state), *hook_routes(state)])
                for store_hash, state in states.items()
            ),
            *oauth_routes(directory),
            Route("/_sandbox/stores", stores_control(directory)),
            Route("/_sandbox{rest:path}", StoreControls(controls)),
        ],
        lifespan=lifespan,
        # Unknown routes answer BigCommerce's JSON error envelope, counted against the first store's quota.
        exception_handlers={404: unrouted(first), 405: unrouted(first)},
    )
    app.state.sandbox = first
    app.state.stores = states
    app.state.apps = directory
    return app


class StoreControls:
    """Sends /_sandbox/* to the controls of the store `?store=HASH` names (the first store by default)."""

    def __init__(self, routers: dict[str, Router]) -> None:
        self.routers = routers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        store_hash = query.get("store", [next(iter(self.routers))])[0]
        router = self.routers.get(store_hash)
        if router is None:
            message = f"no store {store_hash!r}; the sandbox has {', '.join(self.routers)}"
            await JSONResponse({"error": message}, status_code=404)(scope, receive, send)
            return
        await router(scope, receive, send)


def stores_control(directory: AppDirectory) -> Any:
    """GET /_sandbox/stores: every store's hash, store id and API base path, and the apps installed on it."""

    async def stores(request: Request) -> Response:
        return JSONResponse(
            {
                "stores": [
                    {
                        "store_hash": store_hash,
                        "store_id": state.deliverer.store_id,
                        "api_path": f"/stores/{store_hash}",
                        "owner": directory.owner(store_hash),
                        "apps": [
                            {"client_id": i.client_id, "token": i.token, "scopes": list(i.scopes),
                             "users": sorted(i.users)}
                            for (_, installed_on), i in directory.installs.items()
                            if installed_on == store_hash
                        ],
                    }
                    for store_hash, state in directory.states.items()
                ]
            }
        )  # fmt: skip

    return stores


def hook_routes(state: SandboxState) -> list[Route]:
    """/v3/hooks and /v3/hooks/admin, with BigCommerce's per-client rules."""
    hooks = state.hooks

    async def list_hooks(request: Request, account: ApiAccount) -> Any:
        q = request.query_params
        items = hooks.visible(account.client_id)
        if "scope" in q:
            items = [h for h in items if h.scope == q["scope"]]
        if "destination" in q:
            items = [h for h in items if h.destination == q["destination"]]
        if "is_active" in q:
            items = [h for h in items if h.is_active == (q["is_active"].lower() == "true")]
        return v3_list(request, [h.public() for h in sorted(items, key=lambda h: h.id)])

    async def create(request: Request, account: ApiAccount) -> Any:
        return v3_one(hooks.create(account.client_id, await json_body(request)).public())

    async def get(request: Request, account: ApiAccount) -> Any:
        return v3_one(hooks.get(account.client_id, path_int(request, "hook_id")).public())

    async def update(request: Request, account: ApiAccount) -> Any:
        return v3_one(
            hooks.update(account.client_id, path_int(request, "hook_id"), await json_body(request)).public()
        )

    async def delete(request: Request, account: ApiAccount) -> Any:
        return v3_one(hooks.delete(account.client_id, path_int(request, "hook_id")).public())

    async def admin(request: Request, account: ApiAccount) -> Any:
        q = request.query_params
        items = hooks.visible(account.client_id)
        if "is_active" in q:
            items = [h for h in items if h.is_active == (q["is_active"].lower() == "true")]
        data = {
            "emails": hooks.emails.get(account.client_id, []),
            "hooks_list": [{**h.public(), "status": h.status} for h in items],
            "blocked_domains": state.deliverer.blocked_domains(account.client_id),
        }
        return {"data": data, "meta": {"pagination": {"total": len(items), "count": len(items)}}}

    async def set_emails(request: Request, account: ApiAccount) -> Any:
        body = await json_body(request)
        emails = body.get("emails") if isinstance(body, dict) else None
        if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
            raise ApiFailure(422, "JSON data is missing or invalid", {"emails": "a list of email addresses"})
        hooks.emails[account.client_id] = emails
        return Response(status_code=204)

    def r(path: str, handler: Any, method: str = "GET") -> Route:
        return Route(path, endpoint(state, INFORMATION, method != "GET", handler), methods=[method])

    return [
        r("/v3/hooks", list_hooks),
        r("/v3/hooks", create, "POST"),
        r("/v3/hooks/admin", admin),
        r("/v3/hooks/admin", set_emails, "PUT"),
        r("/v3/hooks/{hook_id}", get),
        r("/v3/hooks/{hook_id}", update, "PUT"),
        r("/v3/hooks/{hook_id}", delete, "DELETE"),
    ]


def control_routes(state: SandboxState) -> list[Route]:
    """/_sandbox/*: what tests and `bcwebhooks trigger` use to drive and observe the store (no auth)."""

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "store_hash": state.store.store_hash,
                "accounts": [
                    {"token": a.token, "client_id": a.client_id, "scopes": sorted(a.scopes)}
                    for a in state.accounts.values()
                ],
            }
        )

    async def deliveries(request: Request) -> Response:
        return JSONResponse(
            {"attempts": state.deliverer.attempts, "notifications": state.hooks.notifications}
        )

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "calls": state.calls,
                "api_calls": sum(state.calls.values()),
                "rate_limited": state.quota.refused,
            }
        )

    async def requests(request: Request) -> Response:
        return JSONResponse({"requests": list(state.requests)})

    async def events(request: Request) -> Response:
        return JSONResponse({"events": list(state.fired)})

    async def change_many(request: Request) -> Response:
        body = await request.json()
        counts = {k: int(body.get(k, 0)) for k in ("products", "orders", "customers")}
        changed, events = changes.change_many(state.store, **counts)
        fire(state, events)
        return JSONResponse({"changed": changed, "events": len(events)})

    async def faults(request: Request) -> Response:
        body = await request.json()
        fault = Fault(
            int(body["status"]),
            int(body.get("count", 1)),
            str(body.get("path_prefix", "/")),
            int(body.get("reset_ms", 200)),
        )
        state.faults.append(fault)
        return JSONResponse({"status": fault.status, "count": fault.count, "path_prefix": fault.path_prefix})

    async def clear_faults(request: Request) -> Response:
        remaining = sum(fault.count for fault in state.faults)
        state.faults.clear()
        return JSONResponse({"cleared": remaining})

    async def trigger(request: Request) -> Response:
        body = await request.json()
        try:
            fired = trigger_scope(state.store, str(body.get("scope", "")), body.get("id"))
        except (TriggerError, ChangeError) as error:
            return JSONResponse(
                {"error": str(error)}, status_code=422 if isinstance(error, TriggerError) else error.status
            )
        reports: dict[str, list[dict[str, Any]]] = {"events": [], "channel_events": []}
        for scope, data in with_channel_events(state.store, fired):
            twin = scope.startswith("store/channel/") and (scope, data) not in fired
            kind = "channel_events" if twin else "events"
            reports[kind].append({"scope": scope, "data": data, "hooks": state.deliverer.fire(scope, data)})
        # "events": what the scope itself fired; "channel_events": their store/channel/{id}/... twins
        return JSONResponse(reports)

    return [
        Route("/_sandbox", info),
        Route("/_sandbox/deliveries", deliveries),
        Route("/_sandbox/stats", stats),
        Route("/_sandbox/requests", requests),
        Route("/_sandbox/events", events),
        Route("/_sandbox/changes", change_many, methods=["POST"]),
        Route("/_sandbox/faults", faults, methods=["POST"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/trigger", trigger, methods=["POST"]),
    ]
