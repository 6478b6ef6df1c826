"""`bcwebhooks dev`: receiver, worker and Redis in one foreground process tree, for local use."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Mapping

import httpx
import structlog
import uvicorn

from service.app import WEBHOOK_PATH, create_app
from service.cli import start_worker_process, stop_process
from service.embedded_redis import resolve_redis_url
from service.logs import configure_logging
from service.settings import Settings
from service.signatures import signed_headers

DEV_WORKER_THREADS = 4
STARTUP_TIMEOUT_SECONDS = 10.0

log = structlog.get_logger("bcwebhooks.dev")


def run_dev_stack(settings: Settings, environ: Mapping[str, str], host: str, port: int, demo: bool) -> int:
    """Run until Ctrl-C: embedded (or configured) Redis, one worker process, and the receiver."""
    configure_logging(settings.log_format, settings.log_level)
    redis_url, embedded = resolve_redis_url(settings.redis_url, settings.data_dir)
    worker = start_worker_process(environ, redis_url, processes=1, threads=DEV_WORKER_THREADS)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, redis_url), host=host, port=port, log_level="warning", access_log=False
        )
    )
    try:
        asyncio.run(_serve(server, settings, demo))
    except KeyboardInterrupt:
        pass
    finally:
        stop_process(worker)
        if embedded is not None:
            embedded.stop()
    return 0


async def _serve(server: uvicorn.Server, settings: Settings, demo: bool) -> None:
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if serving.done() or time.monotonic() > deadline:
            await serving
            raise SystemExit("bcwebhooks dev: the receiver did not start (is the port in use?)")
        await asyncio.sleep(0.05)
    host, port = _bound_address(server)
    url = f"http://{host}:{port}{WEBHOOK_PATH}"
    print(
        f"bcwebhooks dev: receiver listening on {url} (store {settings.store_hash}); Ctrl-C stops",
        file=sys.stderr,
    )
    if demo:
        await send_demo_callback(url, settings)
    await serving


def _bound_address(server: uvicorn.Server) -> tuple[str, int]:
    sockets = [sock for srv in server.servers for sock in srv.sockets]
    host, port = sockets[0].getsockname()[:2]
    return str(host), int(port)


async def send_demo_callback(url: str, settings: Settings) -> None:
    """POST one signed store/order/created callback to the receiver, as BigCommerce would."""
    if not settings.signing_secrets:
        log.info("dev.demo_skipped", reason="no client secret configured to sign with")
        return
    body = json.dumps(
        {
            "scope": "store/order/created",
            "store_id": "1000001",
            "data": {"type": "order", "id": 100},
            "hash": uuid.uuid4().hex[:40],
            "created_at": int(time.time()),
            "producer": f"stores/{settings.store_hash}",
        }
    ).encode()
    headers = signed_headers(settings.signing_secrets[0], body, f"demo-{uuid.uuid4()}", int(time.time()))
    if settings.header_secret is not None:
        headers[settings.header_name] = settings.header_secret.get_secret_value()
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(url, content=body, headers=headers)
    log.info("dev.demo_sent", scope="store/order/created", status=response.status_code)
