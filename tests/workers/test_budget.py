"""The shared API budget: its math against a real Redis, and two processes sharing one quota."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from service.bigcommerce import ApiClient
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.servers import ThreadedUvicorn, wait_for
from workers.budget import ApiBudget

QUOTA_HEADERS = {
    "x-rate-limit-requests-quota": "10",
    "x-rate-limit-time-window-ms": "1000",
    "x-rate-limit-requests-left": "10",
    "x-rate-limit-time-reset-ms": "1000",
}


def test_our_share_of_the_quota_is_granted_then_the_wait_is_given(redis_client: redis.Redis) -> None:
    budget = ApiBudget(redis_client, "s1", reserve_share=0.2)
    budget.observe(200, QUOTA_HEADERS)

    waits = [budget.acquire() for _ in range(9)]

    assert waits[:8] == [0.0] * 8  # 80 % of 10
    assert 0 < waits[8] <= 1.0


def test_the_window_rolls(redis_client: redis.Redis) -> None:
    budget = ApiBudget(redis_client, "s2", reserve_share=0.0)
    budget.observe(
        200, {**QUOTA_HEADERS, "x-rate-limit-requests-quota": "2", "x-rate-limit-time-window-ms": "300"}
    )
    assert [budget.acquire(), budget.acquire()] == [0.0, 0.0]
    wait = budget.acquire()

    time.sleep(wait + 0.02)

    assert budget.acquire() == 0.0


def test_a_429_seen_by_one_worker_pauses_every_worker(redis_client: redis.Redis) -> None:
    one, other = ApiBudget(redis_client, "s3"), ApiBudget(redis_client, "s3")

    one.observe(429, {"x-rate-limit-time-reset-ms": "1500"})

    assert 1.3 <= other.acquire() <= 1.5


def test_what_other_apps_used_counts_too(redis_client: redis.Redis) -> None:
    budget = ApiBudget(redis_client, "s4", reserve_share=0.2)
    # The server says only 2 of 10 are left (other apps spent them): that is the reserve, so we wait.
    budget.observe(
        200, {**QUOTA_HEADERS, "x-rate-limit-requests-left": "2", "x-rate-limit-time-reset-ms": "700"}
    )

    assert 0.5 <= budget.acquire() <= 0.7


def test_budgets_of_different_stores_are_independent(redis_client: redis.Redis) -> None:
    ApiBudget(redis_client, "busy").observe(429, {"x-rate-limit-time-reset-ms": "5000"})

    assert ApiBudget(redis_client, "quiet").acquire() == 0.0


@pytest.fixture
def tiny_sandbox() -> Iterator[str]:
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig(quota=20, window_seconds=2.0))) as server:
        yield server.base_url


WORKER_SCRIPT = """
import sys, redis
from service.bigcommerce import ApiClient
from workers.budget import ApiBudget
budget = ApiBudget(redis.Redis.from_url(sys.argv[2]), "sandbox")
with ApiClient(sys.argv[1], "sandbox", "sandbox-token", budget=budget) as client:
    for _ in range(int(sys.argv[3])):
        client.get_json("/v2/store")
"""


def test_two_worker_processes_share_one_budget_and_never_see_a_429(
    tiny_sandbox: str, redis_url: str, redis_client: redis.Redis
) -> None:
    started = time.monotonic()
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, tiny_sandbox, redis_url, "20"])
        for _ in range(2)
    ]
    codes = [worker.wait(60) for worker in workers]
    elapsed = time.monotonic() - started

    stats = httpx.get(f"{tiny_sandbox}/_sandbox/stats").json()
    assert codes == [0, 0]
    assert stats["calls"]["/v2/store"] == 40
    assert stats["rate_limited"] == 0
    # 16 per 2 s between them (80 % of 20): 40 calls need at least two full windows.
    assert elapsed >= 4.0


def recording(sleeps: list[float]) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    return sleep


def test_a_429_injected_by_the_api_pauses_a_second_client(
    tiny_sandbox: str, redis_client: redis.Redis
) -> None:
    httpx.post(
        f"{tiny_sandbox}/_sandbox/faults",
        json={"status": 429, "count": 1, "path_prefix": "/v2/store", "reset_ms": 1200},
    )
    first_sleeps: list[float] = []
    second_sleeps: list[float] = []
    first = ApiClient(
        tiny_sandbox,
        "sandbox",
        "sandbox-token",
        budget=ApiBudget(redis_client, "sandbox"),
        sleep=recording(first_sleeps),
    )
    second = ApiClient(
        tiny_sandbox,
        "sandbox",
        "sandbox-token",
        budget=ApiBudget(redis_client, "sandbox"),
        sleep=recording(second_sleeps),
    )

    meets_the_429 = threading.Thread(target=first.get_json, args=("/v2/store",))
    meets_the_429.start()  # waits the reset out, then retries
    wait_for(lambda: bool(first_sleeps), 5, "the first client to meet the 429")
    second.get_json("/v2/store")
    meets_the_429.join(10)

    assert first_sleeps and first_sleeps[0] >= 1.0
    assert second_sleeps and second_sleeps[0] >= 0.9  # paused by the other client's 429, without seeing one


def test_a_429_that_leaves_requests_in_the_quota_pauses_no_one(redis_client: redis.Redis) -> None:
    budget = ApiBudget(redis_client, "s-bulk", reserve_share=0.0)
    budget.observe(200, QUOTA_HEADERS)

    # A second bulk upsert refused while the first runs: the quota is not spent.
    budget.observe(429, {**QUOTA_HEADERS, "x-rate-limit-requests-left": "7"})

    assert budget.acquire() == 0.0


def test_each_store_has_its_own_budget_a_spent_or_paused_store_holds_back_no_other(
    redis_client: redis.Redis,
) -> None:
    spent, paused, quiet = (ApiBudget(redis_client, name, reserve_share=0.2) for name in ("sa", "sb", "sc"))
    spent.observe(200, QUOTA_HEADERS)
    quiet.observe(200, QUOTA_HEADERS)
    assert [spent.acquire() for _ in range(8)] == [0.0] * 8
    paused.observe(429, {"x-rate-limit-time-reset-ms": "5000"})

    assert spent.acquire() > 0
    assert paused.acquire() > 0
    assert [quiet.acquire() for _ in range(8)] == [0.0] * 8
