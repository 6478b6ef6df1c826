"""App mode at the edge: which configuration selects it, and callbacks accepted from installed stores only."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import ConfigError, load_settings
from service.stores import Stores, TokenCipher
from tests.helpers import (
    APP_CLIENT_SECRET,
    ENCRYPTION_KEY,
    OLD_ENCRYPTION_KEY,
    app_environ,
    encode,
    envelope,
    queued_callbacks,
    signed,
)

URL = "/webhooks/bigcommerce"


# --- the mode rule -------------------------------------------------------------------------------------


def test_app_mode_is_selected_by_the_encryption_keys_with_the_apps_credentials() -> None:
    settings = load_settings(
        app_environ(BCWEBHOOKS_ENCRYPTION_KEYS=f"{ENCRYPTION_KEY}, {OLD_ENCRYPTION_KEY}")
    )

    assert settings.app_mode
    assert settings.store_hash is None
    assert [key.get_secret_value() for key in settings.encryption_keys] == [
        ENCRYPTION_KEY,
        OLD_ENCRYPTION_KEY,
    ]
    assert settings.login_url == "https://login.bigcommerce.com"


def test_single_store_mode_is_unchanged_even_with_a_client_id() -> None:
    settings = load_settings(
        {
            "BIGCOMMERCE_STORE_HASH": "abc123",
            "BIGCOMMERCE_ACCESS_TOKEN": "t",
            "BIGCOMMERCE_CLIENT_SECRET": "s",
            "BIGCOMMERCE_CLIENT_ID": "the-api-accounts-client-id",
        }
    )

    assert not settings.app_mode
    assert settings.single_store_hash == "abc123"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            app_environ(BIGCOMMERCE_ACCESS_TOKEN="t"),
            "BIGCOMMERCE_ACCESS_TOKEN and BCWEBHOOKS_ENCRYPTION_KEYS",
        ),
        (app_environ(BIGCOMMERCE_STORE_HASH="abc"), "BIGCOMMERCE_STORE_HASH and BCWEBHOOKS_ENCRYPTION_KEYS"),
        (app_environ(BIGCOMMERCE_CLIENT_ID=""), "BIGCOMMERCE_CLIENT_ID: required in app mode"),
        (app_environ(BCWEBHOOKS_APP_URL=" "), "BCWEBHOOKS_APP_URL: required in app mode"),
        (app_environ(BCWEBHOOKS_ENCRYPTION_KEYS="not-a-key"), "BCWEBHOOKS_ENCRYPTION_KEYS: key 1 is not"),
        (
            {"BIGCOMMERCE_CLIENT_ID": "c", "BIGCOMMERCE_CLIENT_SECRET": "s"},
            "BIGCOMMERCE_STORE_HASH: not set; for app mode (every store that installs the app) set "
            "BCWEBHOOKS_ENCRYPTION_KEYS too",
        ),
    ],
    ids=["token-too", "store-hash-too", "no-client-id", "no-app-url", "bad-key", "client-id-alone"],
)
def test_an_ambiguous_or_incomplete_app_configuration_is_one_clear_line(
    environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)

    assert str(caught.value).startswith(expected)


def test_a_command_that_needs_one_store_says_so_in_app_mode() -> None:
    with pytest.raises(ConfigError, match="--store HASH"):
        _ = load_settings(app_environ()).single_store_hash


# --- the receiver ---------------------------------------------------------------------------------------


@pytest.fixture
def app_client(redis_url: str, redis_client: redis.Redis) -> Any:
    with TestClient(create_app(load_settings(app_environ()), redis_url)) as client:
        yield client


def installed(redis_client: redis.Redis, *hashes: str) -> Stores:
    stores = Stores(redis_client, TokenCipher([ENCRYPTION_KEY]))
    for store_hash in hashes:
        stores.record_install(store_hash, f"token-{store_hash}", "store_v2_orders", {}, {})
    return stores


def deliver(client: TestClient, store_hash: str) -> Any:
    raw = encode(envelope(producer=f"stores/{store_hash}"))
    return client.post(URL, content=raw, headers=signed(raw, secret=APP_CLIENT_SECRET))


def test_callbacks_from_installed_stores_are_enqueued_with_their_store(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    installed(redis_client, "storea", "storeb")

    assert deliver(app_client, "storea").status_code == 200
    assert deliver(app_client, "storeb").status_code == 200

    producers = [callback["envelope"]["producer"] for callback in queued_callbacks(redis_client)]
    assert producers == ["stores/storea", "stores/storeb"]


def test_a_callback_from_a_store_without_the_app_gets_403_and_nothing_is_written(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    installed(redis_client, "storea")
    before = set(redis_client.keys("*"))

    response = deliver(app_client, "strangers")

    assert response.status_code == 403
    assert response.json()["error"] == "store_not_installed"
    assert set(redis_client.keys("*")) == before  # no message, no ledger entry, no dedup mark


def test_after_an_uninstall_the_stores_callbacks_are_refused(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    stores = installed(redis_client, "storea")
    assert deliver(app_client, "storea").status_code == 200

    stores.uninstall("storea")

    assert deliver(app_client, "storea").status_code == 403
    assert len(queued_callbacks(redis_client)) == 1


def test_in_one_batch_each_callback_is_judged_by_its_own_store(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    installed(redis_client, "storea")

    stores = ["storea", "nobody", "storea", "nobody"] * 5
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda store: deliver(app_client, store).status_code, stores))

    assert statuses == [200 if store == "storea" else 403 for store in stores]
    assert len(queued_callbacks(redis_client)) == 10


def test_a_producer_that_is_not_a_store_hash_is_400_in_app_mode(app_client: TestClient) -> None:
    raw = encode(envelope(producer="stores/Not A Hash"))

    response = app_client.post(URL, content=raw, headers=signed(raw, secret=APP_CLIENT_SECRET))

    assert response.status_code == 400 and response.json()["error"] == "invalid_producer"


def test_a_callback_signed_with_another_secret_is_401_even_for_an_installed_store(
    app_client: TestClient, redis_client: redis.Redis
) -> None:
    installed(redis_client, "storea")
    raw = encode(envelope(producer="stores/storea"))

    response = app_client.post(URL, content=raw, headers=signed(raw))

    assert response.status_code == 401
    assert queued_callbacks(redis_client) == []
