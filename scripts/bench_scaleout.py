"""Scale-out benchmark: how many callbacks/s one Redis takes from several receivers, and what WAIT costs.

Starts its own redis-server (append-only, fsync every second) with one replica, and `bcwebhooks serve`
processes with the image's environment, all on 127.0.0.1. Three configurations share that Redis and are
measured in alternating rounds (so that drift on a shared machine hits each), with the same keep-alive load
of unique signed callbacks:

  1 receiver         the baseline
  N receivers        --receivers of them, the connections split evenly
  1 receiver + WAIT  BCWEBHOOKS_REDIS_MIN_REPLICAS=1: each write waits for the replica

For each: callbacks/s, the ratio to the baseline, p50/p99, callbacks per Redis write and Redis's CPU time
per callback. Redis runs commands on one thread, so one second of its CPU divided by its CPU per callback
is the most callbacks/s one Redis can take, whatever the number of receivers. Then the processing phase:
the database emptied, a worker and the sandbox started, and --events mixed callbacks sent and processed,
for Redis's CPU per event end to end (ingest and processing). Stops by itself.

    python scripts/bench_scaleout.py [--receivers 2] [--seconds 30] [--rounds 6] [--events 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from bench_faults import mixed_events
from benchkit import (
    Result,
    cpu_seconds,
    drive,
    free_port,
    image_environment,
    product_update_requests,
    sandbox_stack_env,
    start,
    start_redis,
    stop,
    wait_listening,
)

from service.events import QUEUE_NAMES
from service.sandbox.access import DEFAULT_CLIENT_SECRET
from service.sandbox.app import DEFAULT_STORE_HASH

STREAM = "bcwebhooks:events"
WARM_UP_SECONDS = 1.0


@dataclass
class Config:
    """One configuration: its receivers' ports, their callbacks, and what its rounds measured."""

    name: str
    ports: list[int]
    requests: list[list[bytes]] = field(default_factory=list)
    cursors: list[int] = field(default_factory=list)
    rounds: list[Result] = field(default_factory=list)
    redis_cpu: float = 0.0
    writes: int = 0

    @property
    def total(self) -> Result:
        return Result(
            requests=sum(r.requests for r in self.rounds),
            errors=sum(r.errors for r in self.rounds),
            seconds=sum(r.seconds for r in self.rounds),
            latencies_ms=[latency for r in self.rounds for latency in r.latencies_ms],
        )


def sign_pools(config: Config, pool: int) -> None:
    print(f"  {config.name}: signing {pool} callbacks...", file=sys.stderr, flush=True)
    share = pool // len(config.ports)
    for port in config.ports:
        config.requests.append(
            product_update_requests(port, share, 2000, DEFAULT_CLIENT_SECRET, DEFAULT_STORE_HASH)
        )
        config.cursors.append(0)


async def _round(config: Config, connections: int, seconds: float) -> Result:
    share = max(1, connections // len(config.ports))
    results = await asyncio.gather(
        *(
            drive(port, requests[cursor:], share, seconds)
            for port, requests, cursor in zip(config.ports, config.requests, config.cursors, strict=True)
        )
    )
    for index, result in enumerate(results):
        config.cursors[index] += result.requests
    return Result(
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=max(r.seconds for r in results),
        latencies_ms=[latency for r in results for latency in r.latencies_ms],
    )


def measure(config: Config, connections: int, seconds: float, state: redis.Redis, redis_pid: int) -> Result:
    """One round of `config`, with Redis's CPU and script calls over it."""
    cpu_before, writes_before = cpu_seconds(redis_pid) or 0.0, _script_calls(state)
    result = asyncio.run(_round(config, connections, seconds))
    config.redis_cpu += (cpu_seconds(redis_pid) or 0.0) - cpu_before
    config.writes += _script_calls(state) - writes_before
    config.rounds.append(result)
    return result


def _script_calls(state: redis.Redis) -> int:
    stats = state.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))


def report(config: Config, baseline: Config) -> None:
    total = config.total
    per_callback = config.redis_cpu * 1e6 / max(total.requests, 1)
    ceiling = 1e6 / per_callback if per_callback else float("nan")
    print(
        f"{config.name:<22} {total.rate:>7.0f} callbacks/s  ratio {total.rate / baseline.total.rate:4.2f}  "
        f"p50 {total.percentile(0.5):6.2f} ms  p99 {total.percentile(0.99):6.2f} ms  "
        f"non-200 {total.errors}  {total.requests / max(config.writes, 1):5.1f} per write  "
        f"Redis {per_callback:5.1f} us/callback (one Redis core: ~{ceiling:,.0f}/s)"
    )


