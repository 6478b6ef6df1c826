"""Redis URLs: the forms redis-py reads, and a Sentinel form, so that a failover needs no restart.

    redis+sentinel://[[username]:password@]host[:port][,host2[:port2]...]/service_name[/db][?option=value&...]

The hosts are Sentinels (port 26379 when none is given); `service_name` is the name they monitor the
primary under (`sentinel monitor <name> ...`); `db` defaults to 0. The user and password are the data
nodes'; `sentinel_username` and `sentinel_password` options authenticate to the Sentinels. Every other
option is a redis-py URL option (`socket_timeout=...`), parsed by redis-py itself. The Redis-Sentinel-Url
package, RedisVL and Prefect read the same form. Clients built here ask a Sentinel for the primary on each
new connection (redis-py's `redis.sentinel`), so after a failover the next connection reaches the new one.
TLS to the data nodes and Sentinels (`rediss+sentinel://`) is not supported.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.connection import parse_url

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
SENTINEL_AUTH_OPTIONS = {"sentinel_username": "username", "sentinel_password": "password"}
URL_FORMS = (
    "redis://host:6379/0, rediss://host:6380/0, unix:///path/to/redis.sock "
    "or redis+sentinel://host:26379,host2:26379/mymaster/0"
)


@dataclass(frozen=True)
class SentinelUrl:
    """A parsed `redis+sentinel://` URL.

    Parameters:
      sentinels: (host, port) of each Sentinel, in the URL's order.
      service_name: the name the Sentinels monitor the primary under.
      node_options: redis-py connection options for the primary (db, username, password, timeouts...).
      sentinel_options: connection options for the Sentinels (their username and password).
    """

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    node_options: dict[str, Any] = field(default_factory=dict)
    sentinel_options: dict[str, Any] = field(default_factory=dict)


def is_sentinel_url(url: str) -> bool:
    """Whether `url` names Redis through Sentinels."""
    return url.split("://", 1)[0].lower() == SENTINEL_SCHEME


def check_redis_url(url: str) -> None:
    """Raise ValueError, saying which forms are accepted, unless `url` is one of them."""
    try:
        if is_sentinel_url(url):
            parse_sentinel_url(url)
        else:
            parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    except ValueError as error:
        detail = f" ({error})" if is_sentinel_url(url) else ""
        raise ValueError(f"must look like {URL_FORMS}{detail}") from None


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Split a `redis+sentinel://` URL into Sentinel addresses, service name and options."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels = tuple(_host_port(member) for member in hosts.split(","))
    path = [unquote(segment) for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2:
        raise ValueError("the path must be /service_name or /service_name/db")
    options = parse_qsl(parts.query)
    sentinel_options = {
        SENTINEL_AUTH_OPTIONS[name]: value for name, value in options if name in SENTINEL_AUTH_OPTIONS
    }
    node_query = urlencode([(name, value) for name, value in options if name not in SENTINEL_AUTH_OPTIONS])
    credentials = f"{userinfo}@" if userinfo else ""
    database = path[1] if len(path) == 2 else "0"
    if not database.isdigit():
        raise ValueError(f"the database must be a number, not {database!r}")
    node_options: dict[str, Any] = parse_url(  # type: ignore[no-untyped-call]  # unannotated in redis-py
        f"redis://{credentials}placeholder/{database}?{node_query}"
    )
    node_options.pop("host", None)
    return SentinelUrl(sentinels, path[0], node_options, sentinel_options)


def _host_port(member: str) -> tuple[str, int]:
    host, port = member, ""
    if member.startswith("["):  # [IPv6]:port
        host, _, rest = member[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in member:
        host, _, port = member.rpartition(":")
    if not host:
        raise ValueError(f"no host in Sentinel address {member!r}")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{port!r} is not a port number")
    return host, int(port) if port else DEFAULT_SENTINEL_PORT


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A redis-py client for `url`; through the Sentinels, a client of the current primary.

    `options` (timeouts, retry) apply to the data node connections; timeouts and retry to the Sentinels too.
    """
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    sentinels = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]  # unannotated in redis-py
        list(parsed.sentinels), sentinel_kwargs=_sentinel_kwargs(parsed, options)
    )
    node_options = {**parsed.node_options, **options}
    client: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]  # unannotated in redis-py
        parsed.service_name, **node_options
    )
    return client


def async_client(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for `url`, as `sync_client` builds a blocking one; close it with `close_async`."""
    if not is_sentinel_url(url):
        return aioredis.Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    sentinels = aiosentinel.Sentinel(  # type: ignore[no-untyped-call]  # unannotated in redis-py
        list(parsed.sentinels), sentinel_kwargs=_sentinel_kwargs(parsed, options)
    )
    client: aioredis.Redis = sentinels.master_for(parsed.service_name, **{**parsed.node_options, **options})
    return client


def _sentinel_kwargs(parsed: SentinelUrl, options: dict[str, Any]) -> dict[str, Any]:
    # The caller's timeouts and retry policy hold for the questions to the Sentinels too: a web tier that
    # does not retry must not wait out redis-py's default retries on a Sentinel that is down.
    shared = {name: value for name, value in options.items() if name.startswith("socket_") or name == "retry"}
    return {**shared, **parsed.sentinel_options}


async def close_async(client: aioredis.Redis) -> None:
    """Close an asyncio client and, for a Sentinel URL, its connections to the Sentinels."""
    await client.aclose()
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    if isinstance(manager, aiosentinel.Sentinel):
        await manager.aclose()


def close_sync(client: redis.Redis) -> None:
    """Close a blocking client and, for a Sentinel URL, its connections to the Sentinels."""
    client.close()
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    if isinstance(manager, redis.sentinel.Sentinel):
        with contextlib.suppress(redis.RedisError, OSError):
            manager.close()
