"""Ingest benchmark: the real receiver against a bare Starlette endpoint, same load, same run.

Starts its own redis-server (append-only on, 127.0.0.1, free port), a bare Starlette app that only parses
JSON, and `bcwebhooks serve` (log level info, one JSON line per request into a file, as in production),
each with one uvicorn process and the environment the Docker image sets (the Dockerfile's ENV lines,
PYTHONUNBUFFERED=1 among them), so that what is measured is what the image runs. Then drives each with
the same asyncio keep-alive load generator (unique, signed store/product/updated callbacks, never
repeated, so every one is a real write) and prints
requests/s, the ratio receiver/bare, p50/p99 latency, how many callbacks each Redis write carried, and
each server's CPU time per request (Linux).
Everything runs on 127.0.0.1 and stops by itself.

The measured seconds are split into rounds that alternate between the two servers, so that drift on a
shared machine (it is noisy: single rounds of the same server differ by a third) hits both; the ratio is
reported overall and as the median of the rounds.

    python scripts/bench_ingest.py --connections 32 --seconds 20 --rounds 10
    python scripts/bench_ingest.py --app-mode    # the receiver in app mode, the store installed

With --app-mode the receiver serves every store that installed the app (BCWEBHOOKS_ENCRYPTION_KEYS set, no
store hash), so each callback's store is checked against the installed stores inside the persist script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import redis
from benchkit import (
    Result,
    cpu_seconds,
    drive,
    free_port,
    image_environment,
    product_update_requests,
    start,
    start_redis,
    stop,
    wait_listening,
)

from service.events import QUEUE_NAMES
from service.stores import Stores, TokenCipher, new_key

SECRET = "bench-client-secret"  # noqa: S105 (a throwaway secret for a local benchmark)
STORE_HASH = "benchstore"
PATH = "/webhooks/bigcommerce"
WARM_UP_REQUESTS = 2_000
BARE_APP = """
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

async def receive(request: Request) -> Response:
    await request.json()
    return Response(status_code=200)

app = Starlette(routes=[Route("/webhooks/bigcommerce", receive, methods=["POST"])])
"""


class Endpoint:
    """One server under load: its own pool of signed callbacks, consumed in order across rounds."""

    def __init__(
        self, name: str, port: int, pid: int, pool: int, connections: int, reuse: bool = False
    ) -> None:
        self.name = name
        self.port = port
        self.pid = pid
        self.cpu_seconds: float | None = 0.0  # the server's CPU over the measured rounds
        self.connections = connections
        self.reuse = reuse  # the bare app keeps nothing, so its callbacks may go round again
        print(f"  {name}: signing {pool} callbacks...", file=sys.stderr, flush=True)
        self.requests = product_update_requests(port, pool + WARM_UP_REQUESTS, 2000, SECRET, STORE_HASH)
        self.cursor = 0
        self.rounds: list[Result] = []

    def warm_up(self) -> None:
        asyncio.run(drive(self.port, self.requests[:WARM_UP_REQUESTS], self.connections, 1.0))
        self.cursor = WARM_UP_REQUESTS

    def measure(self, seconds: float) -> Result:
        if self.reuse and len(self.requests) - self.cursor < len(self.requests) // 2:
            self.cursor = WARM_UP_REQUESTS
        cpu_before = cpu_seconds(self.pid)
        result = asyncio.run(drive(self.port, self.requests[self.cursor :], self.connections, seconds))
        cpu_after = cpu_seconds(self.pid)
        if cpu_before is None or cpu_after is None or self.cpu_seconds is None:
            self.cpu_seconds = None
        else:
            self.cpu_seconds += cpu_after - cpu_before
        self.cursor += result.requests
        if self.cursor >= len(self.requests):
            print(f"  {self.name}: used up its callbacks before the time was up", file=sys.stderr)
        self.rounds.append(result)
        return result

    @property
    def total(self) -> Result:
        return Result(
            requests=sum(r.requests for r in self.rounds),
            errors=sum(r.errors for r in self.rounds),
            seconds=sum(r.seconds for r in self.rounds),
            latencies_ms=[latency for r in self.rounds for latency in r.latencies_ms],
        )


def cpu_per_request(endpoint: Endpoint) -> float | None:
    """The server's CPU microseconds per request over the measured rounds."""
    if endpoint.cpu_seconds is None or not endpoint.total.requests:
        return None
    return endpoint.cpu_seconds * 1e6 / endpoint.total.requests


def report(name: str, result: Result) -> None:
    print(
        f"{name:<10} {result.rate:>9.0f} req/s   p50 {result.percentile(0.50):6.2f} ms   "
        f"p99 {result.percentile(0.99):6.2f} ms   non-200: {result.errors}   requests: {result.requests}"
    )


