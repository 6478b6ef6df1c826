"""Latency benchmark: a light steady load of mixed scopes, timed from the POST to the processed stream entry.

Starts its own redis-server, the sandbox store, the receiver (`bcwebhooks serve`) and one worker process
(`bcwebhooks worker`), all on 127.0.0.1. Then sends signed callbacks open-loop at --rate per second (each
at its scheduled time, whether or not earlier ones were answered) for --seconds, a mix of order, cart,
customer and product updates, and reads the processed-events stream until every one of them is there.

For each callback it takes the time the POST was sent and the millisecond in the stream entry's id (the
Redis clock, the same machine's clock), and prints p50/p90/p99/max per scope family and overall, next
to the baseline measured in the same run: the POST's own round trip (receiver acknowledged) and a direct
GET of a record from the sandbox (what one fetch costs).

The sandbox runs with a quota no storm needs (--quota per 30 s; an Enterprise-sized plan by default), so
what is measured is the pipeline, not waiting for the API budget: 20 events/s with one fetch each is
more than a Standard plan's 5 requests/s. Everything stops by itself.

    python scripts/bench_latency.py [--rate 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
from benchkit import free_port, sandbox_stack_env, start, start_redis, stop, wait_listening

from service.bigcommerce import ApiClient
from service.sandbox.access import DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN
from service.sandbox.app import DEFAULT_STORE_HASH
from service.sandbox.data import generate_store
from service.sandbox.delivery import callback_body
from service.sandbox.triggers import trigger_scope
from service.signatures import signed_headers

STREAM = "bcwebhooks:events"
PATH = "/webhooks/bigcommerce"
# (scope, share of the callbacks): orders first, as on a busy store; carts and customers; some catalog.
MIX = (
    ("store/order/updated", 0.30),
    ("store/order/statusUpdated", 0.10),
    ("store/cart/updated", 0.20),
    ("store/customer/updated", 0.15),
    ("store/product/updated", 0.25),
)


def family(scope: str) -> str:
    return scope.split("/")[1]


def callbacks(count: int, seed: int) -> list[tuple[str, bytes]]:
    """`count` (scope, body) pairs in the MIX proportions, for records the sandbox (seed 1) holds."""
    store = generate_store(DEFAULT_STORE_HASH, 1)
    rng = random.Random(seed)
    scopes = rng.choices([scope for scope, _ in MIX], weights=[share for _, share in MIX], k=count)
    result = []
    for scope in scopes:
        ((event_scope, data),) = trigger_scope(store, scope)[:1]
        result.append((event_scope, callback_body(event_scope, DEFAULT_STORE_HASH, data, int(time.time()))))
    return result


async def send_all(url: str, items: list[tuple[str, bytes]], rate: float) -> dict[str, dict[str, Any]]:
    """POST each callback at its scheduled time; returns, per webhook id, scope, send time and ack time."""
    sent: dict[str, dict[str, Any]] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def post(scope: str, body: bytes) -> None:
            webhook_id = f"msg_{uuid.uuid4().hex}"
            headers = {
                "content-type": "application/json",
                **signed_headers(DEFAULT_CLIENT_SECRET, body, webhook_id, int(time.time())),
            }
            started = time.time()
            response = await client.post(url, content=body, headers=headers)
            sent[webhook_id] = {
                "scope": scope,
                "sent": started,
                "ack_ms": (time.time() - started) * 1000,
                "status": response.status_code,
            }

        begin = time.monotonic()
        tasks = []
        for index, (scope, body) in enumerate(items):
            delay = begin + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(scope, body)))
        await asyncio.gather(*tasks)
    return sent


def read_stream(state: redis.Redis, after: str, wanted: set[str], timeout: float) -> dict[str, int]:
    """Stream entry time (ms) per webhook id, until every wanted id is there or `timeout` passes."""
    found: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    last = after
    while wanted - found.keys() and time.monotonic() < deadline:
        for _, entries in state.xread({STREAM: last}, count=1000, block=500) or []:
            for entry_id, fields in entries:
                last = entry_id.decode()
                webhook_id = fields[b"event_id"].decode().removeprefix("id:")
                if webhook_id in wanted:
                    found[webhook_id] = int(last.split("-")[0])
    return found


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"{at(0.5):8.1f}{at(0.9):8.1f}{at(0.99):8.1f}{ordered[-1]:8.1f}{len(ordered):7d}"


def fetch_baseline(api_url: str, count: int = 50) -> list[float]:
    """Milliseconds for direct GETs of one product from the sandbox: the cost of one fetch."""
    timings = []
    with ApiClient(api_url, DEFAULT_STORE_HASH, DEFAULT_TOKEN) as client:
        for _ in range(count):
            started = time.perf_counter()
            client.get_json("/v3/catalog/products/1")
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20.0, help="callbacks per second (20)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send (30)")
    parser.add_argument("--quota", type=int, default=30_000, help="sandbox requests per 30 s (30000)")
    parser.add_argument("--worker-threads", type=int, default=8, help="threads of the one worker process (8)")
    parser.add_argument("--seed", type=int, default=7, help="seeds the scope mix (7)")
    args = parser.parse_args()
    count = int(args.rate * args.seconds)

    workdir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    redis_server, redis_port = start_redis(workdir)
    sandbox_port, receiver_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{sandbox_port}"
    env = sandbox_stack_env(redis_port, api_url)
    bcwebhooks = [sys.executable, "-m", "service"]
    processes = [redis_server]
    try:
        sandbox = ["sandbox", "--port", str(sandbox_port), "--quota", str(args.quota), "--allow-http"]
        processes.append(start([*bcwebhooks, *sandbox], env))
        processes.append(start([*bcwebhooks, "serve", "--port", str(receiver_port)], env))
        processes.append(
            start([*bcwebhooks, "worker", "--threads", str(args.worker_threads)], env, log=workdir / "w.log")
        )
        wait_listening(sandbox_port)
        wait_listening(receiver_port)
        baseline_fetch = fetch_baseline(api_url)
        items = callbacks(count, args.seed)
        state = redis.Redis(port=redis_port)
        state.xadd(STREAM, {"bench": "start"})  # so that reading can start after this entry
        start_id = state.xrevrange(STREAM, count=1)[0][0].decode()
        time.sleep(2.0)  # the worker's first poll; what follows is steady state
        print(
            f"bench_latency: {count} callbacks at {args.rate:g}/s for {args.seconds:g} s "
            "(loopback only; stops by itself)",
            file=sys.stderr,
        )
        sent = asyncio.run(send_all(f"http://127.0.0.1:{receiver_port}{PATH}", items, args.rate))
        arrived = read_stream(state, start_id, set(sent), timeout=60.0)
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)

    rejected = sum(1 for item in sent.values() if item["status"] != 200)
    by_family: dict[str, list[float]] = {}
    for webhook_id, item in sent.items():
        if webhook_id in arrived:
            latency = arrived[webhook_id] - item["sent"] * 1000
            by_family.setdefault(family(item["scope"]), []).append(latency)
    every = [value for values in by_family.values() for value in values]
    acks = [item["ack_ms"] for item in sent.values()]

    print(f"\nbench_latency: {count} mixed callbacks at {args.rate:g}/s, one receiver, one worker process")
    print(f"{'(ms)':<26}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'n':>7}")
    print(f"{'baseline: sandbox GET':<26}{percentiles(baseline_fetch)}")
    print(f"{'baseline: POST acked':<26}{percentiles(acks)}")
    for name in sorted(by_family):
        print(f"{'POST -> stream: ' + name:<26}{percentiles(by_family[name])}")
    if not every:
        print("no processed event reached the stream")
        return 1
    print(f"{'POST -> stream: all':<26}{percentiles(every)}")
    p50 = statistics.median(every)
    print(
        f"p50 {p50:.1f} ms = {p50 / statistics.median(acks):.1f}x the acknowledgement; "
        f"targets: p50 <= 50 ms, p99 <= 250 ms"
    )
    missing = len(sent) - len(arrived)
    print(f"missing from the stream after 60 s: {missing}; non-200 answers: {rejected}")
    return 0 if missing == 0 and rejected == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
