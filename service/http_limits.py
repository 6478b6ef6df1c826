"""uvicorn's httptools protocol with limits on request headers and on clients too slow to send them.

What uvicorn 0.54 offers with httptools: `limit_concurrency` (503 beyond N connections or tasks),
`timeout_keep_alive` (closes a connection idle *after* a response), `backlog`, and, for h11 only,
`h11_max_incomplete_event_size`. Nothing bounds the number or size of headers (they are buffered as they
come), and nothing times out a client that opens a connection and never finishes its headers: the keep-alive
timer is armed only after a response. This subclass adds both:

- more than MAX_HEADER_COUNT headers, or more than MAX_HEADER_BYTES of request target plus header names and
  values: 431 with the receiver's `{"error", "message"}` body, and the connection is closed (the rest of the
  request is not read). The check runs once the head is complete; a head still unfinished after twice
  MAX_HEADER_BYTES raw bytes is refused the same way, so no more than that is ever buffered;
- headers not complete HEADER_TIMEOUT_SECONDS after the connection opened or the request began: 408 (or a
  plain close when not a byte of a request arrived), checked by one timer per connection rather than one per
  request.

A body that does not arrive in time is the receiver's to answer (408, service/receiver.py), since only it
knows that nothing was enqueued. Select it with `uvicorn.run(..., http=PROTOCOL)`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.receiver import HEAD_CHECKED, MAX_HEADER_BYTES, MAX_HEADER_COUNT

PROTOCOL = "service.http_limits:LimitedHttpToolsProtocol"
HEADER_TIMEOUT_SECONDS = 10.0
REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


class HeaderLimitExceeded(Exception):
    """Raised inside the parser's callback to stop it; the refusal is already chosen."""


def refusal(status_code: int, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, with the receiver's JSON error body."""
    body = json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()
    head = (
        f"HTTP/1.1 {status_code} {REASONS[status_code]}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol refusing oversized headers (431) and headers that never finish (408).

    Parameters (class attributes, so that a subclass can change them):
      max_header_count: headers per request.
      max_header_bytes: bytes of request target plus header names and values per request.
      header_timeout_seconds: how long a request's headers may take, from the connection or the request's
        first byte.
    """

    max_header_count = MAX_HEADER_COUNT
    max_header_bytes = MAX_HEADER_BYTES
    header_timeout_seconds = HEADER_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._chunk_bytes = 0  # size of the chunk being parsed
        self._head_bytes_received = 0  # raw bytes of earlier chunks of a head not yet complete
        self._headers_since: float | None = None  # loop time the awaited headers began; None: not waiting
        self._refusal: bytes | None = None
        self._watch: asyncio.TimerHandle | None = None
        self._covers_receiver_limits = (
            self.max_header_count <= MAX_HEADER_COUNT and self.max_header_bytes <= MAX_HEADER_BYTES
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_since = self.loop.time()
        self._watch = self.loop.call_later(self.header_timeout_seconds, self._check_headers_time)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # On the hot path: the usual request arrives whole in one chunk and pays two comparisons here.
        self._chunk_bytes = len(data)
        HttpToolsProtocol.data_received(self, data)
        scope, cycle = self.scope, self.cycle
        # uvicorn makes a new scope when a request begins and a cycle holding it once its head is
        # complete: a scope without its cycle is a head still arriving.
        if scope is None or (cycle is not None and cycle.scope is scope):
            self._head_bytes_received = 0
            return
        if self._headers_since is None:
            self._headers_since = self.loop.time()
        self._head_bytes_received += len(data)
        if self._head_bytes_received > 2 * self.max_header_bytes and not self.transport.is_closing():
            message = f"request target and headers larger than {self.max_header_bytes} bytes"
            self.transport.write(refusal(431, "headers_too_large", message))
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._headers_since = None
        # Checked once per request rather than per header (a Python call per header costs more); the exact
        # size only when the raw bytes of this head could exceed it.
        if len(self.headers) > self.max_header_count:
            self._refuse_headers(f"more than {self.max_header_count} headers")
        if self._head_bytes_received + self._chunk_bytes > self.max_header_bytes and (
            len(self.url) + len(b"".join(itertools.chain.from_iterable(self.headers))) > self.max_header_bytes
        ):
            self._refuse_headers(f"request target and headers larger than {self.max_header_bytes} bytes")
        if self._covers_receiver_limits:
            self.scope[HEAD_CHECKED] = True  # type: ignore[literal-required]  # the receiver skips its check
        HttpToolsProtocol.on_headers_complete(self)

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self.transport.write(self._refusal)
        self.transport.close()

    def _refuse_headers(self, message: str) -> None:
        # httptools turns the exception into HttpParserCallbackError; uvicorn then calls send_400_response.
        self._refusal = refusal(431, "headers_too_large", message)
        raise HeaderLimitExceeded(message)

    def _check_headers_time(self) -> None:
        self._watch = None
        if self.transport.is_closing():
            return
        since = self._headers_since
        waited = 0.0 if since is None else self.loop.time() - since
        if waited >= self.header_timeout_seconds:
            self._time_out()
            return
        delay = self.header_timeout_seconds - waited
        self._watch = self.loop.call_later(delay, self._check_headers_time)

    def _time_out(self) -> None:
        if self.scope is not None:  # a request has begun (a connection that sent nothing is just closed)
            message = f"headers did not arrive within {self.header_timeout_seconds:g} s"
            self.transport.write(refusal(408, "header_timeout", message))
        self.transport.close()
