"""The receiver's own limits, whatever server runs it: header count and size (431), slow bodies (408)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from service.app import create_app
from service.deadlines import Deadlines
from service.receiver import MAX_HEADER_BYTES, MAX_HEADER_COUNT
from tests.conftest import make_settings
from tests.helpers import encode, envelope, queued_callbacks, signed
from tests.rawhttp import connect, error_of, nothing_to_read, read_response, read_until_closed, request_head
from tests.servers import ThreadedUvicorn

URL = "/webhooks/bigcommerce"
BODY_TIMEOUT = 0.5


@pytest.fixture
def port(redis_url: str, redis_client: redis.Redis) -> Iterator[int]:
    """The receiver on plain uvicorn (no limits of its own), with a short body timeout."""
    settings = make_settings(BCWEBHOOKS_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT))
    with ThreadedUvicorn(create_app(settings, redis_url)) as server:
        yield server.port


def test_too_many_headers_get_431_and_nothing_is_enqueued(
    client: TestClient, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())
    extra = {f"x-extra-{i}": "1" for i in range(MAX_HEADER_COUNT)}

    response = client.post(URL, content=raw, headers={**signed(raw), **extra})

    assert response.status_code == 431
    assert response.json() == {
        "error": "headers_too_large",
        "message": f"more than {MAX_HEADER_COUNT} headers",
    }
    assert redis_client.dbsize() == 0


def test_oversized_headers_get_431_and_nothing_is_enqueued(
    client: TestClient, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())

    response = client.post(URL, content=raw, headers={**signed(raw), "x-big": "b" * MAX_HEADER_BYTES})

    assert response.status_code == 431
    assert response.json()["error"] == "headers_too_large"
    assert redis_client.dbsize() == 0


def test_headers_at_the_limits_are_accepted(client: TestClient, redis_client: redis.Redis) -> None:
    raw = encode(envelope())
    headers = signed(raw)
    # TestClient adds host, accept, accept-encoding, connection, user-agent and content-length.
    room = MAX_HEADER_COUNT - len(headers) - 6
    extra = {f"x-extra-{i}": "1" for i in range(room)}

    response = client.post(URL, content=raw, headers={**headers, **extra})

    assert response.status_code == 200
    assert len(queued_callbacks(redis_client)) == 1


def signed_head(raw: bytes) -> bytes:
    return request_head(URL, list(signed(raw).items()), content_length=len(raw))


def test_a_body_that_never_arrives_gets_408_and_nothing_is_enqueued(
    port: int, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())
    with connect(port) as sock:
        sock.sendall(signed_head(raw) + raw[:20])
        status, headers, body = read_response(sock, timeout=BODY_TIMEOUT * 4)
        assert read_until_closed(sock) == b""

    assert (status, error_of(body)) == (408, "body_timeout")
    assert headers["connection"] == "close"
    assert redis_client.dbsize() == 0


def test_a_body_sent_in_pieces_within_the_timeout_is_accepted(port: int, redis_client: redis.Redis) -> None:
    raw = encode(envelope())
    with connect(port) as sock:
        sock.sendall(signed_head(raw) + raw[:20])
        assert nothing_to_read(sock, BODY_TIMEOUT / 5)  # the receiver waits for the rest
        sock.sendall(raw[20:])
        status, _, _ = read_response(sock)

    assert status == 200
    assert len(queued_callbacks(redis_client)) == 1


def test_a_kept_alive_connection_serves_callbacks_after_the_body_timeout_has_passed(
    port: int, redis_client: redis.Redis
) -> None:
    with connect(port) as sock:
        for _ in range(2):
            raw = encode(envelope())
            sock.sendall(signed_head(raw) + raw)
            assert read_response(sock)[0] == 200
            assert nothing_to_read(sock, BODY_TIMEOUT * 1.5)  # an idle connection is no slow body

    assert len(queued_callbacks(redis_client)) == 2


def test_a_deadline_never_swallows_a_cancellation_of_its_own() -> None:
    async def scenario() -> list[Any]:
        deadlines = Deadlines(0.2)
        outcomes: list[Any] = []

        async def guarded(wait: float) -> None:
            task = asyncio.current_task()
            assert task is not None
            deadlines.guard(task)
            try:
                await asyncio.sleep(wait)
                outcomes.append("finished")
            except asyncio.CancelledError:
                if not deadlines.expired(task):
                    outcomes.append("cancelled from outside")
                    raise
                outcomes.append("expired")
            finally:
                deadlines.release(task)

        quick, slow, outside = (asyncio.create_task(guarded(w)) for w in (0.01, 5, 5))
        await asyncio.sleep(0)  # one turn of the loop: all three are inside their guarded await
        outside.cancel()
        await asyncio.gather(quick, slow, outside, return_exceptions=True)
        return sorted(outcomes)

    assert asyncio.run(scenario()) == ["cancelled from outside", "expired", "finished"]
