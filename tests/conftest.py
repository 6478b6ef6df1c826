"""Fixtures: a real Redis server for every test, settings, and the receiver app."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from service.app import create_app
from service.embedded_redis import EmbeddedRedis
from service.settings import Settings, load_settings
from tests.helpers import CLIENT_SECRET, STORE_HASH

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/13"
# `BCWEBHOOKS_TEST_REDIS=embedded` forces the embedded server even where a local one runs.
FORCE_EMBEDDED_ENV = "BCWEBHOOKS_TEST_REDIS"


def _reachable(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set, else a local server on 6379 (database 13), else an embedded one we start."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    if os.environ.get(FORCE_EMBEDDED_ENV) != "embedded" and _reachable(LOCAL_REDIS_URL):
        yield LOCAL_REDIS_URL
        return
    embedded = EmbeddedRedis(Path(tmp_path_factory.mktemp("embedded-redis")))
    yield embedded.url
    embedded.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the test Redis, whose database is emptied before and after each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def make_settings(**environ: str) -> Settings:
    """Settings for the test store, signed with CLIENT_SECRET unless overridden."""
    base = {"BIGCOMMERCE_STORE_HASH": STORE_HASH, "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET}
    return load_settings({**base, **environ})


@pytest.fixture
def settings() -> Settings:
    """Default settings: signature required, one client secret."""
    return make_settings()


@pytest.fixture
def make_client(redis_url: str, redis_client: redis.Redis) -> Iterator[Any]:
    """A factory for TestClients of the app built from given settings; all are closed after the test."""
    clients: list[TestClient] = []

    def build(settings: Settings, url: str | None = None) -> TestClient:
        client = TestClient(create_app(settings, url or redis_url), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Any, settings: Settings) -> TestClient:
    """The receiver app with default settings."""
    built: TestClient = make_client(settings)
    return built
