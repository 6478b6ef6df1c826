"""App mode: the workers' monitor checks every installed store with that store's own token."""

from __future__ import annotations

from pathlib import Path

import redis

from service.bigcommerce import ApiClient, StoreApi
from service.gaps import GAPS_STREAM, Gap
from service.sandbox.app import SandboxConfig, create_sandbox_app
from service.settings import load_settings
from service.stores import Stores, TokenCipher
from tests.helpers import ENCRYPTION_KEY, app_environ
from tests.servers import ThreadedUvicorn
from tests.workers.test_monitor import Receiver
from workers.broker import build_app_context
from workers.monitor_command import worker_monitor_loop
from workers.monitor_loop import NEXT_PASS_KEY


def test_each_installed_store_is_checked_with_its_own_token_and_only_its_hook_reactivated(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    app = create_sandbox_app(SandboxConfig(allow_http=True, stores=2))
    with ThreadedUvicorn(Receiver(status=200).app()) as receiver, ThreadedUvicorn(app) as sandbox:
        destination = f"{receiver.base_url}/webhooks/bigcommerce"
        declaration = tmp_path / "hooks.toml"
        declaration.write_text(f'receiver = "{destination}"\n[[hook]]\nscope = "store/order/*"\n')
        stores = Stores(redis_client, TokenCipher([ENCRYPTION_KEY]))
        hooks = {}
        for store_hash, token in (("sandbox", "sandbox-token"), ("sandbox2", "sandbox-token-sandbox2")):
            stores.record_install(store_hash, token, "store_v2_information", {}, {})
            with ApiClient(sandbox.base_url, store_hash, token) as client:
                hooks[store_hash] = StoreApi(client).create_hook("store/order/*", destination, True, None)
        off = app.state.stores["sandbox2"].hooks.hooks[hooks["sandbox2"]["id"]]
        app.state.stores["sandbox2"].hooks.deactivate(off, "all delivery attempts failed over 48 hours")
        environ = app_environ(
            BIGCOMMERCE_API_URL=sandbox.base_url,
            BCWEBHOOKS_HOOKS_FILE=str(declaration),
            BCWEBHOOKS_HOOKS_ALLOW_HTTP="true",
        )
        settings = load_settings(environ)
        loop = worker_monitor_loop(settings, build_app_context(settings, redis_url))
        redis_client.set(NEXT_PASS_KEY, 0)

        reports = {report.store: report for report in loop.tick()}

    assert sorted(loop.stores()) == ["sandbox", "sandbox2"]
    assert (reports["sandbox"].active, reports["sandbox"].reactivated) == (1, [])
    assert reports["sandbox2"].reactivated == [off.id] and off.is_active
    [gap] = [Gap.from_json(fields[b"gap"]) for _, fields in redis_client.xrange(GAPS_STREAM)]
    assert gap.store_hash == "sandbox2"
