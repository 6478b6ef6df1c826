"""Failures of ours: Redis stops mid-flight, a body streams in larger than the limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis
import structlog
from starlette.testclient import TestClient

from service.app import create_app
from service.queue import dedup_key
from tests.conftest import make_settings
from tests.helpers import encode, envelope, queued_callbacks, signed
from tests.servers import RedisProcess

URL = "/webhooks/bigcommerce"


def post_scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    """An ASGI scope for a JSON POST to the webhook path, to drive the app with our own receive()."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


def test_redis_stopped_gets_503_and_the_retry_is_accepted_once_redis_is_back(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    raw = encode(envelope())
    headers = signed(raw, webhook_id="msg_during_outage")
    try:
        with TestClient(create_app(make_settings(), server.url), raise_server_exceptions=False) as client:
            server.stop()
            during = client.post(URL, content=raw, headers=headers)
            server.start()
            state = redis.Redis.from_url(server.url)
            mark_after_outage = state.exists(dedup_key("id:msg_during_outage"))
            retry = client.post(URL, content=raw, headers=signed(raw, webhook_id="msg_during_outage"))
            again = client.post(URL, content=raw, headers=signed(raw, webhook_id="msg_during_outage"))
            queued = queued_callbacks(state)
            state.close()
    finally:
        server.stop()

    assert during.status_code == 503
    assert "retry-after" in during.headers
    assert mark_after_outage == 0
    assert (retry.status_code, again.status_code) == (200, 200)
    assert [callback["webhook_id"] for callback in queued] == ["msg_during_outage"]


def test_accepted_callbacks_survive_a_redis_restart(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    raw = encode(envelope())
    try:
        with TestClient(create_app(make_settings(), server.url)) as client:
            assert client.post(URL, content=raw, headers=signed(raw)).status_code == 200
        server.stop()  # SIGTERM: Redis flushes its append-only file
        server.start()
        state = redis.Redis.from_url(server.url)
        queued = queued_callbacks(state)
        state.close()
    finally:
        server.stop()

    assert len(queued) == 1


def test_oversized_chunked_body_is_refused_without_reading_the_rest(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = create_app(make_settings(), redis_url)
    chunk = b"x" * 8192
    total_chunks = 1000  # 8 MB offered; the limit is 64 KiB
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = post_scope((b"transfer-encoding", b"chunked"))

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]

    assert sent[0]["status"] == 413
    assert pulled <= 64 * 1024 // len(chunk) + 1
    assert redis_client.dbsize() == 0


def test_declared_oversized_length_is_refused_up_front(redis_url: str, redis_client: redis.Redis) -> None:
    app = create_app(make_settings(), redis_url)
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = post_scope((b"content-length", b"10000000"))

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]

    assert sent[0]["status"] == 413
    assert pulled == 0


def test_client_gone_before_the_body_arrives_is_logged_and_nothing_is_enqueued(
    redis_url: str, redis_client: redis.Redis
) -> None:
    app = create_app(make_settings(), redis_url)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with structlog.testing.capture_logs() as lines:
        asyncio.run(app(post_scope(), receive, send))  # type: ignore[arg-type]

    assert sent == []
    assert redis_client.dbsize() == 0
    assert [line["event"] for line in lines] == ["callback.abandoned"]
