"""Storm benchmark: 10,000 store/product/updated callbacks for 2,000 products under a 150 per 30 s quota.

Starts its own redis-server, the sandbox store (2,000 products, quota 150 per 30 s), the receiver and
workers, all on 127.0.0.1. In one run it measures:

- naive: one GET per event, as a hand-rolled worker does (bounded to --naive-seconds, then extrapolated);
- bcwebhooks: the 10,000 signed callbacks POSTed through the real receiver, processed by the real workers
  (shared budget, coalescing, batch fetches), until every product's latest record is in the stream. The
  receiver and workers run in app mode: the sandbox runs two stores and the app is installed on both
  through the OAuth flow; the storm hits the first.
- fairness: during the storm, the second ("quiet") store sends --quiet-rate product updates per second
  (each its own product, as a merchant editing a catalog by hand). Its events are catalog events like the
  storm's; the receiver sends the storming store's to the bulk lane (service/lanes.py). The quiet store has
  a Pro plan's quota (--quiet-quota 450 per 30 s): 5 single fetches a second exceed what a 150 per 30 s
  store's budget allows (120 per 30 s), which would delay it with no storm at all. The quiet events'
  end-to-end latency, from the receiver's `received_at_ms` to the entry in the stream, is printed as
  p50/p99 (goal: p99 <= 1 s), and so is the latency from the moment the sender posted them.

For each it prints the time, API calls, calls per event and 429s. Stops by itself.

    python scripts/bench_storm.py [--events 10000] [--products 2000] [--quiet-rate 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from benchkit import (
    PATH,
    app_stack_env,
    drive,
    free_port,
    install_app,
    product_update_body,
    product_update_requests,
    sandbox_stack_env,
    start,
    start_redis,
    stop,
    wait_listening,
)

from service.bigcommerce import ApiClient, RateLimited
from service.sandbox.access import DEFAULT_TOKEN
from service.sandbox.oauth import DEFAULT_APP_CLIENT_SECRET
from service.signatures import signed_headers

STORE = "sandbox"
QUIET_STORE, QUIET_STORE_ID = "sandbox2", "1000002"
STREAM = "bcwebhooks:events"
QUIET_DRAIN_SECONDS = 60.0


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


class QuietStore:
    """The second store during the storm: `rate` signed product updates per second, each to the receiver.

    Parameters:
      port: the receiver's port.
      rate: callbacks per second.
      products: the quiet store's products, updated in turn.
    """

    def __init__(self, port: int, rate: float, products: int) -> None:
        self.port, self.rate, self.products = port, rate, products
        self.sent_ms: dict[str, float] = {}  # webhook id → when it was posted (acknowledged with 200)
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quiet-store", daemon=True)

    def start(self) -> None:
        if self.rate > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        next_at = time.monotonic()
        with httpx.Client(timeout=30) as client:
            for index in range(10**9):
                if self._stop.is_set():
                    return
                now = int(time.time())
                body = product_update_body(index % self.products + 1, QUIET_STORE, now, QUIET_STORE_ID)
                webhook_id = f"msg_{uuid.uuid4().hex}"
                sent_ms = time.time() * 1000
                headers = signed_headers(DEFAULT_APP_CLIENT_SECRET, body, webhook_id, now)
                try:
                    ok = client.post(f"http://127.0.0.1:{self.port}{PATH}", content=body, headers=headers)
                    self.sent_ms[webhook_id] = sent_ms
                    self.errors += ok.status_code != 200
                except httpx.HTTPError:
                    self.errors += 1
                next_at += 1 / self.rate
                self._stop.wait(max(0.0, next_at - time.monotonic()))


@dataclass
class StreamWatch:
    """What the stream holds so far: the storm store's events and products, the quiet store's latencies."""

    state: redis.Redis
    last_id: str = "0"
    storm_events: int = 0
    storm_products: set[str] = field(default_factory=set)
    # quiet webhook id → (received → in the stream, ms; in the stream at, ms)
    quiet: dict[str, tuple[float, float]] = field(default_factory=dict)

    def read(self) -> None:
        for _, entries in self.state.xread({STREAM: self.last_id}, count=5000, block=500) or []:
            for entry_id, fields in entries:
                self.last_id = entry_id.decode()
                if fields[b"store"].decode() == QUIET_STORE:
                    event = json.loads(fields[b"event"])
                    in_stream_ms = float(self.last_id.split("-")[0])
                    self.quiet[event["webhook_id"]] = (in_stream_ms - event["received_at_ms"], in_stream_ms)
                    continue
                self.storm_events += 1
                self.storm_products.add(fields[b"resource_id"].decode())


def wait_for_stream(watch: StreamWatch, events: int, products: int, timeout: float) -> float | None:
    """Seconds until the stream holds every storm event and every product; None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        watch.read()
        if watch.storm_events >= events and len(watch.storm_products) >= products:
            return time.monotonic() - started
    return None


