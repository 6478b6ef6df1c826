"""Fixtures for whole-pipeline tests: sandbox store, receiver, and an in-process Dramatiq worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from service.app import create_app
from service.sandbox.access import DEFAULT_CLIENT_SECRET, ApiAccount, default_accounts
from service.sandbox.app import SandboxConfig, create_sandbox_app
from service.settings import Settings
from tests.conftest import make_settings
from tests.e2e.processes import Process
from tests.helpers import CLIENT_SECRET, HEADER_SECRET, STORE_HASH
from tests.servers import ThreadedUvicorn
from workers.broker import build_broker, build_context
from workers.context import set_context
from workers.events import ProcessedEvent
from workers.handlers import HandlerRegistry
from workers.metrics import event_metrics
from workers.processing import WorkerContext

TOKEN = {"X-Auth-Token": "sandbox-token"}
NO_PRODUCTS_TOKEN = "orders-only-token"
MAX_RETRIES = 2


@pytest.fixture(scope="session")
def broker(redis_url: str) -> RedisBroker:
    broker = build_broker(redis_url, max_retries=MAX_RETRIES, min_backoff_ms=50)
    dramatiq.set_broker(broker)
    from workers.actors import (
        flush_batch_actor,
        forward_event_actor,
        handle_app_event_actor,
        process_callback_actor,
        process_catalog_bulk_actor,
        process_catalog_callback_actor,
        process_unbatched_actor,
        replay_dead_letters_actor,
    )

    for actor in (
        process_callback_actor,
        process_catalog_callback_actor,
        process_unbatched_actor,
        flush_batch_actor,
        forward_event_actor,
        replay_dead_letters_actor,
        handle_app_event_actor,
        process_catalog_bulk_actor,
    ):
        broker.declare_actor(actor)
        actor.broker = broker
    return broker


@dataclass
class Stack:
    sandbox: str
    receiver: str
    context: WorkerContext
    redis: redis.Redis
    worker: dramatiq.Worker

    def hook(self, scope: str) -> None:
        body = {"scope": scope, "destination": self.receiver}
        assert (
            httpx.post(f"{self.sandbox}/stores/sandbox/v3/hooks", headers=TOKEN, json=body).status_code == 200
        )

    def trigger(self, scope: str, record_id: Any = None) -> list[dict[str, Any]]:
        response = httpx.post(f"{self.sandbox}/_sandbox/trigger", json={"scope": scope, "id": record_id})
        assert response.status_code == 200, response.text
        return list(response.json()["events"])

    def fault(self, status: int, count: int, path_prefix: str) -> None:
        body = {"status": status, "count": count, "path_prefix": path_prefix, "reset_ms": 100}
        httpx.post(f"{self.sandbox}/_sandbox/faults", json=body)

    def stream(self) -> list[ProcessedEvent]:
        entries = self.redis.xrange(self.context.output.name)
        return [ProcessedEvent.from_json(fields[b"event"]) for _, fields in entries]


def worker_settings(
    sandbox: str,
    token: str = "sandbox-token",
    coalesce_window_ms: str = "1000",
    coalesce_threshold: str = "20",
) -> Settings:
    return make_settings(
        BCWEBHOOKS_COALESCE_WINDOW_MS=coalesce_window_ms,
        BCWEBHOOKS_COALESCE_THRESHOLD=coalesce_threshold,
        BIGCOMMERCE_STORE_HASH="sandbox",
        BIGCOMMERCE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        BIGCOMMERCE_API_URL=sandbox,
        BIGCOMMERCE_ACCESS_TOKEN=token,
    )


@pytest.fixture
def stack(
    redis_url: str, redis_client: redis.Redis, broker: RedisBroker, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    options = getattr(request, "param", {})
    token = options.get("token", "sandbox-token")
    accounts = [
        *default_accounts(),
        ApiAccount(NO_PRODUCTS_TOKEN, "orders-only", "x", frozenset({"store_v2_orders_read_only"})),
    ]
    config = SandboxConfig(
        allow_http=True,
        accounts=accounts,
        quota=options.get("quota", 150),
        window_seconds=options.get("window_seconds", 30.0),
    )
    sandbox = ThreadedUvicorn(create_sandbox_app(config))
    with sandbox:
        settings = worker_settings(
            sandbox.base_url,
            token,
            options.get("coalesce_window_ms", "1000"),
            options.get("coalesce_threshold", "20"),
        )
        receiver = ThreadedUvicorn(create_app(settings, redis_url))
        with receiver:
            context = build_context(settings, redis_url)
            context.handlers = HandlerRegistry()
            set_context(context)
            worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
            worker.start()
            try:
                yield Stack(
                    sandbox.base_url,
                    f"{receiver.base_url}/webhooks/bigcommerce",
                    context,
                    redis_client,
                    worker,
                )
            finally:
                worker.stop()
                tally = event_metrics().tally
                if tally is not None:  # no count may land in the next test's Redis a second later
                    tally.flush()
                context.store_api.client.close()


PROCESS_ACCESS_TOKEN = "access-token-value-9f8e7d"


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    """A sandbox store whose one account may read orders (modules may define their own)."""
    account = ApiAccount(
        PROCESS_ACCESS_TOKEN, "e2e-client", CLIENT_SECRET, frozenset({"store_v2_orders_read_only"})
    )
    with ThreadedUvicorn(
        create_sandbox_app(SandboxConfig(store_hash=STORE_HASH, accounts=[account]))
    ) as server:
        yield server.base_url


@pytest.fixture
def environ(redis_url: str, tmp_path: Path, sandbox_url: str) -> dict[str, str]:
    """The environment a command gets: the test Redis, the sandbox store, our secrets."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_URL": redis_url,
        "BIGCOMMERCE_STORE_HASH": STORE_HASH,
        "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "BCWEBHOOKS_HEADER_SECRET": HEADER_SECRET,
        "BIGCOMMERCE_ACCESS_TOKEN": PROCESS_ACCESS_TOKEN,
        "BIGCOMMERCE_API_URL": sandbox_url,
        "BCWEBHOOKS_LOG_FORMAT": "json",
        "BCWEBHOOKS_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Process]]:
    """The commands a test starts; each is stopped by its PID at the end."""
    processes: list[Process] = []
    yield processes
    for process in processes:
        process.stop()
