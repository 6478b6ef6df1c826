"""The real commands as a user runs them: `bcwebhooks serve`, `worker` and `dev`, over real sockets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from service.receiver import MAX_HEADER_BYTES
from tests.e2e.processes import BCWEBHOOKS, START_TIMEOUT_SECONDS, Process, ready
from tests.helpers import CLIENT_SECRET, HEADER_SECRET, STORE_HASH, encode, envelope, signed, stored_messages
from tests.rawhttp import connect, error_of, read_response, read_until_closed, request_head
from tests.servers import free_port, wait_for

pytestmark = pytest.mark.e2e


def test_serve_and_worker_process_a_signed_callback_and_never_log_secrets(
    environ: dict[str, str], started: list[Process], tmp_path: Path, redis_client: redis.Redis
) -> None:
    port = free_port()
    serve = Process([*BCWEBHOOKS, "serve", "--port", str(port)], environ, tmp_path / "serve.log")
    worker = Process([*BCWEBHOOKS, "worker", "--threads", "2"], environ, tmp_path / "worker.log")
    started.extend([serve, worker])
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: ready(f"{base}/readyz"), START_TIMEOUT_SECONDS, "the receiver to be ready")

    raw = encode(envelope(data={"type": "order", "id": 104}))
    headers = {**signed(raw, webhook_id="msg_e2e"), "X-Webhook-Secret": HEADER_SECRET}
    response = httpx.post(f"{base}/webhooks/bigcommerce", content=raw, headers=headers)
    refused = httpx.post(
        f"{base}/webhooks/bigcommerce", content=raw, headers={**headers, "X-Webhook-Secret": "bad"}
    )

    assert (response.status_code, response.content) == (200, b"")
    assert refused.status_code == 401
    wait_for(
        lambda: "callback.processed" in worker.output(), START_TIMEOUT_SECONDS, "the worker to process it"
    )
    wait_for(lambda: stored_messages(redis_client) == 0, 10, "the message to be acknowledged")
    processed = [json.loads(line) for line in worker.output().splitlines() if '"callback.processed"' in line]
    assert [(line["webhook_id"], line["scope"], line["store"]) for line in processed] == [
        ("msg_e2e", "store/order/created", STORE_HASH)
    ]
    assert processed[0]["resource"] == "order:104"
    assert processed[0]["summary"].startswith("order 104 ")
    # The receiver flushes its log lines within FLUSH_DELAY_SECONDS; a fast worker can finish before that.
    wait_for(lambda: '"callback.enqueued"' in serve.output(), 10, "the receiver to log the callback")
    accepted = [json.loads(line) for line in serve.output().splitlines() if '"callback.enqueued"' in line]
    assert accepted[0]["webhook_id"] == "msg_e2e"

    children = Path(f"/proc/{worker.popen.pid}/task/{worker.popen.pid}/children").read_text().split()
    dramatiq_environ = Path(f"/proc/{children[0]}/environ").read_bytes().split(b"\0")
    assert b"dramatiq_worker_timeout=100" in dramatiq_environ  # an idle worker polls at least every 100 ms

    serve.stop()
    worker.stop()
    everything_logged = serve.output() + worker.output()
    for secret in (
        CLIENT_SECRET,
        HEADER_SECRET,
        environ["BIGCOMMERCE_ACCESS_TOKEN"],
        headers["webhook-signature"],
    ):
        assert secret not in everything_logged


def test_dev_runs_the_whole_stack_on_an_embedded_redis_and_stops_on_ctrl_c(
    started: list[Process], tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BCWEBHOOKS_DATA_DIR": str(tmp_path / "dev"),
        "BCWEBHOOKS_LOG_FORMAT": "console",
    }
    dev = Process([*BCWEBHOOKS, "dev", "--port", "0", "--sandbox-port", "0"], env, tmp_path / "dev.log")
    started.append(dev)

    def processed_scopes() -> set[str]:
        lines = [line for line in dev.output().splitlines() if "callback.processed" in line]
        return {
            word.removeprefix("scope=")
            for line in lines
            for word in line.split()
            if word.startswith("scope=")
        }

    demo = {
        "store/product/updated",
        "store/order/statusUpdated",
        "store/customer/created",
        "store/cart/created",
    }
    wait_for(
        lambda: demo <= processed_scopes(), START_TIMEOUT_SECONDS * 2, "the demo sequence to be processed"
    )
    output = dev.output()
    assert "bcwebhooks dev: receiver http://127.0.0.1:" in output
    assert "sandbox store at http://127.0.0.1:" in output
    assert (tmp_path / "dev" / "appendonly.aof").exists()
    # With no BCWEBHOOKS_DASHBOARD_TOKEN, dev makes one and prints the dashboard's login link.
    [login] = re.findall(r"dashboard (http://127\.0\.0\.1:\d+/dashboard\?token=\S+)", output)
    with httpx.Client(follow_redirects=True) as browser:
        assert browser.get(login.split("?")[0]).status_code == 401
        page = browser.get(login)
    assert page.status_code == 200
    assert "/dashboard" in str(page.url) and "token=" not in str(page.url)

    children = psutil.Process(dev.popen.pid).children(recursive=True)
    assert any("dramatiq" in " ".join(child.cmdline()) for child in children)
    # redis-server daemonizes; ours is the one working in the data directory.
    embedded = [p for p in psutil.process_iter(["name", "cwd"]) if p.info["cwd"] == str(tmp_path / "dev")]
    assert [p.info["name"] for p in embedded] == ["redis-server"]
    children += embedded

    assert dev.stop(signal.SIGINT) == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []


def test_dev_with_stores_installs_the_app_on_each_sandbox_store_and_processes_each_stores_events(
    started: list[Process], tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BCWEBHOOKS_DATA_DIR": str(tmp_path / "dev"),
        "BCWEBHOOKS_LOG_FORMAT": "console",
    }
    argv = [*BCWEBHOOKS, "dev", "--stores", "3", "--port", "0", "--sandbox-port", "0"]
    dev = Process(argv, env, tmp_path / "dev.log", cwd=tmp_path)
    started.append(dev)
    stores = ("sandbox", "sandbox2", "sandbox3")
    demo = {
        "store/product/updated",
        "store/order/statusUpdated",
        "store/customer/created",
        "store/cart/created",
    }

    def lines(event: str) -> list[dict[str, str]]:
        found = [line.split() for line in dev.output().splitlines() if f" {event} " in line]
        return [dict(word.split("=", 1) for word in words if "=" in word) for words in found]

    def processed() -> set[tuple[str, str]]:
        return {(fields.get("store", ""), fields.get("scope", "")) for fields in lines("callback.processed")}

    wanted = {(store, scope) for store in stores for scope in demo}
    wait_for(lambda: wanted <= processed(), START_TIMEOUT_SECONDS * 3, "each store's demo to be processed")
    installed = {fields["store"]: fields["token_exchanged"] for fields in lines("dev.app_installed")}
    applied = {fields["store"]: fields["declared"] for fields in lines("store.hooks_applied")}
    assert installed == dict.fromkeys(stores, "True")
    assert applied == dict.fromkeys(stores, "4")
    assert "app mode, sandbox stores sandbox, sandbox2, sandbox3 at http://127.0.0.1:" in dev.output()

    # Beside dev, the sandbox's app control and `stores` find the stack by themselves.
    beside = {**env, "BCWEBHOOKS_LOG_FORMAT": "json"}
    uninstall = subprocess.run(
        [*BCWEBHOOKS, "sandbox", "app", "uninstall", "--store", "sandbox2"],
        env=beside, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert uninstall.returncode == 0, uninstall.stderr
    assert "/oauth/uninstall: 200" in uninstall.stdout
    listed = subprocess.run(
        [*BCWEBHOOKS, "stores", "list"], env=beside, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    states = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()[1:4]}
    assert states == {"sandbox": "installed", "sandbox2": "uninstalled", "sandbox3": "installed"}
    assert dev.stop(signal.SIGINT) == 0


def test_every_command_has_help() -> None:
    for command in ([], ["serve"], ["worker"], ["dev"], ["sandbox"], ["trigger"]):
        result = subprocess.run([*BCWEBHOOKS, *command, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, command
        assert result.stdout.startswith("usage: bcwebhooks")


def test_serve_refuses_oversized_heads_and_times_out_slow_bodies(
    environ: dict[str, str], started: list[Process], tmp_path: Path, redis_client: redis.Redis
) -> None:
    port = free_port()
    environ = {**environ, "BCWEBHOOKS_BODY_TIMEOUT_SECONDS": "0.5"}
    serve = Process([*BCWEBHOOKS, "serve", "--port", str(port)], environ, tmp_path / "serve.log")
    started.append(serve)
    wait_for(
        lambda: ready(f"http://127.0.0.1:{port}/readyz"), START_TIMEOUT_SECONDS, "the receiver to be ready"
    )
    raw = encode(envelope())
    signed_head = [(name, value) for name, value in signed(raw).items()]

    # Only the HTTP layer counts the request target: a 431 here comes from serve's uvicorn protocol.
    with connect(port) as sock:
        sock.sendall(
            request_head("/webhooks/bigcommerce?" + "q" * MAX_HEADER_BYTES, signed_head, len(raw)) + raw
        )
        status, _, body = read_response(sock)
    assert (status, error_of(body)) == (431, "headers_too_large")

    with connect(port) as sock:
        sock.sendall(request_head("/webhooks/bigcommerce", signed_head, len(raw)) + raw[:10])
        status, headers, body = read_response(sock)
        assert read_until_closed(sock) == b""
    assert (status, error_of(body), headers["connection"]) == (408, "body_timeout", "close")
    assert redis_client.dbsize() == 0
