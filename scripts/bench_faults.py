"""Fault suite: is every acknowledged callback processed or dead-lettered, whatever breaks?

Each scenario starts its own redis-server (append-only, fsync every second), sandbox store, receiver
(`bcwebhooks serve`) and worker (`bcwebhooks worker`) on 127.0.0.1, sends callbacks signed with the
reference `standardwebhooks` library, breaks something, and then waits (bounded by --settle seconds)
until each acknowledged event is in the stream `bcwebhooks:events` or in the dead letters:

  baseline       N events of mixed scopes, no fault
  worker-kill    SIGKILL the worker's processes mid-load, start a new worker
  redis-stall    SIGSTOP redis-server for 8 s under steady load, then SIGCONT
  redis-restart  SIGKILL redis-server with work in flight, restart it from its AOF
  dup-storm      every event delivered 3x, out of order, over 32 connections
  poison         a product storm (coalesced) with one event a handler always refuses: it alone is
                 dead-lettered, every other one delivered
  api-faults     the sandbox answers 503, then 429, for a few seconds each, then recovers
  scale-out      two receivers and two workers on one Redis; every event sent to both receivers at once;
                 one worker SIGKILLed mid-load, the other carries on alone (nobody restarts it)
  fuzz           10,000 fuzzed inputs (odd JSON, deep nesting, lone surrogates, wrong id types, huge
                 numbers, odd headers), signed and unsigned
  forward-outage every event also forwarded to an HTTP output that is down until 40 % of the load, when
                 the worker is SIGKILLed and the output comes back answering 500 for a while; at 70 %
                 redis-server is SIGKILLed and restarted: every event must reach the output, verified

Callbacks answered 503 or not at all are sent again after the fault, as BigCommerce retries them. One
row per scenario: events, requests sent, answers (2xx, 503, 4xx, other 5xx, none), events in the stream
exactly once, duplicated (an event id in the stream more than once), lost (acknowledged, then in neither
the stream nor the dead letters) and dead-lettered. Exit code 1 when a scenario lost or duplicated
anything, the fuzz saw a 5xx, or a scenario's own expectation failed (named under the table).

    python scripts/bench_faults.py [--scenario NAME ...] [--events 1000] [--fuzz-inputs 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from benchkit import PATH
from fault_report import Row, crashed_row, format_row, print_table
from faultkit import (
    NO_ANSWER,
    Delivery,
    Load,
    Progress,
    Stack,
    fresh_workdir,
    redeliver,
    send,
    settle,
)
from forwardkit import ForwardTarget
from fuzz_inputs import fuzz_inputs

from service.sandbox.access import DEFAULT_CLIENT_SECRET
from service.sandbox.app import DEFAULT_STORE_HASH
from service.sandbox.data import generate_store
from service.sandbox.delivery import callback_body, sign_headers
from service.sandbox.triggers import trigger_scope

POISON_HANDLERS = "tests.e2e.poison_handlers"
POISON_PREFIX = "msg_poison_"  # tests/e2e/poison_handlers.py refuses events whose webhook-id starts so
MIX = (
    ("store/order/updated", 0.30),
    ("store/cart/updated", 0.20),
    ("store/customer/updated", 0.20),
    ("store/product/updated", 0.30),
)
# Failing events reach the dead letters in seconds rather than BCWEBHOOKS_MAX_RETRIES' default minutes.
WORKER_RETRIES = {"BCWEBHOOKS_MAX_RETRIES": "5", "BCWEBHOOKS_MIN_BACKOFF_MS": "500"}
QUICK_RETRIES = {"BCWEBHOOKS_MAX_RETRIES": "2", "BCWEBHOOKS_MIN_BACKOFF_MS": "200"}
STALL_SECONDS = 8.0
REDIS_DOWN_SECONDS = 2.0
API_FAULT_SECONDS = 4.0
UNLIMITED = 1_000_000  # an injected fault's count: it lasts until it is cleared
FAULT_AT = 0.4  # faults start once this share of the load has been acknowledged
SECOND_FAULT_AT = 0.7
FORWARD_FAILURES = 50  # answers 500 of the HTTP output once it is back
SCALE_OUT_SECONDS = 10.0


@dataclass
class Options:
    """What every scenario is given."""

    events: int = 1000
    fuzz_inputs: int = 10_000
    settle_seconds: float = 150.0
    seed: int = 1
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "bench-faults")


def sign(body: bytes, webhook_id: str, port: int, now: int) -> Delivery:
    """A callback signed by the reference library with the sandbox's client secret."""
    headers = {
        "Content-Type": "application/json",
        **sign_headers(DEFAULT_CLIENT_SECRET, webhook_id, body, now),
    }
    head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return Delivery(head.encode() + b"\r\n" + body, f"id:{webhook_id}")


