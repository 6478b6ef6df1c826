"""App mode's BigCommerce callbacks: JWT verification, the code exchange, load, uninstall, remove_user."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import redis
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from service.app import create_app
from service.events import APP_INSTALLED_SCOPE, APP_UNINSTALLED_SCOPE
from service.oauth import OAuthError, verify_callback_jwt
from service.settings import load_settings
from service.stores import TokenCipher, store_key
from tests.helpers import (
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    APP_URL,
    ENCRYPTION_KEY,
    app_environ,
    app_jwt,
    queued_callbacks,
)

STORE = "g5cd38"
STORE_TOKEN = "store-token-never-logged-0123456789"


class TokenEndpoint:
    """BigCommerce's token endpoint, played in-process: `good` codes get a token, others are refused."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        body = json.loads(request.content)
        self.requests.append({"url": str(request.url), **body})
        if not body["code"].startswith("good"):
            return httpx.Response(400, json={"error": "invalid_grant"})
        return httpx.Response(
            200,
            json={
                "access_token": STORE_TOKEN,
                "scope": body["scope"],
                "user": {"id": 24654, "username": "m@example.com", "email": "m@example.com"},
                "owner": {"id": 12345, "username": "o@example.com", "email": "o@example.com"},
                "context": body["context"],
                "account_uuid": "12345678-90ab-cdef-1234-567890abcdef",
            },
        )


@pytest.fixture
def endpoint() -> TokenEndpoint:
    return TokenEndpoint()


@pytest.fixture
def app_client(redis_url: str, redis_client: redis.Redis, endpoint: TokenEndpoint) -> Iterator[TestClient]:
    app = create_app(load_settings(app_environ()), redis_url)
    with TestClient(app, raise_server_exceptions=False) as client:
        app.state.oauth.http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
        yield client


def install(client: TestClient, code: str = "good-code", store: str = STORE) -> httpx.Response:
    params = {"code": code, "scope": "store_v2_orders store_v2_products", "context": f"stores/{store}"}
    return client.get("/oauth/auth", params=params)


# --- JWT verification ---------------------------------------------------------------------------------


def test_a_jwt_signed_by_bigcommerce_for_the_app_is_verified() -> None:
    claims = verify_callback_jwt(app_jwt(STORE), APP_CLIENT_ID, APP_CLIENT_SECRET)

    assert claims.store_hash == STORE
    assert claims.user["id"] == 24654
    assert claims.owner["id"] == 12345


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (app_jwt(STORE, secret="not-the-app-secret-but-just-as-long-0123456789"), "jwt_bad_signature"),
        (app_jwt(STORE, expires_in=-3600), "jwt_expired"),
        (app_jwt(STORE, audience="another-app"), "jwt_wrong_audience"),
        (app_jwt(STORE, iss="someone"), "jwt_wrong_issuer"),
        (app_jwt(STORE, sub="users/1"), "jwt_invalid"),
        (app_jwt(STORE, sub="stores/Not A Hash"), "jwt_invalid"),
        ("not.a.jwt", "jwt_invalid"),
    ],
    ids=["forged", "expired", "wrong-audience", "wrong-issuer", "sub-not-a-store", "sub-bad-hash", "garbage"],
)
def test_a_jwt_that_is_not_genuine_is_refused(token: str, code: str) -> None:
    with pytest.raises(OAuthError) as caught:
        verify_callback_jwt(token, APP_CLIENT_ID, APP_CLIENT_SECRET)

    assert (caught.value.status_code, caught.value.code) == (401, code)


def test_a_jwt_with_another_algorithm_is_refused_even_when_keyed_by_the_secret() -> None:
    now = int(time.time())
    claims = {"aud": APP_CLIENT_ID, "iss": "bc", "exp": now + 60, "sub": f"stores/{STORE}"}
    token = jwt.encode(claims, APP_CLIENT_SECRET + "-padded-to-64-bytes-for-hs512" * 2, algorithm="HS512")
    unsigned = jwt.encode(claims, None, algorithm="none")

    for forged in (token, unsigned):
        with pytest.raises(OAuthError):
            verify_callback_jwt(forged, APP_CLIENT_ID, APP_CLIENT_SECRET)


def test_a_jwt_whose_nbf_is_a_little_ahead_of_the_clock_is_accepted() -> None:
    claims = verify_callback_jwt(app_jwt(STORE, nbf=int(time.time()) + 10), APP_CLIENT_ID, APP_CLIENT_SECRET)

    assert claims.store_hash == STORE


# --- auth: the install -------------------------------------------------------------------------------------


def test_install_exchanges_the_code_records_the_store_encrypted_and_queues_its_hooks(
    app_client: TestClient, endpoint: TokenEndpoint, redis_client: redis.Redis
) -> None:
    with capture_logs() as logs:
        response = install(app_client)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    [sent] = endpoint.requests
    assert sent["url"] == "https://login.bigcommerce.com/oauth2/token"
    assert sent["client_id"] == APP_CLIENT_ID and sent["client_secret"] == APP_CLIENT_SECRET
    assert sent["code"] == "good-code" and sent["grant_type"] == "authorization_code"
    assert sent["context"] == f"stores/{STORE}" and sent["redirect_uri"] == f"{APP_URL}/oauth/auth"
    stored = redis_client.hget(store_key(STORE), "token")
    assert stored is not None and STORE_TOKEN.encode() not in stored
    assert TokenCipher([ENCRYPTION_KEY]).decrypt(stored) == STORE_TOKEN
    assert redis_client.sismember("bcwebhooks:stores:installed", STORE)
    [job] = queued_callbacks(redis_client)
    assert job["envelope"]["scope"] == APP_INSTALLED_SCOPE
    assert job["envelope"]["producer"] == f"stores/{STORE}"
    assert STORE_TOKEN not in json.dumps(job)
    assert STORE_TOKEN not in repr(logs) and APP_CLIENT_SECRET not in repr(logs)


