"""Fixtures: a Redis server of the suite's own, settings, and the receiver app.

The suite never touches a database it did not create: it starts its own redis-server on a unix socket in a
temp dir for the session (and stops it), unless BCWEBHOOKS_TEST_REDIS_URL names a server it may empty.
REDIS_URL and the other variables of the service are removed from the environment for the whole session,
so neither the code under test nor the commands the tests start can reach a user's data.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from service.app import create_app
from service.settings import Settings, load_settings
from tests.helpers import CLIENT_SECRET, STORE_HASH
from tests.servers import RedisProcess

# A server the suite may empty (flushed around every test); never REDIS_URL, which may be production.
TEST_REDIS_URL_ENV = "BCWEBHOOKS_TEST_REDIS_URL"
# Kept for old habits: `BCWEBHOOKS_TEST_REDIS=embedded` changes nothing, the suite's server is its own.
KEPT_VARIABLES = frozenset({TEST_REDIS_URL_ENV, "BCWEBHOOKS_TEST_REDIS"})


# A shell starts background jobs with SIGINT ignored, and children inherit that: the commands the tests stop
# with SIGINT (as Ctrl-C would) would then ignore it. Python's own handler is reset to the default at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _service_variable(name: str) -> bool:
    return name == "REDIS_URL" or (
        name.startswith(("BIGCOMMERCE_", "BCWEBHOOKS_")) and name not in KEPT_VARIABLES
    )


@pytest.fixture(scope="session", autouse=True)
def _no_user_environment() -> Iterator[None]:
    """Remove REDIS_URL and the service's variables from the environment for the whole session."""
    patch = pytest.MonkeyPatch()
    for name in [name for name in os.environ if _service_variable(name)]:
        patch.delenv(name)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """BCWEBHOOKS_TEST_REDIS_URL when set, else a redis-server of our own for the session."""
    configured = os.environ.get(TEST_REDIS_URL_ENV)
    if configured:
        yield configured
        return
    server = RedisProcess(Path(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


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
