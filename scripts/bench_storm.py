"""Storm benchmark: 10,000 store/product/updated callbacks for 2,000 products under a 150 per 30 s quota.

Starts its own redis-server, the sandbox store (2,000 products, quota 150 per 30 s), the receiver and
workers, all on 127.0.0.1. In one run it measures:

- naive: one GET per event, as a hand-rolled worker does (bounded to --naive-seconds, then extrapolated);
- bcwebhooks: the 10,000 signed callbacks POSTed through the real receiver, processed by the real workers
  (shared budget, coalescing, batch fetches), until every product's latest record is in the stream.

For each it prints the time, API calls, calls per event and 429s. Stops by itself.

    python scripts/bench_storm.py [--events 10000] [--products 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
from benchkit import (
    drive,
    free_port,
    product_update_requests,
    sandbox_stack_env,
    start,
    start_redis,
    stop,
    wait_listening,
)

from service.bigcommerce import ApiClient, RateLimited
from service.sandbox.access import DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN

STORE = "sandbox"
STREAM = "bcwebhooks:events"


def naive(api_url: str, events: int, products: int, seconds: float) -> dict[str, float]:
    """One GET per event with a client that waits out 429s, for at most `seconds`."""
    sleeps: list[float] = []
    cut_short = [0.0]  # the wait the bound cut off: those events are not done before it is over

    def sleep(wait: float) -> None:
        if time.monotonic() + wait > deadline:
            cut_short[0] = wait
            raise TimeoutError  # the next request would start after the bound: stop measuring here
        sleeps.append(wait)
        time.sleep(wait)

    started = time.monotonic()
    deadline = started + seconds
    done = 0
    with ApiClient(api_url, STORE, DEFAULT_TOKEN, sleep=sleep, max_rate_limit_waits=1000) as client:
        for index in range(events):
            if time.monotonic() >= deadline:
                break
            try:
                client.get_json(f"/v3/catalog/products/{index % products + 1}")
            except (RateLimited, TimeoutError):
                break
            done += 1
    # Counting the wait the bound cut off gives the steady rate (quota per window), not the first burst's.
    elapsed = time.monotonic() - started + cut_short[0]
    return {
        "events": done,
        "seconds": elapsed,
        "extrapolated": elapsed * events / max(done, 1),
        "waits": len(sleeps),
    }


def wait_for_stream(state: redis.Redis, events: int, products: int, timeout: float) -> float | None:
    """Seconds until the stream holds every event and every product; None on timeout."""
    started = time.monotonic()
    seen: set[str] = set()
    last_id = "0"
    count = 0
    while time.monotonic() - started < timeout:
        for _, entries in state.xread({STREAM: last_id}, count=5000, block=500) or []:
            for entry_id, fields in entries:
                last_id = entry_id.decode()
                count += 1
                seen.add(fields[b"resource_id"].decode())
        if count >= events and len(seen) >= products:
            return time.monotonic() - started
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="callbacks to fire (10000)")
    parser.add_argument("--products", type=int, default=2_000, help="distinct products (2000)")
    parser.add_argument("--naive-seconds", type=float, default=60.0, help="bound on the naive run (60)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on the real run after (300)")
    parser.add_argument("--worker-threads", type=int, default=8, help="threads of the one worker process (8)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-storm-"))
    redis_server, redis_port = start_redis(workdir)
    sandbox_port, receiver_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{sandbox_port}"
    env = sandbox_stack_env(redis_port, api_url)
    bcwebhooks = [sys.executable, "-m", "service"]
    processes = [redis_server]
    try:
        sandbox_argv = [
            "sandbox",
            "--port",
            str(sandbox_port),
            "--products",
            str(args.products),
            "--allow-http",
        ]
        processes.append(start([*bcwebhooks, *sandbox_argv], env))
        wait_listening(sandbox_port)
        print(
            f"bench_storm: naive one-GET-per-event for up to {args.naive_seconds:.0f} s...", file=sys.stderr
        )
        naive_result = naive(api_url, args.events, args.products, args.naive_seconds)
        naive_stats = httpx.get(f"{api_url}/_sandbox/stats").json()
        stop(processes.pop())  # a fresh sandbox (and a fresh quota) for the real run
        processes.append(start([*bcwebhooks, *sandbox_argv], env))
        processes.append(start([*bcwebhooks, "serve", "--port", str(receiver_port)], env))
        processes.append(
            start([*bcwebhooks, "worker", "--threads", str(args.worker_threads)], env, log=workdir / "w.log")
        )
        wait_listening(sandbox_port)
        wait_listening(receiver_port)
        requests = product_update_requests(
            receiver_port, args.events, args.products, DEFAULT_CLIENT_SECRET, STORE
        )
        print(f"bench_storm: firing {args.events} callbacks through the receiver...", file=sys.stderr)
        started = time.monotonic()
        posted = asyncio.run(drive(receiver_port, requests, connections=16))
        state = redis.Redis(port=redis_port)
        waited = wait_for_stream(state, args.events, args.products, args.timeout)
        total = None if waited is None else time.monotonic() - started
        real_stats = httpx.get(f"{api_url}/_sandbox/stats").json()
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)

    naive_calls = naive_stats["api_calls"]
    print(f"\nbench_storm: {args.events} product updates for {args.products} products, quota 150 per 30 s")
    print(f"{'':<12}{'time (s)':>12}{'API calls':>12}{'calls/event':>14}{'429s':>8}")
    naive_events = max(naive_result["events"], 1)
    print(
        f"{'naive':<12}{naive_result['extrapolated']:>12.0f}{naive_calls * args.events / naive_events:>12.0f}"
        f"{naive_calls / naive_events:>14.3f}{naive_stats['rate_limited']:>8}"
        f"   ({naive_result['events']:.0f} events in {naive_result['seconds']:.0f} s, counting the wait "
        "that was due next; extrapolated)"
    )
    if total is None:
        print(f"{'bcwebhooks':<12}{'timeout':>12}  (products still missing after {args.timeout:.0f} s)")
        return 1
    calls = real_stats["api_calls"]
    print(
        f"{'bcwebhooks':<12}{total:>12.1f}{calls:>12}{calls / args.events:>14.4f}"
        f"{real_stats['rate_limited']:>8}"
        f"   (receiver took {posted.seconds:.1f} s, {posted.errors} non-200)"
    )
    print(
        f"speed-up: {naive_result['extrapolated'] / total:.0f}x   "
        "targets: <= 60 s, <= 0.02 calls/event, 0 429s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
