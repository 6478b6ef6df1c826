"""The uvicorn protocol `serve` runs: header count/size limits and slow headers, over real sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.types import Receive, Scope, Send

from service.http_limits import LimitedHttpToolsProtocol
from service.receiver import MAX_HEADER_BYTES, MAX_HEADER_COUNT
from tests.rawhttp import (
    connect,
    error_of,
    nothing_to_read,
    read_response,
    read_until_closed,
    request_head,
)
from tests.servers import ThreadedUvicorn

TIMEOUT = 0.5


class QuickProtocol(LimitedHttpToolsProtocol):
    """The same limits with a header timeout short enough for tests."""

    header_timeout_seconds = TIMEOUT


class CountingApp:
    """Reads the whole body and answers 200 with it; counts the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def server() -> Iterator[tuple[CountingApp, int]]:
    app = CountingApp()
    with ThreadedUvicorn(app, http=QuickProtocol) as running:
        yield app, running.port


def headers(count: int, size: int = 8) -> list[tuple[str, str]]:
    return [(f"x-h{i}", "v" * size) for i in range(count)]


def test_requests_within_the_limits_are_served_on_a_kept_alive_connection(
    server: tuple[CountingApp, int],
) -> None:
    app, port = server
    # Host and Content-Length are headers too.
    near_the_limit = headers(MAX_HEADER_COUNT - 2)
    with connect(port) as sock:
        for _ in range(3):
            sock.sendall(request_head("/x", near_the_limit, content_length=2) + b"{}")
            status, _, body = read_response(sock)
            assert (status, body) == (200, b"{}")

    assert app.calls == 3


def test_too_many_headers_get_431_and_never_reach_the_app(server: tuple[CountingApp, int]) -> None:
    app, port = server
    with connect(port) as sock:
        sock.sendall(request_head("/x", headers(MAX_HEADER_COUNT + 1), content_length=2) + b"{}")
        status, response_headers, body = read_response(sock)
        assert read_until_closed(sock) == b""

    assert status == 431
    assert error_of(body) == "headers_too_large"
    assert response_headers["connection"] == "close"
    assert app.calls == 0


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (request_head("/x", [("x-big", "b" * (MAX_HEADER_BYTES + 1))], content_length=0), "one big header"),
        (request_head("/x?" + "q" * MAX_HEADER_BYTES, [], content_length=0), "a long request target"),
        # A header line that never ends: httptools never reports it, the raw byte count stops it.
        (request_head("/x", [("x-big", "b" * (3 * MAX_HEADER_BYTES))])[:-4], "an unfinished header"),
    ],
)
def test_oversized_heads_get_431_without_waiting_for_the_rest(
    server: tuple[CountingApp, int], head: bytes, what: str
) -> None:
    app, port = server
    with connect(port) as sock:
        try:
            sock.sendall(head)
        except ConnectionResetError:
            pass  # the server may close before it has read everything; its answer is still there
        status, _, body = read_response(sock, timeout=TIMEOUT * 0.8)  # before the header timeout

    assert (status, error_of(body)) == (431, "headers_too_large"), what
    assert app.calls == 0


def test_headers_that_never_finish_get_408_and_the_connection_is_closed(
    server: tuple[CountingApp, int],
) -> None:
    app, port = server
    with connect(port) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        raw = read_until_closed(sock, timeout=TIMEOUT * 6)
        waited = time.monotonic() - started

    assert raw.startswith(b"HTTP/1.1 408 ")
    assert error_of(raw.partition(b"\r\n\r\n")[2]) == "header_timeout"
    assert TIMEOUT * 0.9 <= waited
    assert app.calls == 0


def test_headers_trickled_in_still_time_out_from_the_first_byte(server: tuple[CountingApp, int]) -> None:
    app, port = server
    with connect(port) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\n")
        deadline = time.monotonic() + TIMEOUT * 6
        closed = False
        # One header line every TIMEOUT/5 s: each byte is on time, the whole never is.
        for number in range(100):
            if not nothing_to_read(sock, TIMEOUT / 5):
                closed = True
                break
            sock.sendall(f"X-Drip-{number}: 1\r\n".encode())
            assert time.monotonic() < deadline
        assert closed
        raw = read_until_closed(sock)

    assert raw.startswith(b"HTTP/1.1 408 ")
    assert app.calls == 0


def test_a_connection_that_sends_nothing_is_closed(server: tuple[CountingApp, int]) -> None:
    _, port = server
    with connect(port) as sock:
        assert read_until_closed(sock, timeout=TIMEOUT * 6) == b""
