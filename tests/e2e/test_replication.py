"""High availability on replicated Redis: WAIT before acknowledging, and a Sentinel failover under load.

Every Redis here is a process of the test's own (tests/replication.py): a primary, replicas, a Sentinel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.testclient import TestClient

from service.app import create_app
from service.queue import PROBE_KEY
from service.redis_connection import close_sync, sync_client
from service.sandbox.access import DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN
from service.sandbox.app import SandboxConfig, create_sandbox_app
from service.settings import Settings
from tests.conftest import make_settings
from tests.helpers import encode, envelope, signed, stored_messages
from tests.replication import RedisNode, SentinelNode
from tests.servers import ThreadedUvicorn, wait_for
from workers.events import ProcessedEvent

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
STORE = "sandbox"
WEBHOOK = "/webhooks/bigcommerce"
STREAM = "bcwebhooks:events"
SETTLE_SECONDS = 60.0
FAILOVER_SECONDS = 30.0
REPLICA_TIMEOUT_MS = 1000  # a loaded test machine can hold a replica's acknowledgement for a few 100 ms


def replica_settings(**environ: str) -> Settings:
    return make_settings(
        BIGCOMMERCE_STORE_HASH=STORE,
        BIGCOMMERCE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        BCWEBHOOKS_REDIS_MIN_REPLICAS="1",
        BCWEBHOOKS_REDIS_REPLICA_TIMEOUT_MS=str(REPLICA_TIMEOUT_MS),
        **environ,
    )


def callback(webhook_id: str, order_id: int) -> tuple[bytes, dict[str, str]]:
    raw = encode(envelope(data={"type": "order", "id": order_id}, producer=f"stores/{STORE}"))
    headers = {**signed(raw, secret=DEFAULT_CLIENT_SECRET, webhook_id=webhook_id)}
    return raw, {**headers, "Content-Type": "application/json"}


def stream_counts(client: redis.Redis) -> Counter[str]:
    entries: Any = client.xrange(STREAM)
    return Counter(ProcessedEvent.from_json(fields[b"event"]).webhook_id for _, fields in entries)


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig(allow_http=True))) as sandbox:
        yield sandbox.base_url


def worker_env(redis_url: str, sandbox_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_URL": redis_url,
        "BIGCOMMERCE_STORE_HASH": STORE,
        "BIGCOMMERCE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "BIGCOMMERCE_ACCESS_TOKEN": DEFAULT_TOKEN,
        "BIGCOMMERCE_API_URL": sandbox_url,
        "BCWEBHOOKS_LOG_FORMAT": "json",
        # A step that failed on the lost primary is retried within a second, not Dramatiq's 2 s doubling.
        "BCWEBHOOKS_MIN_BACKOFF_MS": "200",
        "PYTHONPATH": str(ROOT),
    }


def start_worker(redis_url: str, sandbox_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(redis_url, sandbox_url)
    argv = [sys.executable, "-m", "service", "worker", "--threads", "4"]
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_callback_is_acknowledged_only_once_a_replica_has_it_and_a_retry_waits_again(
    tmp_path: Path, sandbox_url: str
) -> None:
    primary = RedisNode(tmp_path / "primary").start()
    replica = RedisNode(tmp_path / "replica", primary.port)
    worker = None
    try:
        replica.start()
        wait_for(lambda: primary.confirmed_by(1), 20, "the replica to sync")
        url = f"redis://127.0.0.1:{primary.port}/0"
        first = TestClient(create_app(replica_settings(), url)).__enter__()
        second = TestClient(create_app(replica_settings(), url)).__enter__()  # a second receiver
        raw, headers = callback("msg_replicated", 101)
        assert first.post(WEBHOOK, content=raw, headers=headers).status_code == 200
        with replica.client() as on_replica:
            assert stored_messages(on_replica) == 1  # WAIT returned: the replica has applied it
        doctor = subprocess.run(
            [sys.executable, "-m", "service", "doctor"],
            env={**worker_env(url, sandbox_url), "BCWEBHOOKS_REDIS_MIN_REPLICAS": "2"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "✗ Redis primary has 1 replica(s) online; BCWEBHOOKS_REDIS_MIN_REPLICAS=2" in doctor.stdout

        replica.send_signal(signal.SIGSTOP)  # connected, but it confirms nothing more
        raw, headers = callback("msg_unconfirmed", 102)
        refused = first.post(WEBHOOK, content=raw, headers=headers)
        assert (refused.status_code, refused.json()["error"]) == (503, "unavailable")
        # BigCommerce's retry reaches the other receiver, which finds the dedup mark: still not replicated.
        assert second.post(WEBHOOK, content=raw, headers=headers).status_code == 503
        with primary.client() as on_primary:
            assert on_primary.get(PROBE_KEY) == b"1"  # the duplicate's WAIT covered the first write

        # The primary has it: a worker processes it while the replica is still stopped, exactly once.
        worker = start_worker(url, sandbox_url, tmp_path / "worker.log")
        on_primary = primary.client()
        wait_for(lambda: stream_counts(on_primary)["msg_unconfirmed"] == 1, SETTLE_SECONDS, "processing")

        replica.send_signal(signal.SIGCONT)
        wait_for(lambda: primary.confirmed_by(1), 20, "the replica to catch up")
        assert second.post(WEBHOOK, content=raw, headers=headers).status_code == 200
        with replica.client() as on_replica:
            assert on_replica.get(PROBE_KEY) is not None
        wait_for(lambda: stored_messages(on_primary) == 0, SETTLE_SECONDS, "the queue to drain")
        assert stream_counts(on_primary) == {"msg_replicated": 1, "msg_unconfirmed": 1}
        first.__exit__(None, None, None)
        second.__exit__(None, None, None)
        on_primary.close()
    finally:
        if worker is not None:
            stop(worker)
        replica.stop()
        primary.stop()


def send_until_acknowledged(client: httpx.Client, webhook_id: str, order_id: int, deadline: float) -> int:
    """POST one callback, again after each 503 or failed connection, as BigCommerce retries; attempts."""
    raw, headers = callback(webhook_id, order_id)
    attempts = 0
    while True:
        attempts += 1
        try:
            if client.post(WEBHOOK, content=raw, headers=headers).status_code == 200:
                return attempts
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{webhook_id} was not acknowledged within the failover deadline")
        time.sleep(0.1)


def test_after_the_primary_dies_sentinel_promotes_a_replica_and_nothing_acknowledged_is_lost(
    tmp_path: Path, sandbox_url: str
) -> None:
    primary = RedisNode(tmp_path / "primary").start()
    replicas = [RedisNode(tmp_path / f"replica{n}", primary.port) for n in (1, 2)]
    sentinel = SentinelNode(tmp_path / "sentinel", primary.port)
    worker = None
    try:
        for replica in replicas:
            replica.start()
        wait_for(lambda: primary.confirmed_by(2), 20, "both replicas to sync")
        sentinel.start()
        wait_for(lambda: sentinel.known_replicas() == 2, 20, "the Sentinel to find the replicas")
        # The first Sentinel listed is down: the client moves on to the next.
        url = sentinel.url().replace("//", "//127.0.0.1:1,", 1)
        worker = start_worker(url, sandbox_url, tmp_path / "worker.log")
        with ThreadedUvicorn(create_app(replica_settings(), url)) as receiver:
            client = httpx.Client(base_url=receiver.base_url, timeout=10)
            deadline = time.monotonic() + FAILOVER_SECONDS
            before = [
                send_until_acknowledged(client, f"msg_before_{n}", 100 + n, deadline) for n in range(10)
            ]
            primary.kill()
            after = [send_until_acknowledged(client, f"msg_after_{n}", 200 + n, deadline) for n in range(10)]
            client.close()
        assert before == [1] * 10  # with a healthy primary and replicas, every one at the first attempt
        assert sentinel.primary_port_now() in {replica.port for replica in replicas}
        assert sum(after) > 10  # at least one was answered 503 (or not at all) during the switch

        expected = {f"msg_{when}_{n}": 1 for when in ("before", "after") for n in range(10)}
        state = sync_client(url, socket_timeout=5)
        try:
            wait_for(lambda: stream_counts(state) == expected, SETTLE_SECONDS, "each event streamed once")
        except AssertionError as error:  # say which, and where the worker's log is
            counts = stream_counts(state)
            wrong = {k: counts.get(k, 0) for k in expected if counts.get(k, 0) != 1}
            raise AssertionError(f"{error}: {wrong} (see {tmp_path / 'worker.log'})") from None
        close_sync(state)
        listed = subprocess.run(
            [sys.executable, "-m", "service", "dlq", "list", "--json"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDIS_URL": url},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr  # the CLI reaches the new primary through the Sentinel
    finally:
        if worker is not None:
            stop(worker)
        sentinel.stop()
        for node in (*replicas, primary):
            node.stop()