def wait_for_quiet(watch: StreamWatch, quiet: QuietStore) -> None:
    """Read on until every quiet event the receiver acknowledged is in the stream (or a minute passed)."""
    deadline = time.monotonic() + QUIET_DRAIN_SECONDS
    while time.monotonic() < deadline and not set(quiet.sent_ms) <= set(watch.quiet):
        watch.read()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="callbacks to fire (10000)")
    parser.add_argument("--products", type=int, default=2_000, help="distinct products (2000)")
    parser.add_argument("--naive-seconds", type=float, default=60.0, help="bound on the naive run (60)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on the real run after (300)")
    parser.add_argument("--worker-threads", type=int, default=8, help="threads of the one worker process (8)")
    parser.add_argument(
        "--quiet-rate", type=float, default=5.0, help="the quiet store's callbacks per second, 0 for none (5)"
    )
    parser.add_argument(
        "--quiet-quota",
        type=int,
        default=450,
        help="the quiet store's own quota per 30 s (450, a Pro plan's: at 5/s, each event one GET, the "
        "150 of Standard and Plus, less the budget's 20 %% reserve, falls behind on its own)",
    )
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
            "--stores",
            "2",
            "--store-quota",
            f"{QUIET_STORE}={args.quiet_quota}",
        ]
        processes.append(start([*bcwebhooks, *sandbox_argv], env))
        wait_listening(sandbox_port)
        print(
            f"bench_storm: naive one-GET-per-event for up to {args.naive_seconds:.0f} s...", file=sys.stderr
        )
        naive_result = naive(api_url, args.events, args.products, args.naive_seconds)
        naive_stats = httpx.get(f"{api_url}/_sandbox/stats").json()
        stop(processes.pop())  # a fresh sandbox (and a fresh quota) for the real run
        app_env = app_stack_env(redis_port, api_url, receiver_port, workdir)
        processes.append(start([*bcwebhooks, *sandbox_argv], env))
        processes.append(start([*bcwebhooks, "serve", "--port", str(receiver_port)], app_env))
        processes.append(
            start(
                [*bcwebhooks, "worker", "--threads", str(args.worker_threads)], app_env, log=workdir / "w.log"
            )
        )
        wait_listening(sandbox_port)
        wait_listening(receiver_port)
        install_app(api_url, receiver_port, [STORE, QUIET_STORE])
        requests = product_update_requests(
            receiver_port, args.events, args.products, DEFAULT_APP_CLIENT_SECRET, STORE
        )
        quiet = QuietStore(receiver_port, args.quiet_rate, args.products)
        watch = StreamWatch(redis.Redis(port=redis_port))
        time.sleep(2.0)  # the install's hook registration (one API call per store) settles first
        print(
            f"bench_storm: firing {args.events} callbacks through the receiver, and {args.quiet_rate:g}/s "
            f"in {QUIET_STORE}...",
            file=sys.stderr,
        )
        quiet.start()
        started = time.monotonic()
        posted = asyncio.run(drive(receiver_port, requests, connections=16))
        waited = wait_for_stream(watch, args.events, args.products, args.timeout)
        total = None if waited is None else time.monotonic() - started
        quiet.stop()
        wait_for_quiet(watch, quiet)
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
    return report_quiet(watch, quiet)


def report_quiet(watch: StreamWatch, quiet: QuietStore) -> int:
    """The quiet store's end-to-end latency during the storm; 1 when any of its events went missing."""
    if not quiet.sent_ms:
        return 0
    received = [watch.quiet[w][0] for w in quiet.sent_ms if w in watch.quiet]
    posted = [watch.quiet[w][1] - sent for w, sent in quiet.sent_ms.items() if w in watch.quiet]
    missing = len(quiet.sent_ms) - len(received)
    print(
        f"fairness: {QUIET_STORE} sent {len(quiet.sent_ms)} product updates at {quiet.rate:g}/s during the "
        f"storm ({quiet.errors} non-200, {missing} not in the stream)"
    )
    print(
        f"  received -> in the stream: p50 {percentile(received, 0.5):.0f} ms, "
        f"p99 {percentile(received, 0.99):.0f} ms, max {max(received, default=float('nan')):.0f} ms"
        "   (goal: p99 <= 1000 ms)"
    )
    print(
        f"  posted   -> in the stream: p50 {percentile(posted, 0.5):.0f} ms, "
        f"p99 {percentile(posted, 0.99):.0f} ms, max {max(posted, default=float('nan')):.0f} ms"
    )
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
