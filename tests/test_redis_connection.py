"""Redis URL forms: plain ones left to redis-py, the Sentinel form parsed and checked here."""

from __future__ import annotations

import pytest
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError

from service.redis_connection import (
    DEFAULT_SENTINEL_PORT,
    check_redis_url,
    is_sentinel_url,
    parse_sentinel_url,
    sync_client,
)
from service.settings import ConfigError
from tests.conftest import make_settings


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_database() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:s3cret@sentinel-a:26380,sentinel-b,[::1]:26381/mymaster/2")

    assert parsed.sentinels == (
        ("sentinel-a", 26380),
        ("sentinel-b", DEFAULT_SENTINEL_PORT),
        ("::1", 26381),
    )
    assert parsed.service_name == "mymaster"
    assert parsed.node_options["db"] == 2
    assert parsed.node_options["password"] == "s3cret"
    assert "host" not in parsed.node_options
    assert parsed.sentinel_options == {}


def test_options_go_to_the_data_nodes_and_sentinel_credentials_to_the_sentinels() -> None:
    parsed = parse_sentinel_url(
        "redis+sentinel://app:pw@h1:26379/cache?socket_timeout=1.5&sentinel_password=spw&sentinel_username=su"
    )

    assert parsed.node_options["db"] == 0
    assert parsed.node_options["socket_timeout"] == 1.5
    assert (parsed.node_options["username"], parsed.node_options["password"]) == ("app", "pw")
    assert parsed.sentinel_options == {"username": "su", "password": "spw"}


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h1:26379",
        "redis+sentinel://h1:26379/",
        "redis+sentinel://h1:26379/mymaster/zero",
        "redis+sentinel://h1:26379/mymaster/0/extra",
        "redis+sentinel://h1:notaport/mymaster",
        "redis+sentinel://h1:26379,:26380/mymaster",
        "http://h1:6379/0",
        "redis-sentinel://h1:26379/mymaster",
    ],
)
def test_malformed_urls_are_refused_with_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError, match=r"must look like redis://host:6379/0, .*redis\+sentinel://"):
        check_redis_url(url)


def test_plain_urls_are_accepted_as_redis_py_reads_them() -> None:
    for url in ("redis://localhost:6379/0", "rediss://h:6380/1", "unix:///tmp/redis.sock"):
        check_redis_url(url)
        assert not is_sentinel_url(url)
    assert is_sentinel_url("REDIS+SENTINEL://h/mymaster")


def test_settings_accept_a_sentinel_url_and_name_the_variable_when_it_is_wrong() -> None:
    url = "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
    assert make_settings(REDIS_URL=url).redis_url == url

    with pytest.raises(ConfigError, match=r"^REDIS_URL: must look like .*\(the path must be"):
        make_settings(REDIS_URL="redis+sentinel://10.0.0.1:26379")


def test_replica_settings_default_to_acknowledging_on_the_primary_alone() -> None:
    settings = make_settings()
    assert (settings.redis_min_replicas, settings.redis_replica_timeout_ms) == (0, 500)

    configured = make_settings(BCWEBHOOKS_REDIS_MIN_REPLICAS="2", BCWEBHOOKS_REDIS_REPLICA_TIMEOUT_MS="250")
    assert (configured.redis_min_replicas, configured.redis_replica_timeout_ms) == (2, 250)
    with pytest.raises(ConfigError, match=r"^BCWEBHOOKS_REDIS_MIN_REPLICAS: "):
        make_settings(BCWEBHOOKS_REDIS_MIN_REPLICAS="-1")


def test_a_sentinel_client_asks_the_sentinels_before_connecting() -> None:
    url = "redis+sentinel://127.0.0.1:1/mymaster/3"
    client = sync_client(url, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        assert client.connection_pool.connection_kwargs["db"] == 3
        with pytest.raises(MasterNotFoundError, match="No master found for 'mymaster'"):
            client.ping()
    finally:
        client.close()
