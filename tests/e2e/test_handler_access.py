"""Least-privilege handlers in a real `bcwebhooks worker` process: a call outside the declared access is
refused without reaching the store, logged, and its event dead-lettered at once with the reason."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from service.sandbox.access import ALL_SCOPES, ApiAccount
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.e2e.processes import BCWEBHOOKS, START_TIMEOUT_SECONDS, Process, ready
from tests.helpers import CLIENT_SECRET, HEADER_SECRET, STORE_HASH, encode, envelope, signed
from tests.servers import ThreadedUvicorn, free_port, wait_for
from workers import dlq

pytestmark = pytest.mark.e2e
ACCESS_TOKEN = "full-access-token-5c4b3a"
HANDLERS = "tests.e2e.access_handlers"
REFUSED = f"handler {HANDLERS}.archive_the_order may not write orders (declared: orders=read)"


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    account = ApiAccount(ACCESS_TOKEN, "e2e-client", CLIENT_SECRET, frozenset(ALL_SCOPES))
    with ThreadedUvicorn(
        create_sandbox_app(SandboxConfig(store_hash=STORE_HASH, accounts=[account]))
    ) as server:
        yield server.base_url


def test_a_handler_overstepping_its_access_is_refused_logged_and_dead_lettered_without_an_api_call(
    sandbox_url: str, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_URL": redis_url,
        "BIGCOMMERCE_STORE_HASH": STORE_HASH,
        "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "BCWEBHOOKS_HEADER_SECRET": HEADER_SECRET,
        "BIGCOMMERCE_ACCESS_TOKEN": ACCESS_TOKEN,
        "BIGCOMMERCE_API_URL": sandbox_url,
        "BCWEBHOOKS_HANDLERS": HANDLERS,
        "BCWEBHOOKS_LOG_FORMAT": "json",
        "BCWEBHOOKS_DATA_DIR": str(tmp_path / "data"),
    }
    port = free_port()
    serve = Process([*BCWEBHOOKS, "serve", "--port", str(port)], environ, tmp_path / "serve.log")
    worker = Process([*BCWEBHOOKS, "worker", "--threads", "2"], environ, tmp_path / "worker.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: ready(f"{base}/readyz"), START_TIMEOUT_SECONDS, "the receiver to be ready")
        raw = encode(envelope(data={"type": "order", "id": 104}))
        headers = {**signed(raw, webhook_id="msg_access"), "X-Webhook-Secret": HEADER_SECRET}
        assert httpx.post(f"{base}/webhooks/bigcommerce", content=raw, headers=headers).status_code == 200

        wait_for(
            lambda: len(dlq.list_dead_letters(redis_client)) == 1, START_TIMEOUT_SECONDS, "the dead letter"
        )
    finally:
        serve.stop()
        worker.stop()

    (letter,) = [d.describe() for d in dlq.list_dead_letters(redis_client)]
    assert (letter["kind"], letter["scope"], letter["retries"]) == ("event", "store/order/created", 0)
    assert letter["error"] == f"AccessDenied: {REFUSED}"
    served = [
        (r["method"], r["path"]) for r in httpx.get(f"{sandbox_url}/_sandbox/requests").json()["requests"]
    ]
    assert ("PUT", "/v2/orders/104") in served  # the declared write went out
    assert ("DELETE", "/v2/orders/104") not in served  # the undeclared one never did
    calls = [
        (line["handler"].rsplit(".", 1)[-1], line["method"], line["resource"], line["outcome"])
        for line in map(json.loads, _json_lines(worker.output()))
        if line.get("event") == "handler.api_call"
    ]
    assert calls == [
        ("note_the_order", "orders.update", "PUT /v2/orders/104", "ok"),
        ("archive_the_order", "orders.get", "GET /v2/orders/104", "ok"),
        ("archive_the_order", "orders.archive", "DELETE /v2/orders/104", "refused"),
    ]
    assert ACCESS_TOKEN not in worker.output() + serve.output()


def _json_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("{")]


def test_a_worker_whose_handler_declares_an_unknown_area_stops_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "misdeclared_handlers.py").write_text(
        "from workers.handlers import handler\n\n"
        "@handler('store/order/*', access={'order': 'write'})\n"
        "def sync(event, api):\n    pass\n"
    )
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(tmp_path),
        "BIGCOMMERCE_STORE_HASH": STORE_HASH,
        "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "BIGCOMMERCE_ACCESS_TOKEN": ACCESS_TOKEN,
        "BCWEBHOOKS_HANDLERS": "misdeclared_handlers",
        "BCWEBHOOKS_DATA_DIR": str(tmp_path / "data"),
    }

    result = subprocess.run(
        [*BCWEBHOOKS, "worker"], env=environ, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "bcwebhooks: BCWEBHOOKS_HANDLERS: misdeclared_handlers: handler misdeclared_handlers.sync: "
        "unknown API area 'order' in access=; did you mean 'orders'? areas: products, variants, categories, "
        "brands, price_lists, orders, customers, carts, checkouts, webhooks"
    ]
