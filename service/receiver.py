"""POST /webhooks/bigcommerce: verify, validate, dedup, persist, then acknowledge with an empty 200.

The endpoint is a plain ASGI app. `service.app.ReceiverApp` hands it the POSTs to its paths directly, and
it is also mounted on Starlette `Route`s, so Starlette answers 405 for other methods. It reads the scope
and the body itself and writes the empty 200 as two ASGI messages, which leaves out the `Request` and
`Response` objects and the per-request exception wrapper of a function endpoint: about a tenth of the
receiver's CPU per callback (bench_ingest.py). Rejections are ordinary Starlette JSON responses.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import structlog
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from service.envelopes import EnvelopeError, parse_envelope
from service.events import PersistedCallback, event_id_for
from service.queue import EventQueue, QueueUnavailable
from service.signatures import AuthenticationError, Authenticator

RETRY_AFTER_SECONDS = 30
JSON_MEDIA_TYPE = "application/json"
ACCEPTED_START = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
ACCEPTED_BODY = {"type": "http.response.body", "body": b""}

log = structlog.get_logger("bcwebhooks.receiver")


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


def header_map(scope: Scope, wanted: Mapping[bytes, str]) -> dict[str, str]:
    """The headers named in `wanted` (raw lowercase name -> str name), decoded; the first of repeats wins.

    ASGI servers lowercase header names, so the raw names compare as they are.
    """
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    return {wanted[name]: value.decode("latin-1") for name, value in reversed(raw) if name in wanted}


async def read_limited(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """Read the body, stopping as soon as it exceeds `limit` bytes (checked up front via Content-Length)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def rejection(status_code: int, code: str, message: str) -> JSONResponse:
    """A 4xx/5xx answer with a short machine-readable reason."""
    return JSONResponse({"error": code, "message": message}, status_code=status_code)


class Receiver:
    """The webhook endpoint, holding what it needs from the settings.

    Parameters:
      authenticator: the configured authenticity checks.
      queue: where accepted callbacks are persisted.
      store_hash: the only store whose callbacks are accepted.
      max_body_bytes: larger bodies get 413 without being read.
    """

    def __init__(self, authenticator: Authenticator, queue: EventQueue, store_hash: str, max_body_bytes: int):
        self.authenticator = authenticator
        self.queue = queue
        self.store_hash = store_hash
        self.max_body_bytes = max_body_bytes
        read = {"content-type", "content-length", *authenticator.header_names}
        self._wanted_headers = {name.encode("latin-1"): name for name in read}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one callback as an ASGI app; every outcome is logged once."""
        try:
            rejected = await self.handle(scope, receive)
        except ClientDisconnect:
            # Nothing was persisted and nobody is left to answer; BigCommerce counts it as a failed delivery.
            log.info("callback.abandoned", reason="client disconnected before the body was read")
            return
        if rejected is None:
            await send(ACCEPTED_START)
            await send(ACCEPTED_BODY)
        else:
            await rejected(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive) -> JSONResponse | None:
        """Verify, validate, dedup and persist one callback: None when accepted, else the answer to send."""
        headers = header_map(scope, self._wanted_headers)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            return self._reject(415, "unsupported_media_type", "Content-Type must be application/json")
        try:
            body = await read_limited(receive, headers, self.max_body_bytes)
        except BodyTooLarge:
            return self._reject(413, "body_too_large", f"body is larger than {self.max_body_bytes} bytes")
        try:
            webhook_id = self.authenticator.authenticate(body, headers, time.time())
        except AuthenticationError as error:
            return self._reject(401, error.code, error.message)
        try:
            envelope = parse_envelope(body, self.store_hash)
        except EnvelopeError as error:
            return self._reject(400, error.code, error.message, webhook_id=webhook_id)
        callback = PersistedCallback(
            event_id=event_id_for(envelope, webhook_id, body),
            webhook_id=webhook_id,
            received_at_ms=time.time_ns() // 1_000_000,
            envelope=envelope.body,
        )
        try:
            enqueued = await self.queue.persist_once(callback)
        except QueueUnavailable as error:
            log.error(
                "callback.unavailable",
                error=str(error),
                status=503,
                webhook_id=webhook_id,
                scope=envelope.scope,
                store=envelope.store_hash,
            )
            response = rejection(503, "unavailable", "could not persist the callback; retry later")
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        log.info(
            "callback.enqueued" if enqueued else "callback.duplicate",
            event_id=callback["event_id"],
            webhook_id=webhook_id,
            scope=envelope.scope,
            store=envelope.store_hash,
        )
        return None

    def _reject(
        self, status_code: int, code: str, message: str, webhook_id: str | None = None
    ) -> JSONResponse:
        log.warning(
            "callback.rejected", status=status_code, reason=code, webhook_id=webhook_id, store=self.store_hash
        )
        return rejection(status_code, code, message)
