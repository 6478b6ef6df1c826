"""Replicated Redis for the tests: a primary, replicas and a Sentinel, each a redis-server of ours on a
127.0.0.1 port, started and stopped by PID (SIGSTOP / SIGCONT for a replica that stops answering)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.servers import STARTUP_TIMEOUT_SECONDS, free_port, redis_server_binary, wait_for

SERVICE_NAME = "mymaster"
DOWN_AFTER_MS = 500  # how long the primary must be silent before the Sentinel calls it down
FAILOVER_TIMEOUT_MS = 3_000


class RedisNode:
    """One redis-server on 127.0.0.1 (a replica of `primary_port` when given), no persistence."""

    def __init__(self, directory: Path, primary_port: int | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.primary_port = primary_port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *extra: str) -> RedisNode:
        """Start the server and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not 5 s later
            *extra,
        ]  # fmt: skip
        if self.primary_port is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.primary_port)]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.answers, STARTUP_TIMEOUT_SECONDS, f"redis-server on port {self.port} to answer")
        return self

    def client(self, **options: Any) -> redis.Redis:
        """A client of this node only."""
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5, **options)

    def answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def confirmed_by(self, replicas: int) -> bool:
        """Whether a write here is confirmed by that many replicas (WAIT), not merely that they connected."""
        with self.client(single_connection_client=True) as client:
            client.incr("tests:replication:check")
            return int(client.wait(replicas, 200)) >= replicas

    def send_signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing saved."""
        self.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(STARTUP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """Resume (if paused) and SIGTERM the server; wait for it to exit."""
        self.send_signal(signal.SIGCONT)
        self.send_signal(signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(STARTUP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class SentinelNode(RedisNode):
    """`redis-server --sentinel` watching `primary_port` under SERVICE_NAME; quorum 1, fast failover."""

    def start(self, *extra: str) -> SentinelNode:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {SERVICE_NAME} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE_NAME} {FAILOVER_TIMEOUT_MS}\n"
        )
        log = (self.directory / "sentinel.log").open("ab")
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
        )
        wait_for(self.answers, STARTUP_TIMEOUT_SECONDS, "the Sentinel to answer")
        return self

    def known_replicas(self) -> int:
        with self.client() as client:
            return len(client.sentinel_slaves(SERVICE_NAME))

    def primary_port_now(self) -> int:
        with self.client() as client:
            _host, port = client.sentinel_get_master_addr_by_name(SERVICE_NAME)
        return int(port)

    def url(self, database: int = 0) -> str:
        """The REDIS_URL that reaches the primary through this Sentinel."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{SERVICE_NAME}/{database}"
