"""BigCommerce's app callbacks (app mode): auth (code → the store's token), load, uninstall, remove_user.

- `GET /oauth/auth`: the merchant's browser arrives with a grant code; we exchange it at the login service's
  token endpoint (BIGCOMMERCE_LOGIN_URL, BigCommerce's by default, the sandbox in tests), record the store
  with its token encrypted (service/stores.py) and persist an `installed` app event: a worker applies
  hooks.toml to the store in the background and records the outcome on the store. The answer is HTML for
  the control panel's iframe.
- `GET /oauth/load|uninstall|remove_user?signed_payload_jwt=…`: a JWT signed HS256 with the app's client
  secret, `aud` = client id, `iss` = "bc", `sub` = stores/{hash}, checked for expiry with a small leeway.
  A forged, expired or otherwise invalid JWT gets 401 and changes nothing. `uninstall` and `remove_user`
  also refuse a JWT whose `jti` was already used (a JWT stays valid for 24 h; a replayed uninstall would
  otherwise remove a store that installed the app again), and an uninstall JWT issued before the store's
  current installation is acknowledged and ignored (a late delivery). `uninstall` forgets the token at once,
  so the receiver refuses its callbacks and workers fetch nothing more for it, and persists an
  `uninstalled` app event, for which a worker dead-letters the store's pending events with the reason
  `uninstalled`.

The endpoints are module-level functions; what they share lives in `AppCallbacks` on `app.state.oauth`.
Tokens and secrets are never logged.
"""

from __future__ import annotations

import html
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import jwt
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from service.events import APP_INSTALLED_SCOPE, APP_UNINSTALLED_SCOPE, PersistedCallback
from service.queue import EventQueue, QueueUnavailable
from service.settings import STORE_HASH_PATTERN
from service.stores import Stores

AUTH_PATH = "/oauth/auth"
LOAD_PATH = "/oauth/load"
UNINSTALL_PATH = "/oauth/uninstall"
REMOVE_USER_PATH = "/oauth/remove_user"
TOKEN_PATH = "/oauth2/token"  # noqa: S105  # a URL path, not a secret
JWT_ISSUER = "bc"
JWT_ALGORITHMS = ["HS256"]  # anything else (none, RS256 with the secret as a key...) is refused
# BigCommerce's own example has nbf 5 s before iat; clocks drift a little more than that.
JWT_LEEWAY_SECONDS = 30
JTI_PREFIX = "bcwebhooks:oauth:jti:"
EXCHANGE_TIMEOUT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 30

log = structlog.get_logger("bcwebhooks.oauth")
T = TypeVar("T")


