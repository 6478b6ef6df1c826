"""`bcwebhooks dev --stores N`: app mode against N sandbox stores, the app installed on each through
BigCommerce's single-click OAuth flow as the sandbox plays it.

The sandbox acts as BigCommerce: it sends the receiver's auth callback a code, the receiver exchanges it at
the sandbox's /oauth2/token for the store's token and records the store (encrypted), and a worker applies
dev's hooks file to the store. Then each store's demo changes fire callbacks that the workers process with
that store's own token.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import structlog

from service.oauth import AUTH_PATH
from service.sandbox.oauth import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_CLIENT_SECRET
from service.stores import new_key

KEY_FILENAME = "app-mode.key"
HOOKS_FILENAME = "app-mode-hooks.toml"
HOOKS_TIMEOUT_SECONDS = 30.0
# What another command needs to join dev's app mode (besides REDIS_URL and the sandbox URL).
APP_MODE_VARIABLES = (
    "BIGCOMMERCE_API_URL",
    "BIGCOMMERCE_LOGIN_URL",
    "BIGCOMMERCE_CLIENT_ID",
    "BIGCOMMERCE_CLIENT_SECRET",
    "BCWEBHOOKS_APP_URL",
    "BCWEBHOOKS_ENCRYPTION_KEYS",
    "BCWEBHOOKS_HOOKS_FILE",
    "BCWEBHOOKS_HOOKS_ALLOW_HTTP",
)

log = structlog.get_logger("bcwebhooks.dev")


def app_mode_environ(
    data_dir: Path, sandbox_url: str, app_url: str, receiver_url: str, scopes: Iterable[str]
) -> dict[str, str]:
    """The variables that put receiver and workers in app mode against the sandbox.

    Parameters:
      data_dir: dev's data dir; the encryption key (kept across runs, like the Redis it protects) and the
        hooks file each store gets on install are written there.
      sandbox_url: the sandbox, which serves both the stores' API and the login service's token endpoint.
      app_url: the receiver's base URL, the base of the auth callback the app is registered with.
      receiver_url: where the stores' hooks deliver.
      scopes: the hooks each store gets.
    """
    return {
        "BIGCOMMERCE_API_URL": sandbox_url,
        "BIGCOMMERCE_LOGIN_URL": sandbox_url,
        "BIGCOMMERCE_CLIENT_ID": DEFAULT_APP_CLIENT_ID,
        "BIGCOMMERCE_CLIENT_SECRET": DEFAULT_APP_CLIENT_SECRET,
        "BCWEBHOOKS_APP_URL": app_url,
        "BCWEBHOOKS_ENCRYPTION_KEYS": dev_key(data_dir),
        "BCWEBHOOKS_HOOKS_FILE": str(write_hooks_file(data_dir, receiver_url, scopes)),
        "BCWEBHOOKS_HOOKS_ALLOW_HTTP": "true",
    }


def dev_key(data_dir: Path) -> str:
    """dev's own encryption key, made on first use and kept (readable by its owner only)."""
    path = data_dir / KEY_FILENAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = new_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key + "\n")
    return key


def write_hooks_file(data_dir: Path, receiver_url: str, scopes: Iterable[str]) -> Path:
    """A hooks.toml that points every store's hooks at dev's receiver."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / HOOKS_FILENAME
    hooks = "".join(f'\n[[hook]]\nscope = "{scope}"\n' for scope in scopes)
    path.write_text(f'# Written by `bcwebhooks dev`.\nreceiver = "{receiver_url}"\n{hooks}')
    return path


async def install_on_every_store(sandbox_url: str, app_url: str, stores: list[str], hooks: int) -> None:
    """Install the app on each store through the OAuth flow, then wait until each has its hooks."""
    async with httpx.AsyncClient(timeout=60) as client:
        for store in stores:
            response = await client.post(
                f"{sandbox_url}/_sandbox/app/install",
                params={"store": store},
                json={"callback_url": f"{app_url}{AUTH_PATH}"},
            )
            outcome = response.json()
            log.info(
                "dev.app_installed",
                store=store,
                auth_callback=outcome.get("callback"),
                status=outcome.get("status"),
                token_exchanged=outcome.get("exchanged"),
            )
        deadline = time.monotonic() + HOOKS_TIMEOUT_SECONDS
        waiting = list(stores)
        while waiting and time.monotonic() < deadline:
            counts = await _hook_counts(client, sandbox_url)
            for store in [s for s in waiting if counts.get(s, 0) >= hooks]:
                log.info("dev.store_ready", store=store, hooks=counts[store])
                waiting.remove(store)
            await asyncio.sleep(0.2)
    for store in waiting:
        log.error("dev.hooks_missing", store=store, wanted=hooks, hint="see `bcwebhooks stores show`")


async def _hook_counts(client: httpx.AsyncClient, sandbox_url: str) -> dict[str, int]:
    """Each store's hooks of the app, read through the API with the store's own token."""
    counts: dict[str, int] = {}
    stores: list[dict[str, Any]] = (await client.get(f"{sandbox_url}/_sandbox/stores")).json()["stores"]
    for store in stores:
        for app in store["apps"]:
            if app["client_id"] == DEFAULT_APP_CLIENT_ID:
                listed = await client.get(
                    f"{sandbox_url}{store['api_path']}/v3/hooks", headers={"X-Auth-Token": app["token"]}
                )
                counts[store["store_hash"]] = len(listed.json().get("data", [])) if listed.is_success else 0
    return counts
