"""A raw HTTP/1.1 client on a plain socket, for clients that misbehave: slow, oversized, never finishing."""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any

READ_TIMEOUT_SECONDS = 5.0


def connect(port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:port."""
    return socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_SECONDS)


def request_head(path: str, headers: list[tuple[str, str]], content_length: int | None = None) -> bytes:
    """A POST request line and headers (with Host), ending with the blank line."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_until_closed(sock: socket.socket, timeout: float = READ_TIMEOUT_SECONDS) -> bytes:
    """Everything the server sends until it closes the connection; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    received = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the server kept the connection open for {timeout}s: {received!r}")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk


def read_response(
    sock: socket.socket, timeout: float = READ_TIMEOUT_SECONDS
) -> tuple[int, dict[str, str], bytes]:
    """One response (status, lowercase headers, body by Content-Length), leaving the connection open."""
    deadline = time.monotonic() + timeout
    received = b""
    while b"\r\n\r\n" not in received or len(received) < _expected_length(received):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no complete response within {timeout}s: {received!r}")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return parse_response(received)


def _expected_length(received: bytes) -> int:
    head, _, _ = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(head) + 4


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, lowercase headers and body of one raw response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def error_of(body: bytes) -> Any:
    """The `error` code of a JSON rejection body."""
    return json.loads(body)["error"]


def nothing_to_read(sock: socket.socket, within: float) -> bool:
    """True when the server sends nothing (and does not close) for `within` seconds."""
    readable, _, _ = select.select([sock], [], [], within)
    return not readable
