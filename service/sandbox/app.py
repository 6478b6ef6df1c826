"""The sandbox store as an ASGI app: the REST API under /stores/{hash}, /v3/hooks, and /_sandbox controls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from service.sandbox.access import ApiAccount, default_accounts
from service.sandbox.data import generate_store
from service.sandbox.delivery import Deliverer
from service.sandbox.errors import ApiFailure, ChangeError
from service.sandbox.hooks import HookRegistry
from service.sandbox.http import (
    Fault,
    SandboxState,
    endpoint,
    json_body,
    path_int,
    v3_list,
    v3_one,
)
from service.sandbox.quota import DEFAULT_QUOTA, DEFAULT_WINDOW_SECONDS, RollingQuota
from service.sandbox.routes import INFORMATION, api_routes
from service.sandbox.triggers import TriggerError, trigger_scope

DEFAULT_STORE_HASH = "sandbox"


@dataclass
class SandboxConfig:
    """How to build a sandbox store.

    Parameters:
      store_hash: the store's hash in /stores/{store_hash}.
      seed: generates the same store every time.
      products: how many products the generated catalog has.
      quota, window_seconds: the shared rate limit (150 per 30 s by default).
      time_scale: delivery retries, blocklist windows and blocks run this many times faster.
      allow_http: accept http:// hook destinations on any port (local receivers).
    """

    store_hash: str = DEFAULT_STORE_HASH
    seed: int = 1
    products: int = 60
    quota: int = DEFAULT_QUOTA
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    time_scale: float = 1.0
    allow_http: bool = False
    accounts: list[ApiAccount] = field(default_factory=default_accounts)


def build_state(config: SandboxConfig) -> SandboxState:
    """A fresh store with its accounts, quota, hooks and deliverer."""
    accounts = {account.token: account for account in config.accounts}
    registry = HookRegistry(config.store_hash, allow_http=config.allow_http)
    deliverer = Deliverer(registry, {a.client_id: a for a in config.accounts}, time_scale=config.time_scale)
    return SandboxState(
        store=generate_store(config.store_hash, config.seed, products=config.products),
        accounts=accounts,
        quota=RollingQuota(config.quota, config.window_seconds),
        hooks=registry,
        deliverer=deliverer,
    )


def create_sandbox_app(config: SandboxConfig) -> Starlette:
    """The sandbox's ASGI app; `app.state.sandbox` holds its SandboxState."""
    state = build_state(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.deliverer.close()

    app = Starlette(
        routes=[
            Mount(f"/stores/{config.store_hash}", routes=[*api_routes(state), *hook_routes(state)]),
            *control_routes(state),
        ],
        lifespan=lifespan,
    )
    app.state.sandbox = state
    return app


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

    async def trigger(request: Request) -> Response:
        body = await request.json()
        try:
            fired = trigger_scope(state.store, str(body.get("scope", "")), body.get("id"))
        except (TriggerError, ChangeError) as error:
            return JSONResponse(
                {"error": str(error)}, status_code=422 if isinstance(error, TriggerError) else error.status
            )
        delivered_to = [state.deliverer.fire(scope, data) for scope, data in fired]
        return JSONResponse(
            {
                "events": [
                    {"scope": s, "data": d, "hooks": n} for (s, d), n in zip(fired, delivered_to, strict=True)
                ]
            }
        )

    return [
        Route("/_sandbox", info),
        Route("/_sandbox/deliveries", deliveries),
        Route("/_sandbox/stats", stats),
        Route("/_sandbox/requests", requests),
        Route("/_sandbox/faults", faults, methods=["POST"]),
        Route("/_sandbox/trigger", trigger, methods=["POST"]),
    ]
