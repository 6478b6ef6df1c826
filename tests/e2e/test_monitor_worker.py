"""The hook monitor inside real `bcwebhooks worker` processes: two of them, one lock, one reactivation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from service.bigcommerce import ApiClient, StoreApi
from service.gaps import GAPS_STREAM, Gap
from service.incidents import HOOK_DEACTIVATED, list_incidents
from service.sandbox.access import DEFAULT_CLIENT_SECRET
from service.sandbox.app import SandboxConfig, create_sandbox_app
from tests.e2e.processes import BCWEBHOOKS, Process
from tests.servers import ThreadedUvicorn, wait_for
from tests.workers.test_monitor import Receiver

pytestmark = pytest.mark.e2e


def test_the_workers_monitor_reactivates_a_deactivated_hook_once_and_files_one_gap(
    redis_url: str,
    redis_client: redis.Redis,
    started: list[Process],
    tmp_path: Path,
) -> None:
    app = create_sandbox_app(SandboxConfig(allow_http=True))
    with ThreadedUvicorn(Receiver(status=200).app()) as receiver, ThreadedUvicorn(app) as sandbox:
        destination = f"{receiver.base_url}/webhooks/bigcommerce"
        declaration = tmp_path / "hooks.toml"
        declaration.write_text(f'receiver = "{destination}"\n[[hook]]\nscope = "store/cart/*"\n')
        with StoreApi(ApiClient(sandbox.base_url, "sandbox", "sandbox-token")).client as client:
            hook_id = int(StoreApi(client).create_hook("store/cart/*", destination, True, None)["id"])
        hook = app.state.sandbox.hooks.hooks[hook_id]
        app.state.sandbox.hooks.deactivate(hook, "all delivery attempts failed over 48 hours")
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REDIS_URL": redis_url,
            "BIGCOMMERCE_STORE_HASH": "sandbox",
            "BIGCOMMERCE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "BIGCOMMERCE_ACCESS_TOKEN": "sandbox-token",
            "BIGCOMMERCE_API_URL": sandbox.base_url,
            "BCWEBHOOKS_HOOKS_FILE": str(declaration),
            "BCWEBHOOKS_HOOKS_ALLOW_HTTP": "true",
            "BCWEBHOOKS_MONITOR_INTERVAL": "1",
            "BCWEBHOOKS_METRICS_PORT": "0",
            "BCWEBHOOKS_LOG_FORMAT": "json",
            "BCWEBHOOKS_DATA_DIR": str(tmp_path / "data"),
        }
        argv = [*BCWEBHOOKS, "worker", "--processes", "2", "--threads", "1"]
        started.append(Process(argv, environ, tmp_path / "worker.log"))

        wait_for(lambda: hook.is_active, 60, "the workers' monitor to reactivate the hook")
        wait_for(lambda: bool(list_incidents(redis_client)), 10, "the incident")
        [incident] = list_incidents(redis_client)
        wait_for(lambda: not list_incidents(redis_client)[0].open, 10, "the incident to be resolved")

    gaps = [Gap.from_json(fields[b"gap"]) for _, fields in redis_client.xrange(GAPS_STREAM)]
    assert len(gaps) == 1 and gaps[0].scopes == ("store/cart/*",)
    assert incident.kind == HOOK_DEACTIVATED and incident.hook_id == hook_id
