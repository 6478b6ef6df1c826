"""POST /webhooks/bigcommerce: verify, validate, dedup, persist, then acknowledge with an empty 200."""

from __future__ import annotations

import time

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.envelopes import EnvelopeError, parse_envelope
from service.events import PersistedCallback, event_id_for
from service.queue import EventQueue, QueueUnavailable
from service.signatures import AuthenticationError, Authenticator

RETRY_AFTER_SECONDS = 30
JSON_MEDIA_TYPE = "application/json"

log = structlog.get_logger("bcwebhooks.receiver")


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


def header_map(request: Request) -> dict[str, str]:
    """The request's headers as a plain dict, names lowercase, decoded once; the first of repeats wins.

    Starlette's `Headers.get` decodes and scans every header on each lookup; the receiver looks up
    several, on every request.
    """
    raw: list[tuple[bytes, bytes]] = request.scope["headers"]
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in reversed(raw)}


async def read_limited(request: Request, headers: dict[str, str], limit: int) -> bytes:
    """Read the body, stopping as soon as it exceeds `limit` bytes (checked up front via Content-Length)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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

    async def receive(self, request: Request) -> Response:
        """Handle one callback; every outcome is logged once."""
        headers = header_map(request)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            return self._reject(415, "unsupported_media_type", "Content-Type must be application/json")
        try:
            body = await read_limited(request, headers, self.max_body_bytes)
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
        context = {"webhook_id": webhook_id, "scope": envelope.scope, "store": envelope.store_hash}
        try:
            enqueued = await self.queue.persist_once(callback)
        except QueueUnavailable as error:
            log.error("callback.unavailable", error=str(error), status=503, **context)
            response = rejection(503, "unavailable", "could not persist the callback; retry later")
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        log.info(
            "callback.enqueued" if enqueued else "callback.duplicate",
            event_id=callback["event_id"],
            **context,
        )
        return Response(status_code=200)

    def _reject(
        self, status_code: int, code: str, message: str, webhook_id: str | None = None
    ) -> JSONResponse:
        log.warning(
            "callback.rejected", status=status_code, reason=code, webhook_id=webhook_id, store=self.store_hash
        )
        return rejection(status_code, code, message)
