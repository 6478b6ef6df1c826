"""Sandbox store → signed delivery → our receiver → Redis, driven by the `trigger` command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import redis

from service.app import create_app
from service.sandbox.access import DEFAULT_CLIENT_SECRET
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.conftest import make_settings
from tests.helpers import queued_callbacks
from tests.servers import ThreadedUvicorn, wait_for

pytestmark = pytest.mark.e2e
TOKEN = {"X-Auth-Token": "sandbox-token"}


@pytest.fixture
def servers(redis_url: str, redis_client: redis.Redis) -> Iterator[tuple[str, str]]:
    settings = make_settings(
        BIGCOMMERCE_STORE_HASH="sandbox", BIGCOMMERCE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET
    )
    sandbox = ThreadedUvicorn(create_sandbox_app(SandboxConfig(allow_http=True)))
    receiver = ThreadedUvicorn(create_app(settings, redis_url))
    with sandbox, receiver:
        yield sandbox.base_url, f"{receiver.base_url}/webhooks/bigcommerce"


def bcwebhooks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, timeout=60
    )


def test_triggered_change_reaches_the_queue_verified(
    servers: tuple[str, str], redis_client: redis.Redis
) -> None:
    sandbox, receiver = servers
    created = httpx.post(
        f"{sandbox}/stores/sandbox/v3/hooks",
        headers=TOKEN,
        json={"scope": "store/product/*", "destination": receiver},
    )
    assert created.status_code == 200

    result = bcwebhooks("trigger", "store/product/updated", "--id", "4", "--sandbox", sandbox)

    assert result.returncode == 0, result.stderr
    assert "store/product/updated" in result.stdout and "1 hook(s)" in result.stdout
    wait_for(lambda: len(queued_callbacks(redis_client)) == 1, 10, "the callback in the queue")
    [callback] = queued_callbacks(redis_client)
    assert callback["envelope"]["data"] == {"type": "product", "id": 4}
    assert callback["webhook_id"].startswith("msg_")
    attempts = httpx.get(f"{sandbox}/_sandbox/deliveries").json()["attempts"]
    assert [(a["status"], a["outcome"]) for a in attempts] == [(200, "delivered")]


def test_trigger_signs_straight_at_a_receiver(servers: tuple[str, str], redis_client: redis.Redis) -> None:
    _, receiver = servers

    good = bcwebhooks(
        "trigger",
        "store/order/created",
        "--to",
        receiver,
        "--secret",
        DEFAULT_CLIENT_SECRET,
        "--store-hash",
        "sandbox",
        "--count",
        "2",
    )
    bad = bcwebhooks(
        "trigger", "store/order/created", "--to", receiver, "--secret", "wrong", "--store-hash", "sandbox"
    )

    assert good.returncode == 0, good.stderr
    assert good.stdout.count("-> 200") == 2
    assert bad.returncode == 1 and "-> 401" in bad.stdout
    assert [c["envelope"]["scope"] for c in queued_callbacks(redis_client)] == ["store/order/created"] * 2


def test_unknown_scope_lists_close_matches() -> None:
    result = bcwebhooks("trigger", "store/order/statusUpdate")

    assert result.returncode == 2
    assert "close matches: store/order/statusUpdated" in result.stderr
