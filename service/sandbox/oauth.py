"""BigCommerce's side of single-click app OAuth: the token endpoint, and a control that installs, loads and
uninstalls an app on a store (or removes a user) by calling the app's callbacks as BigCommerce does.

The facts followed are BIGCOMMERCE.md section 8: the auth callback is a GET with `code`, `scope`, `context`
and `account_uuid`; the app POSTs them to /oauth2/token with its client id and secret and the registered
`redirect_uri`; `load`, `uninstall` and `remove_user` are GETs with `signed_payload_jwt`, HS256 with the
app's client secret, `aud` = client id, `iss` = "bc", `sub` = "stores/{hash}", valid 24 h.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.sandbox.access import ALL_SCOPES, ApiAccount
from service.sandbox.http import SandboxState

DEFAULT_APP_CLIENT_ID = "sandbox-app"
DEFAULT_APP_CLIENT_SECRET = "sandbox-app-client-secret-for-local-use"  # noqa: S105 (published, local-only)
ACCOUNT_UUID = "12345678-90ab-cdef-1234-567890abcdef"
LOGIN_REFERER = "https://login.bigcommerce.com/"
# How long a grant code may wait for its exchange (undocumented; codes are exchanged once, at once).
CODE_LIFETIME_SECONDS = 600.0
JWT_LIFETIME_SECONDS = 24 * 3600
CALLBACK_TIMEOUT_SECONDS = 30.0
# Each control's callback path under the app's URL (install calls the auth callback), as a profile lists them.
CALLBACK_PATHS = {
    "install": "/auth",
    "load": "/load",
    "uninstall": "/uninstall",
    "remove_user": "/remove_user",
}
# How a control may forge what it sends, so that apps can be tested against what they must refuse: a JWT
# signed with the wrong secret, expired, not yet valid, for another app or issuer, or unsigned; or, for
# install, a code BigCommerce never issued.
FORGERIES = ("secret", "expired", "not_yet_valid", "audience", "issuer", "unsigned")
INSTALL_FORGERIES = ("code",)
TOKEN_FIELDS = ("client_id", "client_secret", "code", "scope", "grant_type", "redirect_uri", "context")


@dataclass(frozen=True)
class AppProfile:
    """A registered app: its client id and secret and the scopes its profile requests."""

    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ALL_SCOPES


def default_apps() -> list[AppProfile]:
    """The app `dev --stores` installs: every scope, modify."""
    return [AppProfile(DEFAULT_APP_CLIENT_ID, DEFAULT_APP_CLIENT_SECRET)]


@dataclass
class Grant:
    """A code sent to an app's auth callback, waiting to be exchanged once for the store's token."""

    code: str
    client_id: str
    store_hash: str
    scopes: tuple[str, ...]
    redirect_uri: str
    user: dict[str, Any]
    issued_at: float


@dataclass
class Installation:
    """An app installed on a store: its token and scopes, and the users who have loaded it."""

    client_id: str
    store_hash: str
    token: str
    scopes: tuple[str, ...]
    users: dict[int, dict[str, Any]] = field(default_factory=dict)


class OAuthError(Exception):
    """A refused token request: its status and OAuth 2 `error` code, with a description."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


