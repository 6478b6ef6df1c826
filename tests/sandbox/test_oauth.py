"""The sandbox plays BigCommerce's side of single-click app OAuth: the token endpoint, and the install, load,
uninstall and remove_user callbacks it sends an app (played here by a small app of the test's own)."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from service.sandbox.app import SandboxConfig, create_sandbox_app
from service.sandbox.oauth import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_CLIENT_SECRET, JWT_LIFETIME_SECONDS
from tests.servers import ThreadedUvicorn

BCWEBHOOKS = Path(sys.executable).parent / "bcwebhooks"
SCOPES = "store_v2_orders_read_only store_v2_information"


@dataclass
class App:
    """An app as a developer writes one: exchanges the code on /auth, records every callback it gets."""

    sandbox: str = ""
    calls: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def starlette(self) -> Starlette:
        async def auth(request: Request) -> Response:
            self._record(request)
            q = request.query_params
            fields = {
                "client_id": DEFAULT_APP_CLIENT_ID,
                "client_secret": DEFAULT_APP_CLIENT_SECRET,
                "code": q["code"],
                "scope": q["scope"],
                "grant_type": "authorization_code",
                "redirect_uri": str(request.url).split("?")[0],
                "context": q["context"],
            }
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{self.sandbox}/oauth2/token", json=fields)
            if answer.status_code != 200:
                return JSONResponse(answer.json(), status_code=401)
            with self.lock:
                self.tokens[answer.json()["context"]] = answer.json()
            return HTMLResponse("<p>installed</p>")

        async def other(request: Request) -> Response:
            self._record(request)
            return Response(status_code=200)

        return Starlette(
            routes=[Route("/auth", auth), *(Route(p, other) for p in ("/load", "/uninstall", "/remove_user"))]
        )

    def _record(self, request: Request) -> None:
        with self.lock:
            self.calls.append((request.url.path, dict(request.query_params), dict(request.headers)))

    def last(self, path: str) -> dict[str, str]:
        with self.lock:
            return next(query for p, query, _ in reversed(self.calls) if p == path)


@pytest.fixture
def stack() -> Iterator[tuple[str, str, App]]:
    """A three-store sandbox and an app: (sandbox URL, app URL, app)."""
    app = App()
    sandbox = create_sandbox_app(SandboxConfig(stores=3, allow_http=True))
    with ThreadedUvicorn(sandbox) as bc, ThreadedUvicorn(app.starlette()) as served:
        app.sandbox = bc.base_url
        yield bc.base_url, served.base_url, app


def control(sandbox: str, action: str, store: str, app_url: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{sandbox}/_sandbox/app/{action}",
        params={"store": store},
        json={"app_url": app_url, **extra},
        timeout=30,
    )


def install(sandbox: str, store: str, app_url: str, **extra: Any) -> dict[str, Any]:
    response = control(sandbox, "install", store, app_url, **extra)
    assert response.status_code == 200, response.text
    return dict(response.json())


def decode(token: str, secret: str = DEFAULT_APP_CLIENT_SECRET) -> dict[str, Any]:
    """Verify a signed_payload_jwt as BIGCOMMERCE.md 8.4 says an app must."""
    return dict(
        jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=DEFAULT_APP_CLIENT_ID,
            issuer="bc",
            options={"require": ["exp", "nbf", "iat", "aud", "iss", "sub", "jti"]},
        )
    )


def test_install_sends_the_auth_callback_and_the_exchanged_token_works_on_that_store_only(
    stack: tuple[str, str, App],
) -> None:
    sandbox, app_url, app = stack

    outcome = install(sandbox, "sandbox2", app_url, scopes=SCOPES.split())

    query = app.last("/auth")
    assert (query["context"], query["scope"]) == ("stores/sandbox2", SCOPES)
    assert query["code"] and query["account_uuid"]
    assert app.calls[0][2]["referer"] == "https://login.bigcommerce.com/"
    assert (outcome["status"], outcome["exchanged"], outcome["installed"]) == (200, True, True)
    granted = app.tokens["stores/sandbox2"]
    assert granted["scope"] == SCOPES
    assert granted["owner"]["email"] == granted["user"]["email"] == "owner@sandbox2.example.com"
    assert set(granted) >= {"access_token", "user", "owner", "context", "account_uuid"}
    token = {"X-Auth-Token": granted["access_token"]}
    assert httpx.get(f"{sandbox}/stores/sandbox2/v2/orders/101", headers=token).status_code == 200
    assert httpx.get(f"{sandbox}/stores/sandbox2/v3/catalog/products", headers=token).status_code == 403
    assert httpx.get(f"{sandbox}/stores/sandbox/v2/orders/101", headers=token).status_code == 401
    stores = {s["store_hash"]: s["apps"] for s in httpx.get(f"{sandbox}/_sandbox/stores").json()["stores"]}
    assert [a["client_id"] for a in stores["sandbox2"]] == [DEFAULT_APP_CLIENT_ID]
    assert stores["sandbox"] == stores["sandbox3"] == []


def test_each_store_gets_its_own_token_and_a_reinstall_replaces_the_old_one(
    stack: tuple[str, str, App],
) -> None:
    sandbox, app_url, app = stack
    for store in ("sandbox", "sandbox2", "sandbox3"):
        install(sandbox, store, app_url)
    tokens = {context: answer["access_token"] for context, answer in app.tokens.items()}
    assert len(set(tokens.values())) == 3

    install(sandbox, "sandbox3", app_url)

    new = app.tokens["stores/sandbox3"]["access_token"]
    assert new != tokens["stores/sandbox3"]
    old_status = httpx.get(
        f"{sandbox}/stores/sandbox3/v2/store", headers={"X-Auth-Token": tokens["stores/sandbox3"]}
    ).status_code
    assert old_status == 401
    assert httpx.get(f"{sandbox}/stores/sandbox3/v2/store", headers={"X-Auth-Token": new}).status_code == 200


def test_load_and_remove_user_send_jwts_that_verify_with_the_apps_secret_and_carry_the_claims(
    stack: tuple[str, str, App],
) -> None:
    sandbox, app_url, app = stack
    install(sandbox, "sandbox3", app_url)

    loaded = control(sandbox, "load", "sandbox3", app_url)
    again = control(sandbox, "load", "sandbox3", app_url, user={"id": 77, "email": "clerk@example.com"})
    removed = control(
        sandbox, "remove_user", "sandbox3", app_url, user={"id": 77, "email": "clerk@example.com"}
    )

    assert [r.json()["status"] for r in (loaded, again, removed)] == [200, 200, 200]
    claims = decode(app.last("/load")["signed_payload_jwt"])
    assert claims["sub"] == "stores/sandbox3"
    assert claims["user"] == {"id": 77, "email": "clerk@example.com", "locale": "en-US"}
    assert claims["owner"] == {"id": 1002, "email": "owner@sandbox3.example.com"}
    assert claims["exp"] - claims["nbf"] == JWT_LIFETIME_SECONDS
    assert (claims["url"], claims["channel_id"]) == ("/", None)
    uuid.UUID(claims["jti"])
    first = decode(loaded.json()["signed_payload_jwt"])
    assert first["user"]["id"] == 1002 and first["jti"] != claims["jti"]
    assert decode(app.last("/remove_user")["signed_payload_jwt"])["user"]["id"] == 77
    assert not {"store_hash", "context", "operation", "timestamp"} & set(claims)
    users = httpx.get(f"{sandbox}/_sandbox/stores").json()["stores"][2]["apps"][0]["users"]
    assert users == [1002]


def test_uninstall_revokes_the_token_and_deletes_the_apps_hooks_on_that_store_only(
    stack: tuple[str, str, App],
) -> None:
    sandbox, app_url, app = stack
    for store in ("sandbox", "sandbox2"):
        install(sandbox, store, app_url)
    tokens = {c.removeprefix("stores/"): {"X-Auth-Token": a["access_token"]} for c, a in app.tokens.items()}
    body = {"scope": "store/order/*", "destination": f"{app_url}/webhooks", "is_active": True}
    for store in ("sandbox", "sandbox2"):
        assert httpx.post(f"{sandbox}/stores/{store}/v3/hooks", headers=tokens[store], json=body).is_success
    theirs = {"X-Auth-Token": "sandbox-token-sandbox2"}
    assert httpx.post(f"{sandbox}/stores/sandbox2/v3/hooks", headers=theirs, json=body).is_success

    outcome = control(sandbox, "uninstall", "sandbox2", app_url)

    assert outcome.json()["status"] == 200 and outcome.json()["installed"] is False
    assert decode(app.last("/uninstall")["signed_payload_jwt"])["sub"] == "stores/sandbox2"
    assert httpx.get(f"{sandbox}/stores/sandbox2/v3/hooks", headers=tokens["sandbox2"]).status_code == 401
    assert len(httpx.get(f"{sandbox}/stores/sandbox2/v3/hooks", headers=theirs).json()["data"]) == 1
    assert len(httpx.get(f"{sandbox}/stores/sandbox/v3/hooks", headers=tokens["sandbox"]).json()["data"]) == 1
    assert control(sandbox, "load", "sandbox2", app_url).status_code == 409


@pytest.mark.parametrize(
    ("forge", "refusal"),
    [
        ("secret", jwt.InvalidSignatureError),
        ("expired", jwt.ExpiredSignatureError),
        ("not_yet_valid", jwt.ImmatureSignatureError),
        ("audience", jwt.InvalidAudienceError),
        ("issuer", jwt.InvalidIssuerError),
        ("unsigned", jwt.InvalidAlgorithmError),
    ],
)
def test_forged_jwts_fail_verification_and_change_nothing(
    stack: tuple[str, str, App], forge: str, refusal: type[Exception]
) -> None:
    sandbox, app_url, app = stack
    install(sandbox, "sandbox", app_url)
    token = {"X-Auth-Token": app.tokens["stores/sandbox"]["access_token"]}

    outcome = control(sandbox, "uninstall", "sandbox", app_url, forge=forge)

    assert outcome.status_code == 200 and outcome.json()["installed"] is True
    with pytest.raises(refusal):
        decode(app.last("/uninstall")["signed_payload_jwt"])
    assert httpx.get(f"{sandbox}/stores/sandbox/v2/store", headers=token).status_code == 200


def test_a_forged_code_is_refused_by_the_token_endpoint(stack: tuple[str, str, App]) -> None:
    sandbox, app_url, app = stack

    outcome = install(sandbox, "sandbox", app_url, forge="code")

    assert (outcome["status"], outcome["exchanged"], outcome["installed"]) == (401, False, False)
    assert app.tokens == {}


@pytest.fixture
def bigcommerce() -> Iterator[TestClient]:
    with TestClient(create_sandbox_app(SandboxConfig(stores=2))) as client:
        yield client


def token_request(client: TestClient, redirect_uri: str = "https://app.example.com/auth") -> dict[str, str]:
    directory = client.app.state.apps  # type: ignore[attr-defined]
    app = directory.apps[DEFAULT_APP_CLIENT_ID]
    grant = directory.issue_code(app, "sandbox2", redirect_uri, directory.owner("sandbox2"))
    return {
        "client_id": DEFAULT_APP_CLIENT_ID,
        "client_secret": DEFAULT_APP_CLIENT_SECRET,
        "code": grant.code,
        "scope": " ".join(grant.scopes),
        "grant_type": "authorization_code",
        "redirect_uri": redirect_uri,
        "context": "stores/sandbox2",
    }


def test_the_token_endpoint_exchanges_a_good_code_once(bigcommerce: TestClient) -> None:
    fields = token_request(bigcommerce)

    first = bigcommerce.post("/oauth2/token", json=fields)
    second = bigcommerce.post("/oauth2/token", json=fields)

    assert first.status_code == 200
    assert first.json()["context"] == "stores/sandbox2"
    assert (second.status_code, second.json()["error"]) == (400, "invalid_grant")


def test_the_token_endpoint_takes_form_urlencoded_bodies_too(bigcommerce: TestClient) -> None:
    answer = bigcommerce.post("/oauth2/token", data=token_request(bigcommerce))

    assert answer.status_code == 200 and answer.json()["access_token"]


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"code": "never-issued"}, 400, "invalid_grant"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "another-app"}, 401, "invalid_client"),
        ({"redirect_uri": "https://elsewhere.example.com/auth"}, 400, "invalid_request"),
        ({"context": "stores/sandbox"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"scope": "store_v2_orders"}, 400, "invalid_scope"),
        ({"code": ""}, 400, "invalid_request"),
    ],
)
def test_the_token_endpoint_refuses_what_bigcommerce_refuses(
    bigcommerce: TestClient, change: dict[str, str], status: int, error: str
) -> None:
    answer = bigcommerce.post("/oauth2/token", json={**token_request(bigcommerce), **change})

    assert (answer.status_code, answer.json()["error"]) == (status, error)
    assert bigcommerce.get("/_sandbox/stores").json()["stores"][1]["apps"] == []


def test_a_body_that_does_not_match_its_content_type_gets_406(bigcommerce: TestClient) -> None:
    answer = bigcommerce.post(
        "/oauth2/token",
        content=b"client_id=x",
        headers={"content-type": "application/json"},
    )

    assert (answer.status_code, answer.json()["error"]) == (406, "Invalid format.")


def test_the_cli_installs_and_triggers_on_a_named_store(stack: tuple[str, str, App]) -> None:
    sandbox, app_url, app = stack
    installed = subprocess.run(
        [str(BCWEBHOOKS), "sandbox", "app", "install", "--store", "sandbox3", "--app-url", app_url,
         "--sandbox", sandbox],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    forged = subprocess.run(
        [str(BCWEBHOOKS), "sandbox", "app", "uninstall", "--store", "sandbox3", "--app-url", app_url,
         "--forge", "expired", "--sandbox", sandbox],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    triggered = subprocess.run(
        [str(BCWEBHOOKS), "trigger", "store/customer/created", "--store", "sandbox3", "--sandbox", sandbox],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert installed.returncode == 0, installed.stderr
    assert "installed=True" in installed.stdout
    assert "stores/sandbox3" in app.tokens
    assert forged.returncode == 0 and "/uninstall: 200" in forged.stdout
    with pytest.raises(jwt.ExpiredSignatureError):
        decode(app.last("/uninstall")["signed_payload_jwt"])
    assert triggered.returncode == 0, triggered.stderr
    created = httpx.get(f"{sandbox}/_sandbox/requests?store=sandbox3").json()
    assert created == {"requests": []}  # trigger changes the store through its control, not its API
    customers = httpx.get(
        f"{sandbox}/stores/sandbox3/v3/customers?limit=250",
        headers={"X-Auth-Token": "sandbox-token-sandbox3"},
    ).json()["meta"]["pagination"]["total"]
    assert customers == 41


def test_later_callbacks_go_under_the_auth_callbacks_base_when_no_url_is_given(
    stack: tuple[str, str, App],
) -> None:
    sandbox, app_url, app = stack
    install(sandbox, "sandbox2", "", callback_url=f"{app_url}/auth")

    loaded = httpx.post(f"{sandbox}/_sandbox/app/load", params={"store": "sandbox2"}, json={}, timeout=30)

    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["callback"] == f"{app_url}/load"
    assert decode(app.last("/load")["signed_payload_jwt"])["sub"] == "stores/sandbox2"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1]", b'{"user": {"id": "x"}}', b'{"scopes": "store_v2_orders"}', b'{"forge": "nope"}'],
)
def test_a_malformed_control_request_gets_422(bigcommerce: TestClient, body: bytes) -> None:
    answer = bigcommerce.post("/_sandbox/app/load?store=sandbox2", content=body)

    assert answer.status_code == 422 and answer.json()["error"]
