"""Backfill benchmark: the receiver is down long enough for the sandbox to deactivate the hooks while 5,000
products, 2,000 orders and 1,000 customers change; then the hooks are reactivated and the gap backfilled.

Starts its own redis-server, the sandbox store (time-scaled: BigCommerce's 48 h of retries pass in
--time-scale times less), the receiver and a worker, all on 127.0.0.1, in single-store mode. Hooks for
store/order/*, store/product/* and store/customer/* point at the receiver. Then:

1. the receiver stops; the records change (`POST /_sandbox/changes`, which fires the documented webhooks
   like any write); the sandbox retries each delivery on BigCommerce's schedule until it deactivates the
   hooks;
2. the worker's hook monitor (a pass every second, the bench's hooks declared in a hooks file) records an
   incident per deactivated hook; the bench then starts the receiver again, and the monitor, finding it
   ready, re-activates the hooks (PUT /v3/hooks/{id}) and files the gap;
3. the worker backfills it; the bench waits for every family to finish, then reads the processed-events
   stream and the sandbox's request log.

It prints time to detect and to reactivate, records recovered / changed per family, the backfill's API calls
per recovered record (goal <= 0.02 for the catalog), 429s (goal 0), and events delivered twice for the same
record version (goal 0). Stops by itself.

    python scripts/bench_backfill.py [--products 5000] [--orders 2000] [--customers 1000] [--time-scale 4000]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from benchkit import PATH, free_port, sandbox_stack_env, start, start_redis, stop, wait_listening

from service.gaps import GAPS_STREAM, gap_progress
from service.incidents import list_incidents
from service.sandbox.access import DEFAULT_TOKEN
from workers.events import ProcessedEvent
from workers.fence import mark_for

STORE = "sandbox"
SCOPES = ("store/order/*", "store/product/*", "store/customer/*")
FAMILIES = {"products": "product", "orders": "order", "customers": "customer"}
TOKEN = {"X-Auth-Token": DEFAULT_TOKEN}
CATALOG = ("products",)
POLL_SECONDS = 0.2  # how often the bench reads the monitor's incidents (Redis, not the store's API)


@dataclass
class Outage:
    """When things happened, Unix seconds."""

    down_at: float = 0.0
    changed_at: float = 0.0
    deactivated_at: float = 0.0
    detected_at: float = 0.0
    reactivated_at: float = 0.0
    filed_at: float = 0.0
    done_at: float = 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=5000, help="products changed (default 5000)")
    parser.add_argument("--orders", type=int, default=2000, help="orders changed (default 2000)")
    parser.add_argument("--customers", type=int, default=1000, help="customers changed (default 1000)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=4000,
        help="sandbox time scale: 48 h of retries in 48 h / X (4000)",
    )
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds (300)")
    parser.add_argument("--poll-seconds", type=float, default=POLL_SECONDS, help="incident polling, s (0.2)")
    parser.add_argument("--worker-threads", type=int, default=8, help="worker threads (default 8)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    redis_server, redis_port = start_redis(workdir)
    sandbox_port, receiver_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{sandbox_port}"
    env = {**sandbox_stack_env(redis_port, api_url), "BCWEBHOOKS_STREAM_MAXLEN": "1000000"}
    bcwebhooks = [sys.executable, "-m", "service"]
    serve = [*bcwebhooks, "serve", "--port", str(receiver_port)]
    processes = [redis_server]
    client = redis.Redis(port=redis_port)
    outage = Outage()
    try:
        sandbox_argv = [
            *("sandbox", "--port", str(sandbox_port), "--allow-http", "--time-scale", str(args.time_scale)),
            *("--products", str(args.products), "--orders", str(args.orders)),
            *("--customers", str(args.customers)),
        ]
        processes.append(start([*bcwebhooks, *sandbox_argv], env, log=workdir / "sandbox.log"))
        receiver = start(serve, env, log=workdir / "receiver.log")
        worker_env = {**env, **monitor_env(workdir, f"http://127.0.0.1:{receiver_port}{PATH}")}
        processes.append(start([*bcwebhooks, "worker", "--threads", str(args.worker_threads)], worker_env))
        wait_listening(sandbox_port, timeout=120)
        wait_listening(receiver_port)
        hook_ids = register_hooks(api_url, f"http://127.0.0.1:{receiver_port}{PATH}")
        say(f"{len(hook_ids)} hooks registered; stopping the receiver")
        stop(receiver)
        outage.down_at = time.time()
        changed = change_records(api_url, args)
        outage.changed_at = time.time()
        say(f"changed {', '.join(f'{len(v)} {k}' for k, v in changed.items())}; waiting for deactivation")
        receiver = detect_and_reactivate(
            api_url, client, hook_ids, outage, serve, env, workdir, args.timeout, args.poll_seconds
        )
        processes.append(receiver)
        wait_done(client, outage_gap_ids(client), outage, args.timeout)
        time.sleep(1.0)  # live retries still in flight settle
        requests = httpx.get(f"{api_url}/_sandbox/requests", timeout=60).json()["requests"]
        stats = httpx.get(f"{api_url}/_sandbox/stats", timeout=60).json()
        events = read_stream(client)
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)
    return report(args, outage, changed, events, requests, stats)


def say(text: str) -> None:
    print(f"bench_backfill: {text}", file=sys.stderr)


def register_hooks(api_url: str, destination: str) -> list[int]:
    ids = []
    for scope in SCOPES:
        body = {"scope": scope, "destination": destination, "is_active": True}
        answer = httpx.post(f"{api_url}/stores/{STORE}/v3/hooks", headers=TOKEN, json=body)
        answer.raise_for_status()
        ids.append(int(answer.json()["data"]["id"]))
    return ids


def change_records(api_url: str, args: argparse.Namespace) -> dict[str, list[int]]:
    body = {"products": args.products, "orders": args.orders, "customers": args.customers}
    answer = httpx.post(f"{api_url}/_sandbox/changes", json=body, timeout=120)
    answer.raise_for_status()
    changed: dict[str, list[int]] = answer.json()["changed"]
    return changed


def monitor_env(workdir: Path, destination: str) -> dict[str, str]:
    """The worker's settings for its hook monitor: the bench's hooks declared, a pass every second."""
    hooks = "".join(f'\n[[hook]]\nscope = "{scope}"\n' for scope in SCOPES)
    path = workdir / "hooks.toml"
    path.write_text(f'receiver = "{destination}"\n{hooks}')
    return {
        "BCWEBHOOKS_HOOKS_FILE": str(path),
        "BCWEBHOOKS_HOOKS_ALLOW_HTTP": "1",
        "BCWEBHOOKS_MONITOR_INTERVAL": "1",
    }


def detect_and_reactivate(
    api_url: str,
    client: redis.Redis,
    hook_ids: list[int],
    outage: Outage,
    serve: list[str],
    env: dict[str, str],
    workdir: Path,
    timeout: float,
    poll_seconds: float = POLL_SECONDS,
) -> Any:
    """Wait for the workers' hook monitor to notice the deactivated hooks (an incident each), bring the
    receiver back, then wait for the monitor to re-activate them and file the gap."""
    deadline = time.monotonic() + timeout
    wanted = {f"hook:{hook_id}" for hook_id in hook_ids}
    while True:
        found = [
            i for i in list_incidents(client, STORE) if i.kind == "hook_deactivated" and i.subject in wanted
        ]
        if {i.subject for i in found} == wanted:  # each hook's own 48 h of retries ran out
            outage.detected_at = time.time()
            break
        if time.monotonic() > deadline:
            raise SystemExit("bench_backfill: the monitor never reported the hooks deactivated")
        time.sleep(poll_seconds)
    say(f"the monitor reports {len(found)} hook(s) deactivated; restarting the receiver")
    answer = httpx.get(f"{api_url}/stores/{STORE}/v3/hooks", headers=TOKEN, timeout=60)
    hooks = [h for h in answer.raise_for_status().json()["data"] if h["id"] in hook_ids]
    outage.deactivated_at = max(float(h["updated_at"]) for h in hooks)
    receiver = start(serve, env, log=workdir / "receiver.log")
    wait_listening(int(serve[-1]))
    while True:
        gaps: Any = client.xlen(GAPS_STREAM)
        resolved = [i for i in list_incidents(client, STORE) if i.subject in wanted and i.until]
        if len({i.subject for i in resolved}) == len(wanted) and gaps:
            outage.reactivated_at = max(float(i.until or 0) for i in resolved)
            outage.filed_at = time.time()
            return receiver
        if time.monotonic() > deadline:
            raise SystemExit("bench_backfill: the monitor never re-activated the hooks")
        time.sleep(0.2)


def outage_gap_ids(client: redis.Redis) -> list[str]:
    """Every gap the monitor filed (one per re-activated hook)."""
    entries: Any = client.xrange(GAPS_STREAM)
    return [str(entry_id.decode()) for entry_id, _ in entries]


def wait_done(client: redis.Redis, gap_ids: list[str], outage: Outage, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    shown = ""
    while time.monotonic() < deadline:
        gaps = [gap_progress(client, gap_id) for gap_id in gap_ids]
        families = {n: c for progress in gaps for n, c in progress.families.items()}
        line = ", ".join(f"{n} {c.get('state')} {c.get('listed', 0)}" for n, c in families.items())
        if line != shown:
            say(f"backfill: {line or 'waiting for a worker'}")
            shown = line
        if all(progress.done for progress in gaps):
            outage.done_at = time.time()
            return
        time.sleep(0.5)
    raise SystemExit(f"bench_backfill: the backfill did not finish within {timeout:.0f} s")


def read_stream(client: redis.Redis) -> list[ProcessedEvent]:
    entries: Any = client.xrange("bcwebhooks:events")
    return [ProcessedEvent.from_json(fields[b"event"]) for _, fields in entries]


def report(
    args: argparse.Namespace,
    outage: Outage,
    changed: dict[str, list[int]],
    events: list[ProcessedEvent],
    requests: list[dict[str, Any]],
    stats: dict[str, Any],
) -> int:
    changed_since_ms = int(outage.down_at) * 1000
    versions: dict[tuple[str, str], int] = {}
    seen: Counter[tuple[str, str, int, str]] = Counter()
    backfilled: Counter[str] = Counter()
    for event in events:
        mark = mark_for(event.store_hash, event.resource_type, event.resource_id, event.record, event.source)
        if mark is None or event.resource_id is None or event.resource_type is None:
            continue
        key = (event.resource_type, event.resource_id)
        versions[key] = max(versions.get(key, 0), mark.version_ms)
        seen[(event.resource_type, event.resource_id, mark.version_ms, mark.digest)] += 1
        backfilled[event.resource_type] += event.source == "backfill"
    twice = sum(count - 1 for count in seen.values() if count > 1)
    sweeps = [r for r in requests if r["at_ms"] >= outage.filed_at * 1000 and _is_sweep(r["query"])]
    detect = max(0.0, outage.detected_at - outage.deactivated_at)
    print(f"\nbench_backfill: outage of the receiver, time scale {args.time_scale:g}")
    print(
        f"  hooks deactivated after {outage.deactivated_at - outage.changed_at:.1f} s of outage (48 h scaled)"
    )
    print(f"  time to detect the deactivation: {detect:.1f} s (1 s resolution)")
    reactivate = outage.reactivated_at - outage.detected_at
    print(f"  time to reactivate (receiver back, hooks active): {reactivate:.1f} s")
    print(f"  backfill, gap filed to every family done: {outage.done_at - outage.filed_at:.1f} s")
    head = ("family", "changed", "recovered", "by backfill", "sweep calls", "calls/record")
    print(f"{head[0]:<12}{head[1]:>10}{head[2]:>11}{head[3]:>13}{head[4]:>13}{head[5]:>14}")
    worst = 0.0
    complete = True
    for family, resource_type in FAMILIES.items():
        ids = changed.get(family, [])
        recovered = sum(versions.get((resource_type, str(i)), 0) >= changed_since_ms for i in ids)
        complete &= recovered == len(ids)
        calls = sum(1 for r in sweeps if _family_of(r["path"]) == family)
        ratio = calls / recovered if recovered else 0.0
        if family in CATALOG:
            worst = max(worst, ratio)
        print(
            f"{family:<12}{len(ids):>10}{recovered:>11}{backfilled[resource_type]:>13}{calls:>13}{ratio:>14.4f}"
        )
    print(f"  429s: {stats['rate_limited']}   events delivered twice for one record version: {twice}")
    print(f"  API calls in all: {stats['api_calls']} (the sweeps: {len(sweeps)})")
    print("  goals: 100 % recovered, <= 0.02 calls per catalog record, 0 429s, 0 twice")
    ok = complete and worst <= 0.02 and stats["rate_limited"] == 0 and twice == 0
    return 0 if ok else 1


def _is_sweep(query: dict[str, str]) -> bool:
    return "date_modified:min" in query or "min_date_modified" in query


def _family_of(path: str) -> str:
    if path.startswith("/v2/orders"):
        return "orders"
    if path.startswith("/v3/catalog/products"):
        return "products"
    if path.startswith("/v3/customers"):
        return "customers"
    return "other"


if __name__ == "__main__":
    sys.exit(main())