def app_mode_environment(redis_port: int) -> dict[str, str]:
    """App-mode variables, with the benchmark's store installed in the benchmark's Redis."""
    key = new_key()
    wait_listening(redis_port)
    client = redis.Redis(port=redis_port)
    Stores(client, TokenCipher([key])).record_install(STORE_HASH, "bench-token", "store_v2_products", {}, {})
    client.close()
    return {
        "BCWEBHOOKS_ENCRYPTION_KEYS": key,
        "BIGCOMMERCE_CLIENT_ID": "bench-client-id",
        "BCWEBHOOKS_APP_URL": "https://bench.example.com",
    }


def _assignments(environment: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in environment.items())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (32)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per endpoint (20)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="the seconds are split into this many rounds, bare and receiver alternating, so that drift "
        "on a shared machine hits both (10)",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=300_000,
        help="distinct signed callbacks per endpoint (300000); a run stops early when they are used up",
    )
    parser.add_argument(
        "--app-mode",
        action="store_true",
        help="run the receiver in app mode (the store installed): measures the installed-store check",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    redis_server, redis_port = start_redis(workdir)
    bare_port, receiver_port = free_port(), free_port()
    (workdir / "bare_app.py").write_text(BARE_APP)
    image_env = image_environment()
    env = {
        **os.environ,
        **image_env,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "BIGCOMMERCE_CLIENT_SECRET": SECRET,
        "BCWEBHOOKS_LOG_FORMAT": "json",
        "BCWEBHOOKS_LOG_LEVEL": "info",
        **(app_mode_environment(redis_port) if args.app_mode else {"BIGCOMMERCE_STORE_HASH": STORE_HASH}),
    }
    uvicorn_flags = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    bare = start(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port), *uvicorn_flags],
        env,
        cwd=str(workdir),
    )
    receiver = start(
        [sys.executable, "-m", "service", "serve", "--port", str(receiver_port)],
        env,
        log=workdir / "receiver.log",
    )
    try:
        for port in (redis_port, bare_port, receiver_port):
            wait_listening(port)
        endpoints = [
            Endpoint("bare", bare_port, bare.pid, args.pool, args.connections, reuse=True),
            Endpoint("receiver", receiver_port, receiver.pid, args.pool, args.connections),
        ]
        print("bench_ingest: measuring (loopback only; stops by itself)", file=sys.stderr)
        print(f"  both servers run with the image's environment: {_assignments(image_env)}", file=sys.stderr)
        for endpoint in endpoints:
            endpoint.warm_up()
        redis_cpu_before = cpu_seconds(redis_server.pid)
        ratios = []
        for round_number in range(1, args.rounds + 1):
            slice_seconds = args.seconds / args.rounds
            bare_round, receiver_round = (endpoint.measure(slice_seconds) for endpoint in endpoints)
            ratios.append(receiver_round.rate / bare_round.rate)
            print(
                f"  round {round_number}/{args.rounds}: bare {bare_round.rate:.0f} req/s, "
                f"receiver {receiver_round.rate:.0f} req/s, ratio {ratios[-1]:.2f}",
                file=sys.stderr,
                flush=True,
            )
        redis_cpu_after = cpu_seconds(redis_server.pid)
        bare_result, receiver_result = (endpoint.total for endpoint in endpoints)
        state = redis.Redis(port=redis_port)
        enqueued = sum(state.hlen(f"dramatiq:{queue}.msgs") for queue in QUEUE_NAMES)
        stats = state.info("commandstats")
        writes = sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))
        log_lines = sum(1 for line in (workdir / "receiver.log").open() if "callback.enqueued" in line)
    finally:
        for process in (receiver, bare, redis_server):
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nbench_ingest{' --app-mode' if args.app_mode else ''}: {args.connections} connections, "
        f"{args.seconds:.0f} s each in {args.rounds} rounds, "
        f"one uvicorn process each, environment of the image (Dockerfile ENV: {_assignments(image_env)})"
    )
    report("bare", bare_result)
    report("receiver", receiver_result)
    print(
        f"ratio receiver/bare: {receiver_result.rate / bare_result.rate:.2f} overall, "
        f"{statistics.median(ratios):.2f} median of {args.rounds} alternating rounds "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f})   (target >= 0.5)"
    )
    print(
        f"messages persisted in Redis: {enqueued} in {writes} script calls "
        f"({enqueued / max(writes, 1):.1f} callbacks per write); callback.enqueued log lines: {log_lines}"
    )
    bare_cpu, receiver_cpu = (cpu_per_request(endpoint) for endpoint in endpoints)
    if bare_cpu is not None and receiver_cpu is not None and redis_cpu_before is not None:
        redis_cpu = (redis_cpu_after or 0.0) - redis_cpu_before
        print(
            f"server CPU per request: bare {bare_cpu:.0f} us, receiver {receiver_cpu:.0f} us "
            f"(ratio bare/receiver {bare_cpu / receiver_cpu:.2f}; a steadier view on a shared machine), "
            f"plus Redis {redis_cpu * 1e6 / max(receiver_result.requests, 1):.0f} us per callback"
        )
    median_gap = statistics.median(receiver_result.latencies_ms) - statistics.median(bare_result.latencies_ms)
    print(f"median latency added by verify+validate+dedup+persist: {median_gap:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