class OAuthError(Exception):
    """An app callback cannot be honoured; `status_code` and `code` are what the caller is answered."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AppCallback:
    """The verified claims of a load/uninstall/remove_user JWT that we use."""

    store_hash: str
    user: dict[str, Any]
    owner: dict[str, Any]
    jti: str | None
    expires_at: int
    issued_at: int | None = None


@dataclass(frozen=True)
class Grant:
    """What the token endpoint answered for one install: the store, its token (never shown) and scopes."""

    store_hash: str
    access_token: str = field(repr=False)
    scope: str
    user: dict[str, Any]
    owner: dict[str, Any]


def verify_callback_jwt(
    token: str, client_id: str, client_secret: str, leeway_seconds: int = JWT_LEEWAY_SECONDS
) -> AppCallback:
    """Verify a `signed_payload_jwt` and return its claims; OAuthError (401) for anything not genuine."""
    try:
        claims = jwt.decode(
            token,
            client_secret,
            algorithms=JWT_ALGORITHMS,
            audience=client_id,
            issuer=JWT_ISSUER,
            leeway=leeway_seconds,
            options={"require": ["aud", "iss", "exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise OAuthError(401, "jwt_expired", "signed_payload_jwt has expired") from None
    except jwt.InvalidAudienceError:
        raise OAuthError(401, "jwt_wrong_audience", "signed_payload_jwt is for another app") from None
    except jwt.InvalidIssuerError:
        raise OAuthError(
            401, "jwt_wrong_issuer", "signed_payload_jwt was not issued by BigCommerce"
        ) from None
    except jwt.InvalidSignatureError:
        raise OAuthError(401, "jwt_bad_signature", "signed_payload_jwt is not signed by the app") from None
    except jwt.PyJWTError as error:
        raise OAuthError(401, "jwt_invalid", f"signed_payload_jwt is not valid: {error}") from None
    store_hash = store_of(claims.get("sub"))
    if store_hash is None:
        raise OAuthError(401, "jwt_invalid", "signed_payload_jwt: sub must be stores/<store_hash>")
    jti, user, owner, iat = claims.get("jti"), claims.get("user"), claims.get("owner"), claims.get("iat")
    return AppCallback(
        store_hash=store_hash,
        user=user if isinstance(user, dict) else {},
        owner=owner if isinstance(owner, dict) else {},
        jti=jti if isinstance(jti, str) and jti else None,
        expires_at=int(claims["exp"]),
        issued_at=int(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else None,
    )


def issued_before(callback: AppCallback, installed_at_ms: int | None) -> bool:
    """Whether the JWT was issued before an installation made at `installed_at_ms` (allowing clock skew)."""
    if callback.issued_at is None or installed_at_ms is None:
        return False
    return (callback.issued_at + JWT_LEEWAY_SECONDS) * 1000 < installed_at_ms


def store_of(context: object) -> str | None:
    """The hash in `stores/{hash}`, or None when `context` is not that shape."""
    if not isinstance(context, str) or not context.startswith("stores/"):
        return None
    store_hash = context[7:]
    return store_hash if STORE_HASH_PATTERN.match(store_hash) else None


@dataclass
class AppCallbacks:
    """What the app callbacks share: the app's credentials, the stores, the queue, the HTTP client.

    Parameters:
      client_id, client_secret: the app's credentials (JWT audience and key; token exchange).
      login_url: base URL of the token endpoint (BigCommerce's login service, or the sandbox).
      redirect_uri: the auth callback URL registered in the app profile (sent with the exchange).
      stores: the installed stores.
      queue: where app events are persisted (the same path as callbacks: ledger, retries, dead letters).
      http: the client for the token endpoint.
    """

    client_id: str
    client_secret: str = field(repr=False)
    login_url: str
    redirect_uri: str
    stores: Stores
    queue: EventQueue
    http: httpx.AsyncClient

    async def exchange(self, code: str, scope: str, context: str) -> Grant:
        """Exchange a grant code for the store's token (once, at once: codes are single-use)."""
        body = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "code": code,
            "context": context,
            "scope": scope,
            "grant_type": "authorization_code",
            "redirect_uri": self.redirect_uri,
        }
        try:
            response = await self.http.post(
                self.login_url + TOKEN_PATH, json=body, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as error:
            raise OAuthError(503, "token_endpoint_unreachable", f"{type(error).__name__}") from None
        if response.status_code >= 500:
            raise OAuthError(503, "token_endpoint_failed", f"token endpoint answered {response.status_code}")
        if response.status_code != 200:
            raise OAuthError(
                400,
                "code_refused",
                f"token endpoint refused the code ({response.status_code}); install again",
            )
        return grant_from(response, context)

    async def persist_app_event(self, scope: str, store_hash: str, data: dict[str, Any]) -> None:
        """Persist an app event for the workers (raises OAuthError 503 when Redis did not take it)."""
        now = time.time_ns() // 1_000_000
        callback = PersistedCallback(
            event_id=f"app:{scope.rsplit('/', 1)[-1]}:{store_hash}:{now}:{uuid.uuid4().hex}",
            webhook_id=None,
            received_at_ms=now,
            envelope={"scope": scope, "producer": f"stores/{store_hash}", "data": data},
        )
        try:
            await self.queue.persist_once(callback)
        except QueueUnavailable:
            raise OAuthError(503, "unavailable", "could not record the change; retry later") from None

    async def first_use(self, callback: AppCallback) -> bool:
        """Remember the JWT's jti until it expires; False when it was already used (a replay)."""
        if callback.jti is None:
            return True
        client: aioredis.Redis = self.queue.client
        ttl = max(1, callback.expires_at + JWT_LEEWAY_SECONDS - int(time.time()))
        try:
            return bool(await client.set(JTI_PREFIX + callback.jti, 1, nx=True, ex=ttl))
        except (RedisError, OSError) as error:
            raise OAuthError(503, "unavailable", f"Redis: {type(error).__name__}; retry later") from None

    def verify(self, request: Request) -> AppCallback:
        """The verified JWT of a load/uninstall/remove_user request (OAuthError 401 otherwise)."""
        token = request.query_params.get("signed_payload_jwt", "")
        if not token:
            raise OAuthError(401, "jwt_missing", "signed_payload_jwt is required")
        return verify_callback_jwt(token, self.client_id, self.client_secret)


def grant_from(response: httpx.Response, context: str) -> Grant:
    """Read the token endpoint's answer; OAuthError 502 when it is not a token for the store asked about."""
    try:
        body = response.json()
    except ValueError:
        body = None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(token, str) or not token:
        raise OAuthError(502, "token_response_invalid", "token endpoint answered without an access_token")
    store_hash = store_of(body.get("context", context))
    if store_hash is None or body.get("context", context) != context:
        raise OAuthError(502, "token_response_invalid", "token endpoint answered for another store")
    return Grant(
        store_hash=store_hash,
        access_token=token,
        scope=str(body.get("scope", "")),
        user=body["user"] if isinstance(body.get("user"), dict) else {},
        owner=body["owner"] if isinstance(body.get("owner"), dict) else {},
    )


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run a (synchronous) Stores call off the event loop; Redis failing is OAuthError 503, ours."""
    try:
        return await run_in_threadpool(function, *args)
    except (RedisError, OSError) as error:
        raise OAuthError(503, "unavailable", f"Redis: {type(error).__name__}; retry later") from None


def _callbacks(request: Request) -> AppCallbacks:
    callbacks: AppCallbacks = request.app.state.oauth
    return callbacks


def _answer(error: OAuthError, endpoint: str, store: str | None = None) -> Response:
    log.warning("oauth.rejected", endpoint=endpoint, status=error.status_code, reason=error.code, store=store)
    response = JSONResponse({"error": error.code, "message": error.message}, status_code=error.status_code)
    if error.status_code == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def auth(request: Request) -> Response:
    """The install (or re-authorization) of the app on a store: exchange the code, record, apply hooks."""
    callbacks = _callbacks(request)
    params = request.query_params
    code, scope, context = params.get("code", ""), params.get("scope", ""), params.get("context", "")
    try:
        if not code or store_of(context) is None:
            raise OAuthError(400, "invalid_auth_request", "code and context=stores/<store_hash> are required")
        grant = await callbacks.exchange(code, scope, context)
        installed_at = await in_thread(
            callbacks.stores.record_install, grant.store_hash, grant.access_token, grant.scope, grant.user,
            grant.owner,
        )  # fmt: skip
        await callbacks.persist_app_event(
            APP_INSTALLED_SCOPE, grant.store_hash, {"installed_at_ms": installed_at}
        )
    except OAuthError as error:
        return _answer(error, "auth", store_of(context))
    log.info("store.installed", store=grant.store_hash, scope=grant.scope)
    store = html.escape(grant.store_hash)
    return HTMLResponse(
        f"<!doctype html><title>bcwebhooks</title><h1>Installed</h1><p>bcwebhooks now receives the "
        f"webhooks of store {store}; its hooks are being registered.</p>"
    )


async def load(request: Request) -> Response:
    """The merchant opened the app: show the store's state; provision the user (multi-user apps)."""
    callbacks = _callbacks(request)
    try:
        callback = callbacks.verify(request)
        record = await in_thread(callbacks.stores.get, callback.store_hash)
        if record is not None and record.installed and isinstance(callback.user.get("id"), int):
            await in_thread(callbacks.stores.add_user, callback.store_hash, callback.user["id"])
    except OAuthError as error:
        return _answer(error, "load")
    log.info("store.loaded", store=callback.store_hash, user=callback.user.get("id"))
    store = html.escape(callback.store_hash)
    if record is None or not record.installed:
        state = "is not installed: install the app again"
    else:
        state = f"is installed; hooks: {html.escape(str(record.hooks.get('state', 'unknown')))}"
    return HTMLResponse(f"<!doctype html><title>bcwebhooks</title><p>Store {store} {state}.</p>")


async def uninstall(request: Request) -> Response:
    """The app was uninstalled: forget the token now, dead-letter the store's pending events (a worker)."""
    callbacks = _callbacks(request)
    try:
        callback = callbacks.verify(request)
        if not await callbacks.first_use(callback):
            raise OAuthError(401, "jwt_replayed", "this signed_payload_jwt was already used")
        record = await in_thread(callbacks.stores.get, callback.store_hash)
        if record is not None and issued_before(callback, record.installed_at_ms):
            # Issued before the current installation: delivered after the app was installed again.
            log.warning("store.uninstall_stale", store=callback.store_hash, issued_at=callback.issued_at)
            return Response(status_code=200)
        was_installed = await in_thread(callbacks.stores.uninstall, callback.store_hash)
        await callbacks.persist_app_event(APP_UNINSTALLED_SCOPE, callback.store_hash, {})
    except OAuthError as error:
        return _answer(error, "uninstall")
    log.info("store.uninstalled", store=callback.store_hash, was_installed=was_installed)
    return Response(status_code=200)


async def remove_user(request: Request) -> Response:
    """A user lost access to the app (multi-user apps); the store's token is unaffected."""
    callbacks = _callbacks(request)
    try:
        callback = callbacks.verify(request)
        if not await callbacks.first_use(callback):
            raise OAuthError(401, "jwt_replayed", "this signed_payload_jwt was already used")
        user_id = callback.user.get("id")
        removed = isinstance(user_id, int) and await in_thread(
            callbacks.stores.remove_user, callback.store_hash, user_id
        )
    except OAuthError as error:
        return _answer(error, "remove_user")
    log.info("store.user_removed", store=callback.store_hash, user=user_id, was_known=removed)
    return Response(status_code=200)


def oauth_routes() -> list[Route]:
    """The app callbacks' routes (GET only)."""
    return [
        Route(AUTH_PATH, auth, methods=["GET"]),
        Route(LOAD_PATH, load, methods=["GET"]),
        Route(UNINSTALL_PATH, uninstall, methods=["GET"]),
        Route(REMOVE_USER_PATH, remove_user, methods=["GET"]),
    ]
