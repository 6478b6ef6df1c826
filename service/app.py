"""The Starlette application: the webhook route, probes, /metrics, the dashboard, JSON error bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.dashboard import Dashboard
from service.early_warning import RECEIVER_SUBJECT, BlocklistRisk, risk_incident
from service.incidents import BLOCKLIST_RISK, open_incident_async, resolve_open_async
from service.lanes import StormLanes
from service.metrics import EdgeMetrics
from service.oauth import AUTH_PATH, EXCHANGE_TIMEOUT_SECONDS, AppCallbacks, oauth_routes
from service.queue import EventQueue, connect
from service.receiver import Receiver, rejection
from service.redis_connection import sync_client
from service.settings import Settings
from service.signatures import Authenticator
from service.stores import Stores, TokenCipher

WEBHOOK_PATH = "/webhooks/bigcommerce"
# BigCommerce needs the deliveryException hook on a destination of its own; its callbacks are events too.
DELIVERY_EXCEPTION_PATH = "/webhooks/bigcommerce/delivery-exceptions"
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}
SOCKET_TIMEOUT_SECONDS = 2.0

log = structlog.get_logger("bcwebhooks.receiver")


class ReceiverApp(Starlette):
    """The Starlette app, with the callbacks' POSTs handed straight to the receiver.

    Every callback is a POST to one of two fixed paths. Sending those past Starlette's middleware stack and
    router (two exception wrappers, a regex per route, three nested `send` wrappers) let one uvicorn process
    take about a fifth more callbacks per second (measured A/B, as bench_ingest.py drives it). The routes
    stay declared, so Starlette answers all the rest as before: other methods (405), other paths (404),
    the probes, the lifespan. An exception escaping the receiver goes to uvicorn, which logs it and answers
    500, as ServerErrorMiddleware would.
    """

    def __init__(self, *args: Any, direct: dict[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.direct = direct  # route path -> the ASGI app its POSTs go to

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.direct.get(_route_path(scope))
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, redis_url: str) -> Starlette:
    """Build the receiver app for `settings`, persisting to the Redis at `redis_url`.

    In app mode it also serves BigCommerce's app callbacks (service/oauth.py) and accepts callbacks from
    installed stores only.
    """
    queue = EventQueue(
        connect(redis_url),
        settings.dedup_window_seconds,
        min_replicas=settings.redis_min_replicas,
        replica_timeout_ms=settings.redis_replica_timeout_ms,
        lanes=StormLanes(settings.coalesce_threshold),
    )
    metrics = EdgeMetrics()
    early_warning = blocklist_risk(queue, metrics)
    oauth = app_callbacks(settings, redis_url, queue) if settings.app_mode else None
    receiver = Receiver(
        authenticator=Authenticator.from_settings(settings),
        queue=queue,
        store_hash=None if settings.app_mode else settings.store_hash,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
        metrics=metrics.callbacks,
        early_warning=early_warning,
    )
    dashboard = _dashboard(settings, redis_url)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if await queue.ping():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "redis_unreachable"}, status_code=503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await queue.close()
        if dashboard is not None:
            dashboard.client.close()
        if oauth is not None:
            await oauth.http.aclose()
            oauth.stores.client.close()

    app = ReceiverApp(
        direct={WEBHOOK_PATH: receiver, DELIVERY_EXCEPTION_PATH: receiver},
        routes=[
            Route(WEBHOOK_PATH, receiver, methods=["POST"]),
            Route(DELIVERY_EXCEPTION_PATH, receiver, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
            *(dashboard.routes() if dashboard is not None else []),
            *(oauth_routes() if oauth is not None else []),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.oauth = oauth
    return app


def blocklist_risk(queue: EventQueue, metrics: EdgeMetrics) -> BlocklistRisk:
    """The receiver's early warning; its incidents are written in the background when Redis answers."""
    pending: set[asyncio.Task[Any]] = set()

    def in_background(step: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(_logged(step))
        pending.add(task)
        task.add_done_callback(pending.discard)

    warning = BlocklistRisk(
        metrics.registry,
        on_risk=lambda ratio, requests: in_background(
            open_incident_async(queue.client, risk_incident(ratio, requests))
        ),
        on_recovered=lambda: in_background(
            resolve_open_async(queue.client, "", BLOCKLIST_RISK, RECEIVER_SUBJECT, "ratio back above 95 %")
        ),
    )
    metrics.before_exposition.append(warning.refresh)
    return warning


async def _logged(step: Coroutine[Any, Any, Any]) -> None:
    try:
        await step
    except Exception as error:  # Redis down: the warning line and the gauge still say it
        log.info("incident.not_recorded", error=f"{type(error).__name__}: {error}")


def _dashboard(settings: Settings, redis_url: str) -> Dashboard | None:
    """The dashboard when BCWEBHOOKS_DASHBOARD_TOKEN is set; without it /dashboard is a 404."""
    if settings.dashboard_token is None:
        return None
    client = sync_client(redis_url, socket_timeout=5, socket_connect_timeout=5)
    stores = None if settings.app_mode else [settings.single_store_hash]
    return Dashboard(settings.dashboard_token.get_secret_value(), client, settings.stream_name, stores)


def app_callbacks(settings: Settings, redis_url: str, queue: EventQueue) -> AppCallbacks:
    """What the app callbacks need, for an app-mode `settings` (see service/oauth.py)."""
    assert settings.client_id and settings.client_secret and settings.app_url  # settings.check_mode
    client = sync_client(redis_url, socket_timeout=SOCKET_TIMEOUT_SECONDS)
    cipher = TokenCipher([key.get_secret_value() for key in settings.encryption_keys])
    return AppCallbacks(
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        login_url=settings.login_url,
        redirect_uri=settings.app_url + AUTH_PATH,
        stores=Stores(client, cipher),
        queue=queue,
        http=httpx.AsyncClient(timeout=EXCHANGE_TIMEOUT_SECONDS),
    )


def _route_path(scope: Scope) -> str:
    """The path the routes match: uvicorn's --root-path prefixes scope["path"] with scope["root_path"]."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        return path[len(root_path) :]
    return path


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    response = rejection(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response
