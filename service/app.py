"""The Starlette application: the webhook route, health and readiness probes, JSON error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.queue import EventQueue, connect
from service.receiver import Receiver, rejection
from service.settings import Settings
from service.signatures import Authenticator

WEBHOOK_PATH = "/webhooks/bigcommerce"
# BigCommerce needs the deliveryException hook on a destination of its own; its callbacks are events too.
DELIVERY_EXCEPTION_PATH = "/webhooks/bigcommerce/delivery-exceptions"
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


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

    app = Starlette(
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


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    response = rejection(exc.status_code, code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response
