"""`bcwebhooks dev`: sandbox store, Redis, receiver and a worker in one foreground process tree."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
import uvicorn

from service.app import WEBHOOK_PATH, create_app
from service.bigcommerce import ApiClient, ApiError, StoreApi
from service.cli import start_worker_process, stop_process
from service.embedded_redis import EmbeddedRedis, resolve_redis_url
from service.logs import configure_logging
from service.sandbox.access import DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN
from service.sandbox.app import DEFAULT_STORE_HASH, SandboxConfig, create_sandbox_app
from service.settings import LogFormat, load_settings

DEV_WORKER_THREADS = 4
STARTUP_TIMEOUT_SECONDS = 15.0
DEMO_SCOPES = ("store/order/*", "store/product/*", "store/customer/*", "store/cart/*")
DEMO_SEQUENCE = (
    "store/product/updated",
    "store/order/statusUpdated",
    "store/customer/created",
    "store/cart/created",
)

log = structlog.get_logger("bcwebhooks.dev")


@dataclass
class DevOptions:
    """What `bcwebhooks dev` was asked for."""

    host: str
    port: int
    sandbox_port: int
    demo: bool


def uses_sandbox(environ: Mapping[str, str]) -> bool:
    """No BigCommerce credentials configured → run against the sandbox store."""
    return not environ.get("BIGCOMMERCE_ACCESS_TOKEN")


def run_dev_stack(environ: Mapping[str, str], options: DevOptions) -> int:
    """Run until Ctrl-C; returns the exit code."""
    env = dict(environ)
    env.setdefault("BCWEBHOOKS_LOG_FORMAT", LogFormat.CONSOLE.value)
    env.setdefault("BCWEBHOOKS_DATA_DIR", os.path.join(".bcwebhooks", "dev"))
    configure_logging(LogFormat(env["BCWEBHOOKS_LOG_FORMAT"]), env.get("BCWEBHOOKS_LOG_LEVEL", "info"))
    embedded: list[EmbeddedRedis] = []
    worker: list[Any] = []
    try:
        asyncio.run(_run(env, options, embedded, worker))
    except KeyboardInterrupt:
        pass
    finally:
        for process in worker:
            stop_process(process)
        for server in embedded:
            server.stop()
    return 0


async def _run(
    env: dict[str, str], options: DevOptions, embedded: list[EmbeddedRedis], worker: list[Any]
) -> None:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    sandbox_url = None
    if uses_sandbox(env):
        sandbox = uvicorn.Server(
            _config(create_sandbox_app(SandboxConfig(allow_http=True)), options.host, options.sandbox_port)
        )
        sandbox_url = await _start(sandbox, servers)
        env.update(
            BIGCOMMERCE_API_URL=sandbox_url,
            BIGCOMMERCE_STORE_HASH=DEFAULT_STORE_HASH,
            BIGCOMMERCE_ACCESS_TOKEN=DEFAULT_TOKEN,
            BIGCOMMERCE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        )
    settings = load_settings(env)
    redis_url, server = resolve_redis_url(settings.redis_url, settings.data_dir)
    embedded.extend([server] if server else [])
    worker.append(
        start_worker_process(
            env, redis_url, processes=1, threads=DEV_WORKER_THREADS, poll_ms=settings.worker_poll_ms
        )
    )
    receiver = uvicorn.Server(_config(create_app(settings, redis_url), options.host, options.port))
    receiver_url = await _start(receiver, servers) + WEBHOOK_PATH
    where = (
        f"sandbox store at {sandbox_url}"
        if sandbox_url
        else f"store {settings.store_hash} at {settings.api_url}"
    )
    print(f"bcwebhooks dev: receiver {receiver_url}; {where}; Ctrl-C stops", file=sys.stderr, flush=True)
    if sandbox_url:
        await asyncio.to_thread(register_demo_hooks, sandbox_url, receiver_url)
        if options.demo:
            await fire_demo_sequence(sandbox_url)
    await asyncio.gather(*(task for _, task in servers))


def _config(app: object, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)  # type: ignore[arg-type]


async def _start(server: uvicorn.Server, servers: list[tuple[uvicorn.Server, asyncio.Task[None]]]) -> str:
    task = asyncio.create_task(server.serve())
    servers.append((server, task))
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise SystemExit(f"bcwebhooks dev: a server did not start on port {server.config.port} (in use?)")
        await asyncio.sleep(0.05)
    host, port = next(sock for s in server.servers for sock in s.sockets).getsockname()[:2]
    return f"http://{host}:{port}"


def register_demo_hooks(sandbox_url: str, receiver_url: str) -> None:
    """Subscribe the receiver to the demo scopes on the sandbox, through the real API client."""
    with ApiClient(sandbox_url, DEFAULT_STORE_HASH, DEFAULT_TOKEN) as client:
        api = StoreApi(client)
        existing = {hook["scope"] for hook in api.list_hooks(destination=receiver_url)}
        for scope in DEMO_SCOPES:
            if scope not in existing:
                try:
                    api.create_hook(scope, receiver_url)
                except ApiError as error:
                    log.error("dev.hook_not_registered", scope=scope, error=str(error))
    log.info("dev.hooks_registered", scopes=list(DEMO_SCOPES), destination=receiver_url)


async def fire_demo_sequence(sandbox_url: str) -> None:
    """Make a few changes in the sandbox; each fires callbacks to the receiver."""
    async with httpx.AsyncClient(timeout=10) as client:
        for scope in DEMO_SEQUENCE:
            response = await client.post(f"{sandbox_url}/_sandbox/trigger", json={"scope": scope})
            fired = [event["scope"] for event in response.json().get("events", [])]
            log.info("dev.demo_change", trigger=scope, fired=fired)
            await asyncio.sleep(0.3)
