"""The fault suite's machinery: a stack of real processes to break, a raw HTTP sender, and the accounting.

`Stack` runs redis-server (AOF, everysec), the sandbox, the receiver and one worker instance on 127.0.0.1
(or several receivers and workers on the one Redis) and can SIGKILL, SIGSTOP or restart them. `send`
delivers raw requests over keep-alive connections and records every answer. `settle` waits, bounded,
until each acknowledged event is in the stream or the dead letters and the broker holds nothing more,
then counts stream entries per event id.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil
import redis
from benchkit import (
    family,
    free_port,
    kill_tree,
    sandbox_stack_env,
    signal_all,
    start,
    start_redis,
    stop,
    wait_listening,
)

from service.events import LEDGER_KEY, QUEUE_NAMES
from workers.ledger import FORWARD_QUEUE_NAME

ROOT = Path(__file__).resolve().parents[1]
STREAM = "bcwebhooks:events"
NO_ANSWER = -1
REQUEST_TIMEOUT_SECONDS = 30.0
READY_TIMEOUT_SECONDS = 30.0
STABLE_SECONDS = 2.0  # a late duplicate would show up within it (nothing is left in the broker by then)


@dataclass(frozen=True)
class Delivery:
    """One raw request, and the event id the receiver gives it if it accepts it (None: it must not)."""

    request: bytes
    event_id: str | None


class Stack:
    """redis-server, sandbox, receiver and a worker of our own on 127.0.0.1; every process stopped by PID.

    Parameters:
      workdir: Redis's data directory and the processes' logs.
      worker_env: extra environment for the worker (retries, handler modules).
      quota: the sandbox's API quota per 30 s (large: the pipeline is measured, not the budget).
      receivers: `bcwebhooks serve` processes, each on its own port (the first is `receiver_port`).
      workers: `bcwebhooks worker` instances; the first is `worker`, restarted by `supervise`, the others
        (`more_workers`) run unsupervised.
    """

    def __init__(
        self,
        workdir: Path,
        worker_env: Mapping[str, str] | None = None,
        quota: int = 1_000_000,
        receivers: int = 1,
        workers: int = 1,
    ):
        self.workdir = workdir
        self.worker_env = dict(worker_env or {})
        self.quota = quota
        self.sandbox_port = free_port()
        self.receiver_ports = [free_port() for _ in range(receivers)]
        self.receiver_port = self.receiver_ports[0]
        self.more_workers: list[subprocess.Popen[bytes]] = []
        self.worker_count = workers
        self.redis_port = 0
        self.redis: subprocess.Popen[bytes] | None = None
        self.others: list[subprocess.Popen[bytes]] = []
        self.worker: subprocess.Popen[bytes] | None = None
        self.worker_restarts = 0
        self.worker_family: list[psutil.Process] = []  # remembered: orphans are no longer its children

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}"

    def env(self) -> dict[str, str]:
        """The receiver's and worker's environment (the sandbox's default token and secret)."""
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        return {**sandbox_stack_env(self.redis_port, self.api_url), "PYTHONPATH": pythonpath}

    def __enter__(self) -> Stack:
        try:
            self.redis, self.redis_port = start_redis(self.workdir)
            bcwebhooks = [sys.executable, "-m", "service"]
            sandbox = [
                "sandbox",
                "--port",
                str(self.sandbox_port),
                "--quota",
                str(self.quota),
                "--allow-http",
            ]
            self.others.append(self._start([*bcwebhooks, *sandbox], "sandbox"))
            for index, port in enumerate(self.receiver_ports):
                name = f"receiver{index or ''}"
                self.others.append(self._start([*bcwebhooks, "serve", "--port", str(port)], name))
            self.start_worker()
            for index in range(1, self.worker_count):
                argv = [*bcwebhooks, "worker", "--threads", "8"]
                self.more_workers.append(self._start(argv, f"worker{index}", self.worker_env))
            wait_listening(self.sandbox_port)
            for port in self.receiver_ports:
                wait_listening(port)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _start(
        self, argv: list[str], name: str, extra: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        return start(argv, {**self.env(), **(extra or {})}, cwd=str(ROOT), log=self.workdir / f"{name}.log")

    def start_worker(self) -> None:
        """Start one `bcwebhooks worker` instance (one process, 8 threads)."""
        argv = [sys.executable, "-m", "service", "worker", "--threads", "8"]
        self.worker = self._start(argv, "worker", self.worker_env)
        self.worker_family = []

    def supervise(self) -> None:
        """Restart the worker if it exited, as the supervisor the README asks for would."""
        if self.worker is None:
            return
        if self.worker.poll() is None:
            self.worker_family = family(self.worker) or self.worker_family
            return
        signal_all(self.worker_family, signal.SIGKILL)  # a dramatiq child that outlived its parent
        self.worker_restarts += 1
        self.start_worker()

    def kill_worker(self) -> None:
        """SIGKILL the worker instance and every process it started, mid-task; reap the one we started."""
        if self.worker is not None:
            kill_tree(self.worker, signal.SIGKILL)
            self.worker.wait(30)

    def kill_redis(self) -> None:
        """SIGKILL redis-server: no shutdown save, whatever the AOF holds is what survives."""
        if self.redis is not None:
            self.redis.kill()
            self.redis.wait(30)

    def restart_redis(self) -> None:
        """Start redis-server again on the same port and directory, reloading its AOF."""
        self.redis, _ = start_redis(self.workdir, port=self.redis_port)

    def pause_redis(self) -> None:
        """SIGSTOP redis-server: connections stay open, nothing is answered."""
        if self.redis is not None:
            os.kill(self.redis.pid, signal.SIGSTOP)

    def resume_redis(self) -> None:
        """SIGCONT redis-server."""
        if self.redis is not None and self.redis.poll() is None:
            os.kill(self.redis.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        """A client on our redis-server that gives up on a stalled server within seconds."""
        return redis.Redis(port=self.redis_port, socket_timeout=10, socket_connect_timeout=5)

    def in_flight(self) -> int:
        """Messages workers hold right now (Dramatiq's per-worker ack sets)."""
        with self.client() as client:
            keys = list(client.scan_iter(match="dramatiq:__acks__.*", count=1000))
            return sum(int(client.scard(key)) for key in keys)

    async def wait_in_flight(self, timeout: float = 10.0) -> int:
        """Poll until a worker holds at least one message (so a fault hits work in flight); 0 on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if held := await asyncio.to_thread(self.in_flight):
                return held
            await asyncio.sleep(0.005)
        return 0

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        """Poll the receiver's /readyz until it answers 200 (Redis reachable); False after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.receiver_url}/readyz", timeout=5).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def close(self) -> None:
        """Stop everything we started, by PID: worker first, Redis last (resumed first if paused)."""
        self.resume_redis()
        for worker in self.more_workers:
            members = family(worker)
            stop(worker)
            signal_all(members, signal.SIGKILL)
        if self.worker is not None:
            members = family(self.worker) + self.worker_family
            stop(self.worker)  # SIGTERM: Dramatiq stops its processes
            signal_all(members, signal.SIGKILL)  # any that outlived it
        for process in reversed(self.others):
            stop(process)
        if self.redis is not None:
            stop(self.redis)


class Progress:
    """Counts 2xx answers; `reached(n)` waits until n have been counted."""

    def __init__(self) -> None:
        self.acknowledged = 0
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def acknowledge(self) -> None:
        self.acknowledged += 1
        for wanted, event in self._waiters:
            if self.acknowledged >= wanted:
                event.set()

    async def reached(self, wanted: int, timeout: float) -> bool:
        """True once `wanted` answers were 2xx; False when `timeout` passes first."""
        event = asyncio.Event()
        self._waiters.append((wanted, event))
        if self.acknowledged >= wanted:
            event.set()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server closes the connection) of one HTTP/1.1 response, body consumed."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = dict(line.lower().split(":", 1) for line in lines[1:] if ":" in line)
    closes = headers.get("connection", "").strip() == "close"
    if headers.get("transfer-encoding", "").strip() == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    elif length := int(headers.get("content-length", "0").strip() or 0):
        await reader.readexactly(length)
    return status, closes


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _exchange(
    port: int, connection: Connection | None, request: bytes
) -> tuple[int, Connection | None]:
    """Send one request (on `connection`, else a new one); a stale keep-alive connection is retried once."""
    for attempt in range(2):
        reused = connection is not None
        if connection is None:
            connection = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        reader, writer = connection
        try:
            writer.write(request)
            await writer.drain()
            status, closes = await _read_response(reader)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            writer.close()
            connection = None
            partial = isinstance(error, asyncio.IncompleteReadError) and error.partial
            if reused and not partial and attempt == 0:
                continue  # the server had closed this idle connection before our request reached it
            raise
        if closes:
            writer.close()
            connection = None
        return status, connection
    raise AssertionError("unreachable")


async def send(
    port: int,
    deliveries: list[Delivery],
    connections: int,
    rate: float | None = None,
    progress: Progress | None = None,
) -> list[int]:
    """POST every delivery over `connections` keep-alive connections, at most `rate` per second.

    Returns each one's status (NO_ANSWER when the connection failed or nothing came within the timeout).
    """
    statuses = [NO_ANSWER] * len(deliveries)
    indices = iter(range(len(deliveries)))
    started = time.monotonic()

    async def connection_loop() -> None:
        connection: Connection | None = None
        for index in indices:
            if rate is not None and (delay := started + index / rate - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            try:
                statuses[index], connection = await asyncio.wait_for(
                    _exchange(port, connection, deliveries[index].request), REQUEST_TIMEOUT_SECONDS
                )
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                if connection is not None:
                    connection[1].close()
                connection = None
                continue
            if progress is not None and 200 <= statuses[index] < 300:
                progress.acknowledge()
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(connection_loop() for _ in range(connections)))
    return statuses


@dataclass
class Load:
    """Every answer to every attempt, and which event ids were acknowledged."""

    answers: Counter[int] = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)  # accepted although it carried no event id

    def record(self, deliveries: list[Delivery], statuses: list[int]) -> None:
        for delivery, status in zip(deliveries, statuses, strict=True):
            self.answers[status] += 1
            if 200 <= status < 300:
                if delivery.event_id is None:
                    self.unexpected.append(delivery.request[:200].decode("latin-1"))
                else:
                    self.acknowledged.add(delivery.event_id)

    def count(self, low: int, high: int) -> int:
        return sum(n for status, n in self.answers.items() if low <= status <= high)


def redeliver(
    stack: Stack, deliveries: list[Delivery], statuses: list[int], load: Load, rounds: int = 3
) -> None:
    """Send again what got a 5xx or no answer, as BigCommerce retries, once Redis answers again."""
    for _ in range(rounds):
        again = [d for d, s in zip(deliveries, statuses, strict=True) if s == NO_ANSWER or s >= 500]
        if not again:
            return
        stack.wait_ready()
        statuses = asyncio.run(send(stack.receiver_port, again, connections=8))
        load.record(again, statuses)
        deliveries = again


@dataclass
class Tally:
    """What the stream and the dead letters hold for our events after the settle."""

    stream: Counter[str] = field(default_factory=Counter)
    dead: set[str] = field(default_factory=set)
    dlq_error: str | None = None
    pending: int = -1
    waited: float = 0.0
    census: str = ""  # where the broker's messages were when the settle gave up


def _dead_letter_ids(client: redis.Redis) -> set[str]:
    from workers.dlq import list_dead_letters  # imported here: a crash in it is reported, not fatal

    # A forward's dead letter is its HTTP output's: the event itself reached the stream.
    letters = list_dead_letters(client)
    return {str(letter.event_id) for letter in letters if letter.event_id and letter.destination is None}


def _pending_messages(client: redis.Redis) -> int:
    """Messages the broker still holds, queued, delayed or in flight (dead letters excluded), forwards to
    HTTP outputs included."""
    queues = (*QUEUE_NAMES, FORWARD_QUEUE_NAME)
    keys = [f"dramatiq:{queue}{suffix}.msgs" for queue in queues for suffix in ("", ".DQ")]
    return sum(int(client.hlen(key)) for key in keys)


def _census(client: redis.Redis) -> str:
    """Where the broker's messages are (queue lists, message hashes, ack sets) and the ledger's size."""
    try:
        parts = []
        for queue in (*QUEUE_NAMES, FORWARD_QUEUE_NAME):
            for name in (queue, f"{queue}.DQ"):
                listed, stored = client.llen(f"dramatiq:{name}"), client.hlen(f"dramatiq:{name}.msgs")
                if listed or stored:
                    parts.append(f"{name}: {listed} listed/{stored} stored")
        for key in client.scan_iter("dramatiq:__acks__.*", count=1000):
            if held := client.scard(key):
                parts.append(f"{key.decode().removeprefix('dramatiq:__acks__.')}: {held} held")
        workers = client.zcard("dramatiq:__heartbeats__")
        parts.append(f"{workers} workers in the heartbeats, {client.zcard(LEDGER_KEY)} ledger entries")
        return "; ".join(parts)
    except redis.RedisError as error:
        return f"census failed: {error}"


def _read_stream(client: redis.Redis, tally: Tally, last: str) -> str:
    """Count the stream entries after `last` per event id; returns the new last entry id."""
    while True:
        entries: Any = client.xrange(STREAM, min=f"({last}" if last != "-" else "-", count=5000)
        if not entries:
            return last
        for entry_id, fields in entries:
            last = entry_id.decode()
            event_id = fields.get(b"event_id")
            if event_id is not None:
                tally.stream[event_id.decode("utf-8", "surrogatepass")] += 1


def settle(stack: Stack, acknowledged: set[str], seconds: float) -> Tally:
    """Wait until every acknowledged event is in the stream or the dead letters and the broker is idle."""
    tally = Tally()
    started = time.monotonic()
    last = "-"
    settled = False
    client = stack.client()
    try:
        while True:
            try:
                last = _read_stream(client, tally, last)
                tally.pending = _pending_messages(client)
                try:
                    tally.dead, tally.dlq_error = _dead_letter_ids(client), None
                except Exception as error:  # dlq.py crashing is reported, not fatal
                    tally.dlq_error = f"{type(error).__name__}: {error}"
            except redis.RedisError:
                pass  # Redis still loading its AOF, or briefly away: try again until the deadline
            stack.supervise()
            accounted = all(e in tally.stream or e in tally.dead for e in acknowledged)
            tally.waited = time.monotonic() - started
            settled_before, settled = settled, accounted and tally.pending == 0
            if (settled and settled_before) or tally.waited > seconds:
                if tally.pending > 0:
                    tally.census = _census(client)
                return tally
            time.sleep(0.5 if not settled else STABLE_SECONDS)  # settled twice in a row, 2 s apart
    finally:
        client.close()


def fresh_workdir(parent: Path, name: str) -> Path:
    """An empty directory for one scenario's Redis data and logs."""
    path = parent / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
