"""The Starlette application: the webhook route, health and readiness probes, JSON error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.queue import EventQueue, connect
from service.receiver import Receiver, rejection
from service.settings import Settings
from service.signatures import Authenticator

WEBHOOK_PATH = "/webhooks/bigcommerce"
# BigCommerce needs the deliveryException hook on a destination of its own; its callbacks are events too.
DELIVERY_EXCEPTION_PATH = "/webhooks/bigcommerce/delivery-exceptions"
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


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
    """Build the receiver app for `settings`, persisting to the Redis at `redis_url`."""
    queue = EventQueue(connect(redis_url), settings.dedup_window_seconds)
    receiver = Receiver(
        authenticator=Authenticator.from_settings(settings),
        queue=queue,
        store_hash=settings.store_hash,
        max_body_bytes=settings.max_body_bytes,
    )

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

    app = ReceiverApp(
        direct={WEBHOOK_PATH: receiver, DELIVERY_EXCEPTION_PATH: receiver},
        routes=[
            Route(WEBHOOK_PATH, receiver, methods=["POST"]),
            Route(DELIVERY_EXCEPTION_PATH, receiver, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.queue = queue
    return app


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
