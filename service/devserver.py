"""`bcwebhooks dev`: sandbox store, Redis, receiver and a worker in one foreground process tree."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
import uvicorn

from service.app import WEBHOOK_PATH, create_app
from service.bigcommerce import ApiClient, ApiError, StoreApi
from service.devapp import APP_MODE_VARIABLES, app_mode_environ, install_on_every_store, write_hooks_file
from service.devstate import SANDBOX_URL_ENV, STATE_FILENAME, DevState, dev_data_dir, write_dev_state
from service.embedded_redis import EmbeddedRedis, resolve_redis_url
from service.logs import configure_logging
from service.metrics import multiprocess_directory
from service.sandbox.access import DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN
from service.sandbox.app import DEFAULT_STORE_HASH, SandboxConfig, create_sandbox_app
from service.settings import LogFormat, Settings, load_settings
from service.worker_process import start_worker_process, stop_process

DASHBOARD_TOKEN_ENV = "BCWEBHOOKS_DASHBOARD_TOKEN"  # noqa: S105 (a variable name)
DASHBOARD_TOKEN_FILENAME = "dashboard.token"  # noqa: S105 (a file name)

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
    stores: int = 0  # app mode against this many sandbox stores; 0: one store with the sandbox's token


def uses_sandbox(environ: Mapping[str, str]) -> bool:
    """No BigCommerce credentials configured → run against the sandbox store."""
    return not environ.get("BIGCOMMERCE_ACCESS_TOKEN")


def run_dev_stack(environ: Mapping[str, str], options: DevOptions) -> int:
    """Run until Ctrl-C; returns the exit code."""
    env = dict(environ)
    env.setdefault("BCWEBHOOKS_LOG_FORMAT", LogFormat.CONSOLE.value)
    env["BCWEBHOOKS_DATA_DIR"] = str(dev_data_dir(env))
    configure_logging(LogFormat(env["BCWEBHOOKS_LOG_FORMAT"]), env.get("BCWEBHOOKS_LOG_LEVEL", "info"))
    embedded: list[EmbeddedRedis] = []
    worker: list[Any] = []
    state_file = Path(env["BCWEBHOOKS_DATA_DIR"]) / STATE_FILENAME
    try:
        with multiprocess_directory(env) as metrics_dir:
            asyncio.run(_run(env, options, embedded, worker, metrics_dir))
    except KeyboardInterrupt:
        pass
    finally:
        state_file.unlink(missing_ok=True)
        for process in worker:
            stop_process(process)
        for server in embedded:
            server.stop()
    return 0


async def _run(
    env: dict[str, str],
    options: DevOptions,
    embedded: list[EmbeddedRedis],
    worker: list[Any],
    metrics_dir: str,
) -> None:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    sandbox_url = None
    environ_token_given = bool(env.get(DASHBOARD_TOKEN_ENV, "").strip())
    app_mode = uses_sandbox(env) and options.stores > 0
    if options.stores and not app_mode:
        log.warning("dev.stores_ignored", reason="BIGCOMMERCE_ACCESS_TOKEN is set: dev uses your store")
    if uses_sandbox(env):
        config = SandboxConfig(allow_http=True, stores=max(options.stores, 1))
        sandbox = uvicorn.Server(_config(create_sandbox_app(config), options.host, options.sandbox_port))
        sandbox_url = await _start(sandbox, servers)
        env.update(
            BIGCOMMERCE_API_URL=sandbox_url,
            BIGCOMMERCE_STORE_HASH=DEFAULT_STORE_HASH,
            BIGCOMMERCE_ACCESS_TOKEN=DEFAULT_TOKEN,
            BIGCOMMERCE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        )
    if app_mode and sandbox_url:
        # The app's URL goes into the workers' settings, so the receiver's port is chosen before it starts.
        options.port = options.port or free_port(options.host)
        app_url = f"http://{options.host}:{options.port}"
        for name in ("BIGCOMMERCE_STORE_HASH", "BIGCOMMERCE_ACCESS_TOKEN"):
            env.pop(name)
        data_dir = Path(env["BCWEBHOOKS_DATA_DIR"])
        env.update(app_mode_environ(data_dir, sandbox_url, app_url, app_url + WEBHOOK_PATH, DEMO_SCOPES))
    elif sandbox_url:
        # The workers' hook monitor compares the sandbox's hooks with the ones dev registers: a hooks file
        # that declares them, so the receiver's port is chosen before the worker starts (as in app mode).
        options.port = options.port or free_port(options.host)
        declared = write_hooks_file(
            Path(env["BCWEBHOOKS_DATA_DIR"]),
            f"http://{options.host}:{options.port}{WEBHOOK_PATH}",
            DEMO_SCOPES,
        )
        env.update(BCWEBHOOKS_HOOKS_FILE=str(declared), BCWEBHOOKS_HOOKS_ALLOW_HTTP="true")
    if not env.get(DASHBOARD_TOKEN_ENV, "").strip():
        env[DASHBOARD_TOKEN_ENV] = dev_dashboard_token(Path(env["BCWEBHOOKS_DATA_DIR"]))
    settings = load_settings(env)
    redis_url, server = resolve_redis_url(settings.redis_url, settings.data_dir)
    embedded.extend([server] if server else [])
    worker.append(
        start_worker_process(
            env,
            redis_url,
            processes=1,
            threads=DEV_WORKER_THREADS,
            poll_ms=settings.worker_poll_ms,
            metrics_dir=metrics_dir,
        )
    )
    receiver = uvicorn.Server(_config(create_app(settings, redis_url), options.host, options.port))
    receiver_url = await _start(receiver, servers) + WEBHOOK_PATH
    where = (
        f"sandbox store at {sandbox_url}"
        if sandbox_url
        else f"store {settings.store_hash or '(app mode)'} at {settings.api_url}"
    )
    if app_mode:
        where = f"app mode, sandbox stores {', '.join(config.store_hashes())} at {sandbox_url}"
    state = DevState(os.getpid(), receiver_url, reach_from_elsewhere(env, settings, redis_url, sandbox_url))
    write_dev_state(settings.data_dir, state)
    home = receiver_url.removesuffix(WEBHOOK_PATH)
    dashboard = (
        f"dashboard {home}/dashboard (log in with BCWEBHOOKS_DASHBOARD_TOKEN)"
        if environ_token_given
        else f"dashboard {home}/dashboard?token={env[DASHBOARD_TOKEN_ENV]} (dev's own token)"
    )
    print(
        f"bcwebhooks dev: receiver {receiver_url}; {where}; Ctrl-C stops\n"
        f"bcwebhooks dev: {dashboard}; metrics at /metrics and on port {settings.metrics_port} (workers)\n"
        f"bcwebhooks dev: tail, dlq, hooks, doctor and trigger run in another terminal in this directory "
        f"find this stack by themselves; from elsewhere: {state.exports()}",
        file=sys.stderr,
        flush=True,
    )
    if app_mode and sandbox_url:
        stores = config.store_hashes()
        await install_on_every_store(
            sandbox_url, receiver_url.removesuffix(WEBHOOK_PATH), stores, len(DEMO_SCOPES)
        )
        for store in stores if options.demo else ():
            await fire_demo_sequence(sandbox_url, store)
    elif sandbox_url:
        await asyncio.to_thread(register_demo_hooks, sandbox_url, receiver_url)
        if options.demo:
            await fire_demo_sequence(sandbox_url)
    await asyncio.gather(*(task for _, task in servers))


def dev_dashboard_token(data_dir: Path) -> str:
    """dev's dashboard token when BCWEBHOOKS_DASHBOARD_TOKEN is unset: made on first use, kept in the data
    directory (readable by its owner only), and printed as a login link, for a local stack only."""
    path = data_dir / DASHBOARD_TOKEN_FILENAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(token + "\n")
    return token


def reach_from_elsewhere(
    env: Mapping[str, str], settings: Settings, redis_url: str, sandbox_url: str | None
) -> dict[str, str]:
    """The variables that point another command at this stack; a real store's secrets are never included."""
    reach = {"REDIS_URL": redis_url}
    if sandbox_url and settings.app_mode:
        reach.update({name: env[name] for name in APP_MODE_VARIABLES})
        reach[SANDBOX_URL_ENV] = sandbox_url
    elif sandbox_url:
        names = (
            "BIGCOMMERCE_API_URL",
            "BIGCOMMERCE_STORE_HASH",
            "BIGCOMMERCE_ACCESS_TOKEN",
            "BCWEBHOOKS_HOOKS_FILE",
            "BCWEBHOOKS_HOOKS_ALLOW_HTTP",
        )
        reach.update({name: env[name] for name in names})
        reach["BIGCOMMERCE_CLIENT_SECRET"] = env["BIGCOMMERCE_CLIENT_SECRET"]
        reach[SANDBOX_URL_ENV] = sandbox_url
    return reach


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


async def fire_demo_sequence(sandbox_url: str, store: str | None = None) -> None:
    """Make a few changes in a sandbox store (`store`, else the first); each fires callbacks."""
    params = {"store": store} if store else None
    async with httpx.AsyncClient(timeout=10) as client:
        for scope in DEMO_SEQUENCE:
            response = await client.post(
                f"{sandbox_url}/_sandbox/trigger", params=params, json={"scope": scope}
            )
            fired = [event["scope"] for event in response.json().get("events", [])]
            log.info("dev.demo_change", trigger=scope, fired=fired, **({"store": store} if store else {}))
            await asyncio.sleep(0.3)


def free_port(host: str) -> int:
    """A port nothing listens on at `host` now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
