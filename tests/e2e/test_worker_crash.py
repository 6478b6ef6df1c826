"""A worker SIGKILLed mid-task loses nothing: its message runs again on another worker within 2 minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from service.app import create_app
from service.sandbox.access import DEFAULT_CLIENT_SECRET
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.conftest import make_settings
from tests.servers import ThreadedUvicorn, wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
REDELIVERY_LIMIT_SECONDS = 120


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service", "worker", "--threads", "2"],
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_sigkilled_worker_s_message_runs_again_within_two_minutes(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig(allow_http=True))) as sandbox:
        settings = make_settings(
            BIGCOMMERCE_STORE_HASH="sandbox", BIGCOMMERCE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET
        )
        with ThreadedUvicorn(create_app(settings, redis_url)) as receiver:
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "REDIS_URL": redis_url,
                "BIGCOMMERCE_STORE_HASH": "sandbox",
                "BIGCOMMERCE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
                "BIGCOMMERCE_ACCESS_TOKEN": "sandbox-token",
                "BIGCOMMERCE_API_URL": sandbox.base_url,
                "BCWEBHOOKS_HANDLERS": "tests.e2e.slow_handlers",
                "BCWEBHOOKS_LOG_FORMAT": "json",
            }
            hook = {"scope": "store/subscriber/*", "destination": f"{receiver.base_url}/webhooks/bigcommerce"}
            httpx.post(
                f"{sandbox.base_url}/stores/sandbox/v3/hooks",
                headers={"X-Auth-Token": "sandbox-token"},
                json=hook,
            )
            first = start_worker(env, tmp_path / "worker1.log")
            second = None
            try:
                httpx.post(f"{sandbox.base_url}/_sandbox/trigger", json={"scope": "store/subscriber/created"})
                wait_for(lambda: bool(redis_client.keys("crash-test:runs:*")), 30, "the handler to start")
                for process in psutil.Process(first.pid).children(recursive=True):
                    process.send_signal(signal.SIGKILL)  # every dramatiq process, mid-task
                killed_at = time.monotonic()
                first.wait(30)
                second = start_worker(env, tmp_path / "worker2.log")
                wait_for(
                    lambda: bool(redis_client.keys("crash-test:finished:*")),
                    REDELIVERY_LIMIT_SECONDS,
                    "the message to run again",
                )
                elapsed = time.monotonic() - killed_at
            finally:
                for process in (first, second):
                    if process is not None and process.poll() is None:
                        process.send_signal(signal.SIGTERM)
                        process.wait(30)

    [runs_key] = redis_client.keys("crash-test:runs:*")
    assert int(redis_client.get(runs_key) or 0) == 2
    assert redis_client.xlen("bcwebhooks:events") == 1  # the stream step had succeeded before the kill
    print(f"redelivered {elapsed:.1f} s after SIGKILL")
    assert elapsed < REDELIVERY_LIMIT_SECONDS
