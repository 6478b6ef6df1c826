"""A real HTTP destination for forwarded events: http.server on 127.0.0.1, recording what it received.

It can answer a given status for its next requests, hold requests until released (a slow destination),
and stop and start again on the same port (a destination that is down).
"""

from __future__ import annotations

import itertools
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

HOLD_LIMIT_SECONDS = 60.0  # a held request is answered by then whatever the test does
_sequence = itertools.count(1)  # one order across every destination of a test run
_sequence_lock = threading.Lock()


@dataclass(frozen=True)
class Received:
    """One request as the destination saw it, and what it answered."""

    sequence: int
    headers: dict[str, str]
    body: bytes
    status: int
    verified: bool | None = None  # the signature checked on arrival, when the destination knows the secret

    @property
    def webhook_id(self) -> str:
        """The request's `webhook-id`."""
        return self.headers.get("webhook-id", "")


class Destination:
    """An HTTP server that records each POST; starts on a free port, stops by itself on `stop`.

    Parameters:
      secret: the output's Standard Webhooks secret; when given, each request's signature is checked as it
        arrives (as a consumer does: the reference library refuses a timestamp over five minutes old, so a
        check long after the run would fail for that reason alone).
    """

    def __init__(self, secret: str | None = None) -> None:
        self._webhook = Webhook(secret) if secret is not None else None
        # While stopped, the port stays bound without listening: connections are refused, and no client's
        # ephemeral port can take it (a connect to a free loopback port can connect to itself).
        self._reserved: socket.socket | None = socket.socket()
        self._reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._reserved.bind(("127.0.0.1", 0))
        self.port = int(self._reserved.getsockname()[1])
        self.received: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where outputs POST."""
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Destination:
        """Listen (again) on the destination's port."""
        destination = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as most destinations

            def do_POST(self) -> None:
                destination._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        server_class = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 64})
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        self._server = server_class(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until `start`."""
        self._open.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._reserved = socket.socket()
            self._reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._reserved.bind(("127.0.0.1", self.port))

    def close(self) -> None:
        """Stop and give the port back."""
        self.stop()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer `status` to the next `count` requests."""
        with self._lock:
            self._failures.extend([status] * count)

    def hold(self) -> None:
        """Keep requests waiting (a slow destination) until `release`."""
        self._open.clear()

    def release(self) -> None:
        """Answer held requests and stop holding."""
        self._open.set()

    def accepted(self) -> list[Received]:
        """The requests answered 2xx, in order."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("content-length", 0)))
        headers = {key.lower(): value for key, value in request.headers.items()}
        verified = None if self._webhook is None else self._verifies(body, headers)
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self._open.wait(HOLD_LIMIT_SECONDS)
        with self._lock:
            status = self._failures.pop(0) if self._failures else 200
            self.in_flight -= 1
            with _sequence_lock:
                sequence = next(_sequence)
            self.received.append(Received(sequence, headers, body, status, verified))
        request.send_response(status)
        request.send_header("content-length", "0")
        request.end_headers()

    def _verifies(self, body: bytes, headers: dict[str, str]) -> bool:
        assert self._webhook is not None
        try:
            self._webhook.verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    def __enter__(self) -> Destination:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