@dataclass
class AppDirectory:
    """The apps the sandbox knows, the codes it issued and where each app is installed.

    Parameters:
      apps: client id → registered app.
      states: store hash → that store's state (installing adds the app's token to its accounts).
      clock: seconds since the epoch (tests may pass their own).
    """

    apps: dict[str, AppProfile]
    states: dict[str, SandboxState]
    clock: Callable[[], float] = time.time
    codes: dict[str, Grant] = field(default_factory=dict)
    installs: dict[tuple[str, str], Installation] = field(default_factory=dict)
    # client id → the base of its callbacks, as last given (an app profile lists its callback URLs).
    callback_bases: dict[str, str] = field(default_factory=dict)

    def callback_url(
        self, client_id: str, action: str, app_url: str | None, callback_url: str | None
    ) -> str | None:
        """The URL an action calls: as given, else under the app's base URL (remembered for next time)."""
        if app_url:
            self.callback_bases[client_id] = app_url.rstrip("/")
        elif action == "install" and callback_url and callback_url.endswith(CALLBACK_PATHS["install"]):
            self.callback_bases[client_id] = callback_url.removesuffix(CALLBACK_PATHS["install"])
        base = self.callback_bases.get(client_id)
        return callback_url or (f"{base}{CALLBACK_PATHS[action]}" if base else None)

    def owner(self, store_hash: str) -> dict[str, Any]:
        """The store owner as the JWTs and the token response name them."""
        index = list(self.states).index(store_hash)
        return {"id": 1000 + index, "email": f"owner@{store_hash}.example.com"}

    def issue_code(self, app: AppProfile, store_hash: str, redirect_uri: str, user: dict[str, Any]) -> Grant:
        """A fresh code for the app on the store, bound to the auth callback URL it is sent to."""
        grant = Grant(
            secrets.token_urlsafe(12), app.client_id, store_hash, app.scopes, redirect_uri, user, self.clock()
        )
        self.codes[grant.code] = grant
        return grant

    def exchange(self, fields: dict[str, str]) -> dict[str, Any]:
        """Check a token request; on success install the app on the store and answer as BigCommerce does."""
        missing = [name for name in TOKEN_FIELDS if not fields.get(name)]
        if missing:
            raise OAuthError(400, "invalid_request", f"missing parameter(s): {', '.join(missing)}")
        if fields["grant_type"] != "authorization_code":
            raise OAuthError(400, "unsupported_grant_type", "grant_type must be authorization_code")
        app = self.apps.get(fields["client_id"])
        if app is None or not secrets.compare_digest(app.client_secret, fields["client_secret"]):
            raise OAuthError(401, "invalid_client", "Invalid client id or client secret")
        grant = self.codes.pop(fields["code"], None)
        if grant is None or grant.client_id != app.client_id:
            raise OAuthError(400, "invalid_grant", "The code is unknown, already used or not this app's")
        if self.clock() - grant.issued_at > CODE_LIFETIME_SECONDS:
            raise OAuthError(400, "invalid_grant", "The code has expired")
        if fields["redirect_uri"] != grant.redirect_uri:
            raise OAuthError(400, "invalid_request", "Parameter redirect_uri does not match registered URI")
        if fields["context"] != f"stores/{grant.store_hash}":
            raise OAuthError(400, "invalid_grant", "The context is not the store the code was issued for")
        if set(fields["scope"].split()) != set(grant.scopes):
            raise OAuthError(400, "invalid_scope", "The scope is not the one granted with the code")
        installation = self.install(grant)
        owner = self.owner(grant.store_hash)
        return {
            "access_token": installation.token,
            "scope": " ".join(grant.scopes),
            "user": _named(grant.user),
            "owner": _named(owner),
            "context": f"stores/{grant.store_hash}",
            "account_uuid": ACCOUNT_UUID,
        }

    def install(self, grant: Grant) -> Installation:
        """Create the store's API account for the app; a new token invalidates the one issued before."""
        state = self.states[grant.store_hash]
        previous = self.installs.get((grant.client_id, grant.store_hash))
        if previous is not None:
            state.accounts.pop(previous.token, None)
        app = self.apps[grant.client_id]
        account = ApiAccount(secrets.token_hex(16), app.client_id, app.client_secret, frozenset(grant.scopes))
        state.accounts[account.token] = account
        state.deliverer.accounts[app.client_id] = account  # its client secret signs the app's hooks
        installation = Installation(app.client_id, grant.store_hash, account.token, grant.scopes)
        installation.users[int(grant.user["id"])] = grant.user
        self.installs[(app.client_id, grant.store_hash)] = installation
        return installation

    def uninstall(self, client_id: str, store_hash: str) -> Installation | None:
        """Revoke the app's token on the store and delete its hooks there, as BigCommerce does."""
        installation = self.installs.pop((client_id, store_hash), None)
        if installation is None:
            return None
        state = self.states[store_hash]
        state.accounts.pop(installation.token, None)
        for hook in state.hooks.visible(client_id):
            state.hooks.delete(client_id, hook.id)
            hook.is_active, hook.status = False, "deleted"  # pending retries of a deleted hook stop
        return installation

    def signed_payload(
        self, app: AppProfile, store_hash: str, user: dict[str, Any], forge: str | None
    ) -> str:
        """The `signed_payload_jwt` of a load, uninstall or remove_user callback, forged when asked."""
        now = int(self.clock())
        claims: dict[str, Any] = {
            "aud": app.client_id,
            "iss": "bc",
            "iat": now,
            "nbf": now,
            "exp": now + JWT_LIFETIME_SECONDS,
            "jti": str(uuid.uuid4()),
            "sub": f"stores/{store_hash}",
            "user": {"id": user["id"], "email": user["email"], "locale": user.get("locale", "en-US")},
            "owner": self.owner(store_hash),
            "url": "/",
            "channel_id": None,
        }
        key = app.client_secret
        if forge == "secret":
            key = f"not-{app.client_secret}"
        elif forge == "expired":
            claims.update(iat=now - 2 * JWT_LIFETIME_SECONDS, nbf=now - 2 * JWT_LIFETIME_SECONDS)
            claims["exp"] = now - JWT_LIFETIME_SECONDS
        elif forge == "not_yet_valid":
            claims.update(iat=now + 3600, nbf=now + 3600, exp=now + 3600 + JWT_LIFETIME_SECONDS)
        elif forge == "audience":
            claims["aud"] = f"not-{app.client_id}"
        elif forge == "issuer":
            claims["iss"] = "not-bc"
        elif forge == "unsigned":
            return jwt.encode(claims, "", algorithm="none")
        return jwt.encode(claims, key, algorithm="HS256")


