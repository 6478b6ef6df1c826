"""POST /webhooks/bigcommerce: verify, validate, dedup, persist, then acknowledge with an empty 200.

The endpoint is a plain ASGI app. `service.app.ReceiverApp` hands it the POSTs to its paths directly, and
it is also mounted on Starlette `Route`s, so Starlette answers 405 for other methods. It reads the scope
and the body itself and writes the empty 200 as two ASGI messages, which leaves out the `Request` and
`Response` objects and the per-request exception wrapper of a function endpoint: about a tenth of the
receiver's CPU per callback (bench_ingest.py). Rejections are ordinary Starlette JSON responses.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping

import structlog
from prometheus_client import CollectorRegistry
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from service.deadlines import Deadlines
from service.early_warning import BlocklistRisk
from service.envelopes import EnvelopeError, parse_envelope
from service.events import PersistedCallback, event_id_for
from service.metrics import ABANDONED, ACCEPTED, DUPLICATE, UNAVAILABLE, CallbackMetrics
from service.queue import EventQueue, QueueUnavailable, StoreNotInstalled
from service.settings import DEFAULT_BODY_TIMEOUT_SECONDS
from service.signatures import AuthenticationError, Authenticator

RETRY_AFTER_SECONDS = 30
# BigCommerce sends about ten headers. `serve`'s HTTP layer (service/http_limits.py) enforces the same limits
# while the head arrives and marks the scope; the receiver checks them itself under any other server.
MAX_HEADER_COUNT = 64
MAX_HEADER_BYTES = 16 * 1024
HEAD_CHECKED = "bcwebhooks.head_checked"  # a scope key: the server enforced the limits above
JSON_MEDIA_TYPE = "application/json"
ACCEPTED_START = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
ACCEPTED_BODY = {"type": "http.response.body", "body": b""}

log = structlog.get_logger("bcwebhooks.receiver")


# Refusals given before the signature is checked (or of what BigCommerce never sends: a wrong content type,
# a huge body or head): the sender is unknown, so they do not count towards BigCommerce's success ratio.
UNPROVEN_SENDER_STATUSES = frozenset({401, 413, 415, 431})


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


def headers_too_large(scope: Scope) -> str | None:
    """Why the request's headers are over the limits, or None (names and values counted, as sent).

    Skipped when the server says it already enforced the same limits (service/http_limits.py marks the scope).
    """
    if HEAD_CHECKED in scope:
        return None
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    if len(raw) > MAX_HEADER_COUNT:
        return f"more than {MAX_HEADER_COUNT} headers"
    if len(b"".join(itertools.chain.from_iterable(raw))) > MAX_HEADER_BYTES:
        return f"headers larger than {MAX_HEADER_BYTES} bytes"
    return None


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
      store_hash: the only store whose callbacks are accepted; None in app mode, where a callback is
        accepted only from a store that has the app installed (checked by the queue's persist script) and
        refused with 403 `store_not_installed` otherwise.
      max_body_bytes: larger bodies get 413 without being read.
      body_timeout_seconds: a body not complete this long after the headers gets 408 (up to a quarter
        of it later: see service/deadlines.py).
      metrics: where each outcome and acknowledgement time is counted (service/metrics.py).
      early_warning: watches the answers as BigCommerce's blocklist rule does (service/early_warning.py).
    """

    def __init__(
        self,
        authenticator: Authenticator,
        queue: EventQueue,
        store_hash: str | None,
        max_body_bytes: int,
        body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
        metrics: CallbackMetrics | None = None,
        early_warning: BlocklistRisk | None = None,
    ):
        self.authenticator = authenticator
        self.queue = queue
        self.store_hash = store_hash
        self.max_body_bytes = max_body_bytes
        self.body_deadlines = Deadlines(body_timeout_seconds)
        self.metrics = metrics if metrics is not None else CallbackMetrics(CollectorRegistry())
        self.early_warning = (
            early_warning if early_warning is not None else BlocklistRisk(CollectorRegistry())
        )
        read = {"content-type", "content-length", *authenticator.header_names}
        self._wanted_headers = {name.encode("latin-1"): name for name in read}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one callback as an ASGI app; every outcome is logged and counted once."""
        started = time.perf_counter()
        try:
            answer = await self.handle(scope, receive)
        except ClientDisconnect:
            # Nothing was persisted and nobody is left to answer; BigCommerce counts it as a failed delivery.
            log.info("callback.abandoned", reason="client disconnected before the body was read")
            self.metrics.count(ABANDONED)
            self.early_warning.abandoned()
            return
        if isinstance(answer, str):
            await send(ACCEPTED_START)
            await send(ACCEPTED_BODY)
            seconds = time.perf_counter() - started
            self.metrics.acknowledged(answer, seconds)
            self.early_warning.answered(True, seconds)
        else:
            await answer(scope, receive, send)
            if answer.status_code not in UNPROVEN_SENDER_STATUSES:
                self.early_warning.answered(False, 0.0)

    async def handle(self, scope: Scope, receive: Receive) -> JSONResponse | str:
        """Verify, validate, dedup and persist one callback: `accepted` or `duplicate` when it gets a 200,
        else the answer to send (already counted)."""
        too_large = headers_too_large(scope)
        if too_large is not None:
            return self._reject(431, "headers_too_large", too_large, close=True)
        headers = header_map(scope, self._wanted_headers)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            return self._reject(415, "unsupported_media_type", "Content-Type must be application/json")
        task = asyncio.current_task()
        assert task is not None  # an ASGI app always runs inside a task
        self.body_deadlines.guard(task)
        try:
            body = await read_limited(receive, headers, self.max_body_bytes)
        except BodyTooLarge:
            return self._reject(413, "body_too_large", f"body is larger than {self.max_body_bytes} bytes")
        except asyncio.CancelledError:
            if not self.body_deadlines.expired(task):
                raise
            timeout = self.body_deadlines.timeout_seconds
            return self._reject(408, "body_timeout", f"body did not arrive within {timeout:g} s", close=True)
        finally:
            self.body_deadlines.release(task)
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
            installed_store = envelope.store_hash if self.store_hash is None else ""
            enqueued = await self.queue.persist_once(callback, installed_store)
        except StoreNotInstalled:
            # Authentic (signed with the app's secret) but from a store without the app: a retry from before
            # an uninstall, whose hooks BigCommerce deletes. 4xx: BigCommerce retries it, then gives up.
            return self._reject(
                403,
                "store_not_installed",
                f"store {envelope.store_hash} does not have the app installed",
                webhook_id=webhook_id,
                store=envelope.store_hash,
            )
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
            self.metrics.count(UNAVAILABLE)
            return response
        log.info(
            "callback.enqueued" if enqueued else "callback.duplicate",
            event_id=callback["event_id"],
            webhook_id=webhook_id,
            scope=envelope.scope,
            store=envelope.store_hash,
        )
        return ACCEPTED if enqueued else DUPLICATE

    def _reject(
        self,
        status_code: int,
        code: str,
        message: str,
        webhook_id: str | None = None,
        close: bool = False,
        store: str | None = None,
    ) -> JSONResponse:
        log.warning(
            "callback.rejected",
            status=status_code,
            reason=code,
            webhook_id=webhook_id,
            store=store or self.store_hash,
        )
        self.metrics.count(code)
        response = rejection(status_code, code, message)
        if close:
            # The rest of the request was not read: the connection cannot carry another one.
            response.headers["Connection"] = "close"
        return response