def processing_phase(
    env: dict[str, str], workdir: Path, state: redis.Redis, redis_pid: int, port: int, events: int
) -> tuple[float, float] | None:
    """Redis CPU us per event, ingest and processing, and events/s; None when not all were processed."""
    state.flushall()
    sandbox_port = free_port()
    env = {**env, "BIGCOMMERCE_API_URL": f"http://127.0.0.1:{sandbox_port}"}
    bcwebhooks = [sys.executable, "-m", "service"]
    sandbox = start(
        [*bcwebhooks, "sandbox", "--port", str(sandbox_port), "--quota", "1000000", "--allow-http"], env
    )
    worker = start([*bcwebhooks, "worker", "--threads", "8"], env, log=workdir / "worker.log")
    try:
        wait_listening(sandbox_port)
        deliveries = mixed_events(events, port, "scaleout", 1)
        wait_ready(workdir / "worker.log")
        cpu_before, started = cpu_seconds(redis_pid) or 0.0, time.monotonic()
        asyncio.run(drive(port, [d.request for d in deliveries], 16))
        while int(state.xlen(STREAM)) < events:
            if time.monotonic() - started > 300:
                return None
            time.sleep(0.2)
        seconds = time.monotonic() - started
        return ((cpu_seconds(redis_pid) or 0.0) - cpu_before) * 1e6 / events, events / seconds
    finally:
        stop(worker)
        stop(sandbox)


def wait_ready(log: Path, timeout: float = 60.0) -> None:
    """Poll the worker's log until Dramatiq says a worker process is ready."""
    deadline = time.monotonic() + timeout
    while "ready for action" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start within {timeout:.0f} s (see {log})")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--receivers", type=int, default=2, help="receivers in the scaled-out config (2)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections per config (32)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per config (30)")
    parser.add_argument(
        "--rounds", type=int, default=6, help="alternating rounds the seconds are split in (6)"
    )
    parser.add_argument("--pool", type=int, default=80_000, help="distinct callbacks per config (80000)")
    parser.add_argument("--events", type=int, default=3000, help="events of the processing phase (3000)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    (workdir / "replica").mkdir()
    primary, redis_port = start_redis(workdir)
    replica_port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    replica = start(
        [binary, "--port", str(replica_port), "--bind", "127.0.0.1", "--dir", str(workdir / "replica"),
         "--save", "", "--replicaof", "127.0.0.1", str(redis_port)],
        dict(os.environ),
    )  # fmt: skip
    env = {
        **sandbox_stack_env(redis_port, "http://127.0.0.1:9"),
        **image_environment(),
        "BCWEBHOOKS_LOG_LEVEL": "info",  # one line per callback, as in production
    }
    ports = [free_port() for _ in range(args.receivers + 1)]
    processes = [primary, replica]
    for index, port in enumerate(ports):
        wait = {"BCWEBHOOKS_REDIS_MIN_REPLICAS": "1"} if index == len(ports) - 1 else {}
        argv = [sys.executable, "-m", "service", "serve", "--port", str(port)]
        processes.append(start(argv, {**env, **wait}, log=workdir / f"receiver{index}.log"))
    state = redis.Redis(port=redis_port)
    try:
        for port in (replica_port, *ports):
            wait_listening(port)
        configs = [
            Config("1 receiver", ports[:1]),
            Config(f"{args.receivers} receivers", ports[: args.receivers]),
            Config("1 receiver + WAIT 1", ports[-1:]),
        ]
        for config in configs:
            sign_pools(config, args.pool)
            asyncio.run(_round(config, args.connections, WARM_UP_SECONDS))
        print("bench_scaleout: measuring (loopback only; stops by itself)", file=sys.stderr)
        for number in range(1, args.rounds + 1):
            rates = [
                measure(c, args.connections, args.seconds / args.rounds, state, primary.pid) for c in configs
            ]
            line = ", ".join(f"{c.name} {r.rate:.0f}/s" for c, r in zip(configs, rates, strict=True))
            print(f"  round {number}/{args.rounds}: {line}", file=sys.stderr, flush=True)
        queued = sum(int(state.hlen(f"dramatiq:{queue}.msgs")) for queue in QUEUE_NAMES)
        print("bench_scaleout: processing phase", file=sys.stderr, flush=True)
        processed = processing_phase(env, workdir, state, primary.pid, ports[0], args.events)
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nbench_scaleout: one Redis (AOF everysec, one replica), {args.connections} connections per "
        f"config, {args.seconds:.0f} s each in {args.rounds} alternating rounds, {os.cpu_count()} CPUs"
    )
    for config in configs:
        report(config, configs[0])
    print(f"callbacks persisted during the rounds: {queued}")
    if processed is None:
        print("processing phase: not every event reached the stream within 300 s")
    else:
        per_event, rate = processed
        print(
            f"ingest + processing ({args.events} mixed events, 1 worker x 8 threads): Redis "
            f"{per_event:.0f} us per event (one Redis core: ~{1e6 / per_event:,.0f} events/s); "
            f"{rate:.0f} events/s end to end here"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
