"""Installed stores: tokens encrypted at rest, key rotation, uninstall and forget."""

from __future__ import annotations

import pytest
import redis

from service.stores import StoreError, Stores, TokenCipher, new_key, store_key
from tests.helpers import ENCRYPTION_KEY, OLD_ENCRYPTION_KEY

TOKEN = "abc-store-token-123"


def stores_with(client: redis.Redis, *keys: str) -> Stores:
    return Stores(client, TokenCipher(list(keys)))


def install(stores: Stores, store_hash: str = "store1", token: str = TOKEN) -> int:
    return stores.record_install(
        store_hash, token, "store_v2_orders", {"id": 1, "email": "u@example.com"}, {"id": 2, "email": "o@x"}
    )


def test_a_token_is_stored_encrypted_and_read_back(redis_client: redis.Redis) -> None:
    stores = stores_with(redis_client, ENCRYPTION_KEY)

    install(stores)

    raw = redis_client.hget(store_key("store1"), "token")
    assert raw is not None and TOKEN.encode() not in raw
    assert stores.token("store1") == TOKEN
    record = stores.get("store1")
    assert record is not None and record.installed and record.has_token
    assert TOKEN not in repr(record) and TOKEN not in str(record.public())
    assert record.users == (1,) and record.owner == {"id": 2, "email": "o@x"}


def test_a_token_under_an_unknown_key_is_a_clear_error(redis_client: redis.Redis) -> None:
    install(stores_with(redis_client, OLD_ENCRYPTION_KEY))

    with pytest.raises(StoreError, match="BCWEBHOOKS_ENCRYPTION_KEYS"):
        stores_with(redis_client, ENCRYPTION_KEY).token("store1")


def test_rotation_reencrypts_every_token_under_the_first_key(redis_client: redis.Redis) -> None:
    old = stores_with(redis_client, OLD_ENCRYPTION_KEY)
    install(old, "store1")
    install(old, "store2", "other-token")
    rotated = stores_with(redis_client, ENCRYPTION_KEY, OLD_ENCRYPTION_KEY)

    assert rotated.rotate_keys() == 2
    assert rotated.rotate_keys() == 0

    only_new = stores_with(redis_client, ENCRYPTION_KEY)
    assert only_new.token("store1") == TOKEN
    assert only_new.token("store2") == "other-token"


def test_a_token_read_under_an_older_key_is_reencrypted_on_the_spot(redis_client: redis.Redis) -> None:
    install(stores_with(redis_client, OLD_ENCRYPTION_KEY))
    both = stores_with(redis_client, ENCRYPTION_KEY, OLD_ENCRYPTION_KEY)

    assert both.token("store1") == TOKEN

    assert stores_with(redis_client, ENCRYPTION_KEY).token("store1") == TOKEN


def test_new_tokens_are_encrypted_under_the_first_key(redis_client: redis.Redis) -> None:
    install(stores_with(redis_client, ENCRYPTION_KEY, OLD_ENCRYPTION_KEY))

    assert stores_with(redis_client, ENCRYPTION_KEY).token("store1") == TOKEN
    with pytest.raises(StoreError):
        stores_with(redis_client, OLD_ENCRYPTION_KEY).token("store1")


def test_uninstall_forgets_the_token_and_keeps_the_record(redis_client: redis.Redis) -> None:
    stores = stores_with(redis_client, ENCRYPTION_KEY)
    install(stores)

    assert stores.uninstall("store1") is True
    assert stores.uninstall("store1") is False

    assert stores.token("store1") is None
    assert not stores.is_installed("store1")
    record = stores.get("store1")
    assert record is not None and not record.installed and not record.has_token
    assert record.uninstalled_at_ms is not None
    assert stores.known() == ["store1"] and stores.installed() == []


def test_a_reinstall_replaces_the_token(redis_client: redis.Redis) -> None:
    stores = stores_with(redis_client, ENCRYPTION_KEY)
    first = install(stores)
    stores.uninstall("store1")

    second = install(stores, token="new-token")

    assert second >= first
    assert stores.token("store1") == "new-token"
    record = stores.get("store1")
    assert record is not None and record.installed and record.uninstalled_at_ms is None


def test_forget_deletes_everything_about_the_store(redis_client: redis.Redis) -> None:
    stores = stores_with(redis_client, ENCRYPTION_KEY)
    install(stores)

    assert stores.forget("store1") is True

    assert stores.get("store1") is None
    assert stores.known() == [] and stores.installed() == []
    assert redis_client.keys("bcwebhooks:store:*") == []
    assert stores.forget("store1") is False


def test_new_keys_are_distinct_fernet_keys() -> None:
    first, second = new_key(), new_key()

    assert first != second
    assert TokenCipher([first]).decrypt(TokenCipher([first, second]).encrypt("t")) == "t"