def _named(person: dict[str, Any]) -> dict[str, Any]:
    return {"id": person["id"], "username": person["email"], "email": person["email"]}


async def token_request_fields(request: Request) -> dict[str, str]:
    """The token request's fields from a JSON or form-urlencoded body; anything else is 406."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    try:
        if content_type == "application/json":
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
            return {str(k): str(v) for k, v in body.items() if v is not None}
        if content_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        pass
    raise OAuthError(406, "Invalid format.", "the body must be JSON or form-urlencoded, as declared")


def oauth_routes(directory: AppDirectory) -> list[Route]:
    """POST /oauth2/token, which login.bigcommerce.com serves."""

    async def token(request: Request) -> Response:
        try:
            return JSONResponse(directory.exchange(await token_request_fields(request)))
        except OAuthError as error:
            body = {"error": error.error, "error_description": error.description}
            return JSONResponse(body, status_code=error.status)

    return [Route("/oauth2/token", token, methods=["POST"])]


def app_control_routes(directory: AppDirectory, state: SandboxState) -> list[Route]:
    """/_sandbox/app/{install,load,uninstall,remove_user}: act as BigCommerce on this store."""
    store_hash = state.store.store_hash

    async def control(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in CALLBACK_PATHS:
            return _refused(404, f"no app action {action!r}; one of {', '.join(CALLBACK_PATHS)}")
        body = await _control_body(request)
        if isinstance(body, str):
            return _refused(422, body)
        app = directory.apps.get(str(body.get("client_id") or DEFAULT_APP_CLIENT_ID))
        forge = body.get("forge")
        forgeries = INSTALL_FORGERIES if action == "install" else FORGERIES
        if app is None or (forge is not None and forge not in forgeries):
            return _refused(422, f"unknown client_id, or forge is not one of {', '.join(forgeries)}")
        url = directory.callback_url(app.client_id, action, body.get("app_url"), body.get("callback_url"))
        if url is None:
            return _refused(422, "need app_url (the base of the app's callbacks) or callback_url")
        user = {**directory.owner(store_hash), **(body.get("user") or {})}
        if action == "install":
            app = replace(app, scopes=tuple(body.get("scopes") or app.scopes))
            return await _install(directory, app, store_hash, url, user, forge == "code")
        installed = (app.client_id, store_hash) in directory.installs
        if not installed and forge is None:
            return _refused(409, f"app {app.client_id} is not installed on store {store_hash}")
        payload = directory.signed_payload(app, store_hash, user, forge)
        if action == "uninstall" and forge is None:
            directory.uninstall(app.client_id, store_hash)
        response = await _call(url, {"signed_payload_jwt": payload})
        installation = directory.installs.get((app.client_id, store_hash))
        if installation is not None and forge is None:
            if action == "load":
                installation.users[int(user["id"])] = user
            elif action == "remove_user":
                installation.users.pop(int(user["id"]), None)
        return _outcome(url, response, signed_payload_jwt=payload, installed=installation is not None)

    return [Route("/_sandbox/app/{action}", control, methods=["POST"])]


async def _install(
    directory: AppDirectory, app: AppProfile, store_hash: str, url: str, user: dict[str, Any], forged: bool
) -> Response:
    code = secrets.token_urlsafe(12) if forged else directory.issue_code(app, store_hash, url, user).code
    query = {
        "code": code,
        "scope": " ".join(app.scopes),
        "context": f"stores/{store_hash}",
        "account_uuid": ACCOUNT_UUID,
    }
    response = await _call(url, query, headers={"Referer": LOGIN_REFERER})
    installation = directory.installs.get((app.client_id, store_hash))
    exchanged = code not in directory.codes and not forged
    return _outcome(url, response, code=code, exchanged=exchanged, installed=installation is not None)


async def _call(
    url: str, params: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response | str:
    """GET the app's callback as the browser or BigCommerce's servers would; the error's name if it fails."""
    try:
        async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_SECONDS) as client:
            return await client.get(url, params=params, headers=headers)
    except httpx.HTTPError as error:
        return type(error).__name__


def _outcome(url: str, response: httpx.Response | str, **facts: Any) -> Response:
    if isinstance(response, str):
        return JSONResponse({"callback": url, "error": response, **facts}, status_code=502)
    return JSONResponse(
        {"callback": url, "status": response.status_code, "body": response.text[:500], **facts}
    )


async def _control_body(request: Request) -> dict[str, Any] | str:
    """The control's JSON body, or what is wrong with it."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return "the body must be JSON"
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    user, scopes = body.get("user"), body.get("scopes")
    if user is not None and not (
        isinstance(user, dict)
        and isinstance(user.get("id", 0), int)
        and isinstance(user.get("email", ""), str)
    ):
        return "user must be {id: integer, email: string}"
    if scopes is not None and not (isinstance(scopes, list) and all(isinstance(x, str) for x in scopes)):
        return "scopes must be a list of scope names"
    return body


def _refused(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)