def mixed_events(count: int, port: int, name: str, seed: int) -> list[Delivery]:
    """`count` signed callbacks of order, cart, customer and product updates for records the sandbox holds."""
    store = generate_store(DEFAULT_STORE_HASH, 1)
    rng = random.Random(seed)
    scopes = rng.choices([s for s, _ in MIX], weights=[w for _, w in MIX], k=count)
    now = int(time.time())
    deliveries = []
    for index, scope in enumerate(scopes):
        ((event_scope, data),) = trigger_scope(store, scope)[:1]
        body = callback_body(event_scope, DEFAULT_STORE_HASH, data, now)
        deliveries.append(sign(body, f"msg_{name}_{seed}_{index}", port, now))
    return deliveries


def product_storm(count: int, port: int, seed: int, poison_at: int) -> list[Delivery]:
    """`count` store/product/updated callbacks over the sandbox's products; number `poison_at` is marked."""
    now = int(time.time())
    deliveries = []
    for index in range(count):
        data = {"type": "product", "id": index % 60 + 1}
        body = callback_body("store/product/updated", DEFAULT_STORE_HASH, data, now)
        prefix = POISON_PREFIX if index == poison_at else "msg_storm_"
        deliveries.append(sign(body, f"{prefix}{seed}_{index}", port, now))
    return deliveries


Fault = Callable[[Stack, Progress], Awaitable[None]]


def run_load(
    stack: Stack,
    deliveries: list[Delivery],
    connections: int,
    rate: float | None,
    fault: Fault | None = None,
) -> tuple[Load, list[int]]:
    """Send the deliveries while `fault` runs beside them; returns the answers and the last statuses."""
    progress = Progress()

    async def together() -> list[int]:
        sending = send(stack.receiver_port, deliveries, connections, rate, progress)
        if fault is None:
            return await sending
        statuses, _ = await asyncio.gather(sending, fault(stack, progress))
        return statuses

    load = Load()
    statuses = asyncio.run(together())
    load.record(deliveries, statuses)
    return load, statuses


def finish(name: str, stack: Stack, events: int, load: Load, options: Options, started: float) -> Row:
    """Settle, then one row."""
    tally = settle(stack, load.acknowledged, options.settle_seconds)
    row = Row(name, events, load, tally, time.monotonic() - started)
    if stack.worker_restarts:
        row.notes.append(
            f"the worker exited by itself; restarted {stack.worker_restarts}x, as a supervisor would"
        )
    if tally.pending > 0:
        row.problems.append(
            f"{tally.pending} messages still held by the broker after {tally.waited:.0f} s ({tally.census})"
        )
    return row


def steady(
    name: str, options: Options, fault: Fault | None, seconds: float, worker_env: dict[str, str] | None = None
) -> Row:
    """Mixed events sent evenly over `seconds` on 8 connections, `fault` beside them, then redelivery."""
    started = time.monotonic()
    with Stack(fresh_workdir(options.workdir, name), worker_env or WORKER_RETRIES) as stack:
        deliveries = mixed_events(options.events, stack.receiver_port, name, options.seed)
        load, statuses = run_load(stack, deliveries, 8, options.events / seconds, fault)
        redeliver(stack, deliveries, statuses, load)
        return finish(name, stack, options.events, load, options, started)