def test_a_refused_code_gets_400_and_records_nothing(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    response = install(app_client, code="already-used")

    assert response.status_code == 400
    assert response.json()["error"] == "code_refused"
    assert not redis_client.exists(store_key(STORE))
    assert queued_callbacks(redis_client) == []


def test_an_unreachable_token_endpoint_is_our_503(
    app_client: TestClient, endpoint: TokenEndpoint, redis_client: redis.Redis
) -> None:
    endpoint.down = True

    response = install(app_client)

    assert response.status_code == 503 and response.headers["retry-after"]
    assert not redis_client.exists(store_key(STORE))


@pytest.mark.parametrize(
    "params",
    [{"context": f"stores/{STORE}"}, {"code": "good", "context": "stores/NOT VALID"}, {"code": "good"}],
    ids=["no-code", "bad-context", "no-context"],
)
def test_an_auth_request_without_a_code_or_store_is_400(
    app_client: TestClient, endpoint: TokenEndpoint, params: dict[str, str]
) -> None:
    assert app_client.get("/oauth/auth", params=params).status_code == 400
    assert endpoint.requests == []


# --- load, uninstall, remove_user ---------------------------------------------------------------------


def test_uninstall_forgets_the_token_and_queues_the_dead_lettering(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    install(app_client)

    response = app_client.get("/oauth/uninstall", params={"signed_payload_jwt": app_jwt(STORE)})

    assert response.status_code == 200
    assert not redis_client.hexists(store_key(STORE), "token")
    assert not redis_client.sismember("bcwebhooks:stores:installed", STORE)
    scopes = [job["envelope"]["scope"] for job in queued_callbacks(redis_client)]
    assert scopes == [APP_INSTALLED_SCOPE, APP_UNINSTALLED_SCOPE]


@pytest.mark.parametrize(
    "token",
    [
        app_jwt(STORE, secret="forged-forged-forged-forged-forged-forged-forged"),
        app_jwt(STORE, expires_in=-60),
        app_jwt(STORE, audience="x"),
        "",
    ],
    ids=["forged", "expired", "wrong-audience", "missing"],
)
@pytest.mark.parametrize("path", ["/oauth/uninstall", "/oauth/remove_user", "/oauth/load"])
def test_a_callback_with_a_jwt_that_is_not_genuine_gets_401_and_changes_nothing(
    app_client: TestClient, redis_client: redis.Redis, token: str, path: str
) -> None:
    install(app_client)
    before = redis_client.hgetall(store_key(STORE)), redis_client.smembers(f"{store_key(STORE)}:users")
    queued = len(queued_callbacks(redis_client))

    response = app_client.get(path, params={"signed_payload_jwt": token})

    assert response.status_code == 401
    assert response.json()["error"].startswith("jwt_")
    after = redis_client.hgetall(store_key(STORE)), redis_client.smembers(f"{store_key(STORE)}:users")
    assert after == before
    assert redis_client.sismember("bcwebhooks:stores:installed", STORE)
    assert len(queued_callbacks(redis_client)) == queued


def test_a_replayed_uninstall_jwt_is_refused_so_it_cannot_remove_a_reinstall(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    install(app_client)
    token = app_jwt(STORE)
    assert app_client.get("/oauth/uninstall", params={"signed_payload_jwt": token}).status_code == 200
    install(app_client, code="good-again")

    replayed = app_client.get("/oauth/uninstall", params={"signed_payload_jwt": token})

    assert replayed.status_code == 401 and replayed.json()["error"] == "jwt_replayed"
    assert redis_client.sismember("bcwebhooks:stores:installed", STORE)


def test_load_provisions_the_user_and_remove_user_removes_them(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    install(app_client)
    user = {"id": 777, "email": "staff@example.com", "locale": "en"}

    loaded = app_client.get("/oauth/load", params={"signed_payload_jwt": app_jwt(STORE, user=user)})

    assert loaded.status_code == 200 and "is installed" in loaded.text
    assert redis_client.sismember(f"{store_key(STORE)}:users", 777)
    removed = app_client.get("/oauth/remove_user", params={"signed_payload_jwt": app_jwt(STORE, user=user)})
    assert removed.status_code == 200
    assert not redis_client.sismember(f"{store_key(STORE)}:users", 777)
    assert redis_client.sismember(f"{store_key(STORE)}:users", 24654)  # the installer stays
    assert redis_client.hexists(store_key(STORE), "token")  # the store's token is per store, not per user


def test_the_app_callbacks_exist_only_in_app_mode(make_client: Any, settings: Any) -> None:
    client = make_client(settings)

    assert client.get("/oauth/auth", params={"code": "x", "context": "stores/abc"}).status_code == 404


def test_an_uninstall_issued_before_the_current_installation_is_acknowledged_and_ignored(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    install(app_client)
    late = app_jwt(STORE, iat=int(time.time()) - 600, nbf=int(time.time()) - 600)

    response = app_client.get("/oauth/uninstall", params={"signed_payload_jwt": late})

    assert response.status_code == 200
    assert redis_client.sismember("bcwebhooks:stores:installed", STORE)
    assert redis_client.hexists(store_key(STORE), "token")
