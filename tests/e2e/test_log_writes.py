"""The receiver's log lines go out in batches in the Docker image's environment (PYTHONUNBUFFERED=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from scripts.benchkit import image_environment
from tests.helpers import CLIENT_SECRET, STORE_HASH, encode, envelope, signed
from tests.servers import free_port, wait_for

pytestmark = pytest.mark.e2e
CALLBACKS = 300
START_TIMEOUT_SECONDS = 30.0


class Receiver:
    """`bcwebhooks serve` started with the image's environment, its output in a file."""

    def __init__(self, redis_url: str, log_level: str, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **image_environment(),
            "REDIS_URL": redis_url,
            "BIGCOMMERCE_STORE_HASH": STORE_HASH,
            "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
            "BCWEBHOOKS_LOG_LEVEL": log_level,
        }
        with log_path.open("wb") as log:
            argv = [sys.executable, "-m", "service", "serve", "--port", str(self.port)]
            self.popen = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}")
        wait_for(self._ready, START_TIMEOUT_SECONDS, "the receiver to be ready")

    def _ready(self) -> bool:
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def write_calls(self) -> int:
        """write() system calls the process has made so far (Linux /proc)."""
        io_counters = Path(f"/proc/{self.popen.pid}/io").read_text().splitlines()
        fields = dict(line.split(": ") for line in io_counters)
        return int(fields["syscw"])

    def stop(self) -> None:
        self.client.close()
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[list[Receiver]]:
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


def _script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))


def _writes_for_callbacks(receiver: Receiver, client: redis.Redis, lines: int) -> int:
    """write() calls for CALLBACKS sequential callbacks (once their `lines` are out), less Redis's."""
    requests = []
    for _ in range(CALLBACKS):
        raw = encode(envelope())
        requests.append((raw, {**signed(raw), "content-type": "application/json"}))
    writes_before, scripts_before = receiver.write_calls(), _script_calls(client)
    for raw, headers in requests:
        assert receiver.client.post("/webhooks/bigcommerce", content=raw, headers=headers).status_code == 200
    wait_for(
        lambda: receiver.log_path.read_text().count('"callback.enqueued"') == lines,
        10,
        "the log lines to be flushed",
    )
    return receiver.write_calls() - writes_before - (_script_calls(client) - scripts_before)


def test_receiver_log_writes_stay_batched_with_the_images_environment(
    redis_url: str, redis_client: redis.Redis, receivers: list[Receiver], tmp_path: Path
) -> None:
    assert image_environment()["PYTHONUNBUFFERED"] == "1"  # the case this test is about
    quiet = Receiver(redis_url, "warning", tmp_path / "quiet.log")  # no line per request: the baseline
    logging = Receiver(redis_url, "info", tmp_path / "info.log")
    receivers.extend([quiet, logging])

    baseline = _writes_for_callbacks(quiet, redis_client, lines=0)
    with_lines = _writes_for_callbacks(logging, redis_client, lines=CALLBACKS)

    # Unbuffered, each line is a write() of its own: CALLBACKS more. Batched, a write per 50 ms at most.
    assert with_lines - baseline < CALLBACKS / 4, (baseline, with_lines)