def scenario_baseline(options: Options) -> Row:
    """N events of mixed scopes, as fast as 16 connections go, nothing broken."""
    started = time.monotonic()
    with Stack(fresh_workdir(options.workdir, "baseline"), WORKER_RETRIES) as stack:
        deliveries = mixed_events(options.events, stack.receiver_port, "baseline", options.seed)
        load, statuses = run_load(stack, deliveries, 16, None)
        redeliver(stack, deliveries, statuses, load)
        return finish("baseline", stack, options.events, load, options, started)


def at_share(options: Options) -> int:
    return max(1, int(options.events * FAULT_AT))


def scenario_worker_kill(options: Options) -> Row:
    """SIGKILL every worker process once 40 % of the load is acknowledged; a new worker starts at once."""

    held = [0]

    async def fault(stack: Stack, progress: Progress) -> None:
        await progress.reached(at_share(options), timeout=60)
        held[0] = await stack.wait_in_flight()
        await asyncio.to_thread(stack.kill_worker)
        stack.start_worker()

    row = steady("worker-kill", options, fault, seconds=10)
    row.notes.append(f"{held[0]} messages in flight at the kill")
    return row


def scenario_redis_stall(options: Options) -> Row:
    """SIGSTOP redis-server for 8 s under steady load (from 20 % of it), then SIGCONT."""

    async def fault(stack: Stack, progress: Progress) -> None:
        await progress.reached(max(1, options.events // 5), timeout=60)
        stack.pause_redis()
        try:
            await asyncio.sleep(STALL_SECONDS)  # the fault's length, not a wait for work
        finally:
            stack.resume_redis()

    return steady("redis-stall", options, fault, seconds=16)


def scenario_redis_restart(options: Options) -> Row:
    """SIGKILL redis-server once 40 % of the load is acknowledged; restart it from its AOF 2 s later."""

    held = [0]

    async def fault(stack: Stack, progress: Progress) -> None:
        await progress.reached(at_share(options), timeout=60)
        held[0] = await stack.wait_in_flight()
        stack.kill_redis()
        await asyncio.sleep(REDIS_DOWN_SECONDS)  # the outage's length
        await asyncio.to_thread(stack.restart_redis)

    row = steady("redis-restart", options, fault, seconds=10)
    row.notes.append(f"{held[0]} messages in flight at the kill")
    return row


def scenario_scale_out(options: Options) -> Row:
    """Two receivers, two workers, one Redis: each event to both receivers at once; one worker SIGKILLed."""
    started = time.monotonic()
    held = [0]

    async def fault(stack: Stack, progress: Progress) -> None:
        await progress.reached(2 * at_share(options), timeout=60)
        held[0] = await stack.wait_in_flight()
        await asyncio.to_thread(stack.kill_worker)
        stack.worker = None  # not restarted: the other worker carries on alone

    async def both(stack: Stack, deliveries: list[Delivery]) -> list[list[int]]:
        progress = Progress()
        rate = options.events / SCALE_OUT_SECONDS
        sending = [send(port, deliveries, 8, rate, progress) for port in stack.receiver_ports]
        *statuses, _ = await asyncio.gather(*sending, fault(stack, progress))
        return statuses

    with Stack(fresh_workdir(options.workdir, "scale-out"), WORKER_RETRIES, receivers=2, workers=2) as stack:
        deliveries = mixed_events(options.events, stack.receiver_port, "scale", options.seed)
        load = Load()
        per_receiver = asyncio.run(both(stack, deliveries))
        for statuses in per_receiver:
            load.record(deliveries, statuses)
        for statuses in per_receiver:
            redeliver(stack, deliveries, statuses, load)
        row = finish("scale-out", stack, options.events, load, options, started)
        writers = _persisting_receivers(stack)
    row.notes.append(f"{held[0]} messages in flight at the kill; events persisted by {writers} receivers")
    if writers != len(stack.receiver_ports):
        row.problems.append(f"only {writers} of {len(stack.receiver_ports)} receivers persisted events")
    return row


def _persisting_receivers(stack: Stack) -> int:
    """How many receiver processes wrote dedup marks (each marks with its own message-id prefix)."""
    with stack.client() as client:
        ids = [client.get(key) for key in client.scan_iter(match="bcwebhooks:seen:*", count=1000)]
    return len({value[:24] for value in ids if value})


def scenario_dup_storm(options: Options) -> Row:
    """Every event delivered three times, shuffled, over 32 connections."""
    started = time.monotonic()
    with Stack(fresh_workdir(options.workdir, "dup-storm"), WORKER_RETRIES) as stack:
        events = mixed_events(options.events, stack.receiver_port, "dup", options.seed)
        deliveries = events * 3
        random.Random(options.seed).shuffle(deliveries)
        load, statuses = run_load(stack, deliveries, 32, None)
        redeliver(stack, deliveries, statuses, load)
        return finish("dup-storm", stack, options.events, load, options, started)


def scenario_poison(options: Options) -> Row:
    """A product storm with one event a handler always refuses: it alone ends dead-lettered."""
    started = time.monotonic()
    workdir = fresh_workdir(options.workdir, "poison")
    worker_env = {**QUICK_RETRIES, "BCWEBHOOKS_HANDLERS": POISON_HANDLERS}
    with Stack(workdir, worker_env) as stack:
        deliveries = product_storm(options.events, stack.receiver_port, options.seed, options.events // 10)
        poison = deliveries[options.events // 10].event_id
        load, statuses = run_load(stack, deliveries, 16, None)
        redeliver(stack, deliveries, statuses, load)
        row = finish("poison", stack, options.events, load, options, started)
        batched = _batch_fetches(stack)
    if poison not in row.tally.dead:
        row.problems.append("the poison event is not in the dead letters")
    others = sorted(e for e in row.tally.dead if e != poison)
    if others:
        row.problems.append(f"{len(others)} other events dead-lettered with it, e.g. {others[0]}")
    if batched == 0:
        row.problems.append("no batch fetch seen: the storm did not coalesce (too few events?)")
    return row


def _batch_fetches(stack: Stack) -> int:
    requests = httpx.get(f"{stack.api_url}/_sandbox/requests", timeout=10).json()["requests"]
    return sum(1 for r in requests if any(key.endswith(":in") for key in r.get("query", {})))


def scenario_api_faults(options: Options) -> Row:
    """The sandbox answers 503 to every call for 4 s, then 429 for 4 s, then recovers."""

    injected: dict[int, int] = {}

    async def fault(stack: Stack, progress: Progress) -> None:
        await progress.reached(max(1, options.events // 5), timeout=60)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as sandbox:
            for status in (503, 429):
                body = {"status": status, "count": UNLIMITED, "path_prefix": "/", "reset_ms": 1000}
                await sandbox.post("/_sandbox/faults", json=body)
                await asyncio.sleep(API_FAULT_SECONDS)  # the outage's length
                cleared = await sandbox.delete("/_sandbox/faults")
                injected[status] = UNLIMITED - int(cleared.json()["cleared"])

    row = steady("api-faults", options, fault, seconds=14)
    row.notes.append(", ".join(f"{n} API calls answered {status}" for status, n in injected.items()))
    return row


def scenario_fuzz(options: Options) -> Row:
    """Fuzzed inputs, signed and unsigned: no 5xx, and nothing acknowledged ends unprocessed."""
    started = time.monotonic()
    with Stack(fresh_workdir(options.workdir, "fuzz"), QUICK_RETRIES) as stack:
        inputs = fuzz_inputs(
            options.fuzz_inputs, stack.receiver_port, DEFAULT_CLIENT_SECRET, DEFAULT_STORE_HASH, options.seed
        )
        deliveries = [Delivery(item.request, item.event_id) for item in inputs]
        load, statuses = run_load(stack, deliveries, 16, None)
        row = finish("fuzz", stack, len(inputs), load, options, started)
    answered_503 = load.count(503, 503)
    if answered_503:
        row.problems.append(f"{answered_503} answers 503 with nothing broken")
    failed = [item.kind for item, status in zip(inputs, statuses, strict=True) if status >= 500]
    if failed:
        kinds = ", ".join(f"{k} x{n}" for k, n in _most_common(failed))
        row.problems.append(f"5xx by kind: {kinds}")
    silent = [item.kind for item, status in zip(inputs, statuses, strict=True) if status == NO_ANSWER]
    if silent:
        row.problems.append(f"{len(silent)} requests got no answer, e.g. {silent[0]!r}")
    unprocessed = [
        item.kind
        for item in inputs
        if item.event_id in load.acknowledged
        and item.event_id not in row.tally.stream
        and item.event_id not in row.tally.dead
    ]
    if unprocessed:
        kinds = ", ".join(f"{k} x{n}" for k, n in _most_common(unprocessed))
        row.problems.append(f"accepted but unprocessable by kind: {kinds}")
    return row


def scenario_forward_outage(options: Options) -> Row:
    """Forwards through a destination outage, a worker SIGKILL and a Redis SIGKILL and restart."""
    started = time.monotonic()
    workdir = fresh_workdir(options.workdir, "forward-outage")
    target = ForwardTarget(workdir)

    async def fault(stack: Stack, progress: Progress) -> None:
        await progress.reached(at_share(options), timeout=60)
        await asyncio.to_thread(stack.kill_worker)
        stack.start_worker()
        target.destination.fail_next(FORWARD_FAILURES, 500)
        target.destination.start()
        await progress.reached(max(1, int(options.events * SECOND_FAULT_AT)), timeout=60)
        stack.kill_redis()
        await asyncio.sleep(REDIS_DOWN_SECONDS)  # the outage's length
        await asyncio.to_thread(stack.restart_redis)

    try:
        with Stack(workdir, {**WORKER_RETRIES, **target.worker_env()}) as stack:
            deliveries = mixed_events(options.events, stack.receiver_port, "forward", options.seed)
            load, statuses = run_load(stack, deliveries, 8, options.events / 10, fault)
            redeliver(stack, deliveries, statuses, load)
            row = finish("forward-outage", stack, options.events, load, options, started)
            target.wait_delivered(row, stack, options.settle_seconds)
        target.check(row)
    finally:
        target.close()
    return row


def _most_common(kinds: list[str], top: int = 6) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])[:top]


SCENARIOS: dict[str, Callable[[Options], Row]] = {
    "baseline": scenario_baseline,
    "worker-kill": scenario_worker_kill,
    "redis-stall": scenario_redis_stall,
    "redis-restart": scenario_redis_restart,
    "dup-storm": scenario_dup_storm,
    "scale-out": scenario_scale_out,
    "poison": scenario_poison,
    "api-faults": scenario_api_faults,
    "fuzz": scenario_fuzz,
    "forward-outage": scenario_forward_outage,
}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="run only this one (repeatable)"
    )
    parser.add_argument("--events", type=int, default=1000, help="callbacks per scenario (1000)")
    parser.add_argument("--fuzz-inputs", type=int, default=10_000, help="fuzzed requests (10000)")
    parser.add_argument("--settle", type=float, default=150.0, help="longest wait for processing, s (150)")
    parser.add_argument("--seed", type=int, default=1, help="seeds event mixes, order and fuzz (1)")
    parser.add_argument("--keep", action="store_true", help="keep Redis data and process logs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop our processes on SIGTERM as on Ctrl-C

    workdir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    options = Options(args.events, args.fuzz_inputs, args.settle, args.seed, workdir)
    rows = []
    try:
        for name in args.scenario or list(SCENARIOS):
            print(f"bench_faults: {name}...", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                rows.append(SCENARIOS[name](options))
            except Exception as error:  # one broken scenario must not hide the other rows
                traceback.print_exc()
                rows.append(crashed_row(name, error, started))
            print(format_row(rows[-1]), file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"bench_faults: data and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows)
    return 1 if any(row.failures() for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
