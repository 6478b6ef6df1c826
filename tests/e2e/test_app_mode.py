"""App mode end to end: the sandbox running three stores (and BigCommerce's side of the OAuth flow), the
receiver in app mode, a Dramatiq worker. Installing the app on each store registers its hooks; events from
each store are fetched with that store's own token (the sandbox's request log names it); uninstalling one
stops its fetches and dead-letters its pending events with the reason `uninstalled`; forged or expired
JWTs get 401 and change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from service.app import create_app
from service.events import PersistedCallback, build_message
from service.queue import persist_now
from service.sandbox.app import SandboxConfig, create_sandbox_app
from service.sandbox.oauth import DEFAULT_APP_CLIENT_ID, DEFAULT_APP_CLIENT_SECRET
from service.settings import Settings, load_settings
from service.stores import Stores
from tests.helpers import app_environ
from tests.servers import ThreadedUvicorn, free_port, wait_for
from workers import dlq
from workers.broker import build_context
from workers.context import set_context
from workers.events import ProcessedEvent
from workers.handlers import HandlerRegistry
from workers.processing import WorkerContext

STORES = ("sandbox", "sandbox2", "sandbox3")
pytestmark = pytest.mark.e2e


@dataclass
class AppStack:
    sandbox: str
    receiver: str
    context: WorkerContext
    stores: Stores
    redis: redis.Redis
    redis_url: str

    def app_action(self, action: str, store_hash: str, **body: Any) -> dict[str, Any]:
        """Act as BigCommerce on a store: call the app's callback; the sandbox's report of it."""
        response = httpx.post(
            f"{self.sandbox}/_sandbox/app/{action}",
            params={"store": store_hash},
            json={"app_url": f"{self.receiver}/oauth", **body},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def trigger(self, store_hash: str, scope: str) -> list[dict[str, Any]]:
        response = httpx.post(
            f"{self.sandbox}/_sandbox/trigger", params={"store": store_hash}, json={"scope": scope}
        )
        assert response.status_code == 200, response.text
        return list(response.json()["events"])

    def hooks(self, store_hash: str) -> list[dict[str, Any]]:
        stores = httpx.get(f"{self.sandbox}/_sandbox/stores").json()["stores"]
        [store] = [s for s in stores if s["store_hash"] == store_hash]
        [app] = store["apps"] or [{"token": ""}]
        if not app["token"]:
            return []
        answer = httpx.get(
            f"{self.sandbox}/stores/{store_hash}/v3/hooks", headers={"X-Auth-Token": app["token"]}
        )
        return list(answer.json()["data"])

    def fetches(self, store_hash: str) -> list[dict[str, Any]]:
        """The API requests the store served, other than hook management."""
        log = httpx.get(f"{self.sandbox}/_sandbox/requests", params={"store": store_hash}).json()["requests"]
        return [r for r in log if not str(r["path"]).startswith("/v3/hooks")]

    def processed(self) -> list[ProcessedEvent]:
        entries = self.redis.xrange(self.context.output.name)
        return [ProcessedEvent.from_json(fields[b"event"]) for _, fields in entries]


def app_settings(
    sandbox: str, receiver_port: int, hooks_file: Path, coalesce_window_ms: str = "0"
) -> Settings:
    return load_settings(
        app_environ(
            BIGCOMMERCE_CLIENT_ID=DEFAULT_APP_CLIENT_ID,
            BIGCOMMERCE_CLIENT_SECRET=DEFAULT_APP_CLIENT_SECRET,
            BCWEBHOOKS_APP_URL=f"http://127.0.0.1:{receiver_port}",
            BIGCOMMERCE_API_URL=sandbox,
            BIGCOMMERCE_LOGIN_URL=sandbox,
            BCWEBHOOKS_HOOKS_FILE=str(hooks_file),
            BCWEBHOOKS_HOOKS_ALLOW_HTTP="true",
            BCWEBHOOKS_COALESCE_WINDOW_MS=coalesce_window_ms,
            BCWEBHOOKS_COALESCE_THRESHOLD="3",
        )
    )


@pytest.fixture
def app_stack(
    redis_url: str,
    redis_client: redis.Redis,
    broker: RedisBroker,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[AppStack]:
    coalesce_window_ms = getattr(request, "param", {}).get("coalesce_window_ms", "0")
    hooks_file = tmp_path / "hooks.toml"
    with ThreadedUvicorn(create_sandbox_app(SandboxConfig(stores=len(STORES), allow_http=True))) as sandbox:
        receiver_port = free_port()
        settings = app_settings(sandbox.base_url, receiver_port, hooks_file, coalesce_window_ms)
        with ThreadedUvicorn(create_app(settings, redis_url), port=receiver_port) as receiver:
            hooks_file.write_text(
                f'receiver = "{receiver.base_url}/webhooks/bigcommerce"\n'
                '[[hook]]\nscope = "store/order/*"\n[[hook]]\nscope = "store/product/updated"\n'
            )
            context = build_context(settings, redis_url)
            context.handlers = HandlerRegistry()
            set_context(context)
            assert context.stores is not None
            worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
            worker.start()
            try:
                yield AppStack(
                    sandbox.base_url,
                    receiver.base_url,
                    context,
                    context.stores.stores,
                    redis_client,
                    redis_url,
                )
            finally:
                worker.stop()


def install(stack: AppStack, *stores: str) -> None:
    for store_hash in stores:
        report = stack.app_action("install", store_hash)
        assert report["status"] == 200 and report["exchanged"] and report["installed"], report
    wait_for(lambda: all(len(stack.hooks(h)) == 2 for h in stores), 20, "each store's hooks")


def test_three_stores_install_get_their_hooks_and_their_events_are_fetched_with_their_own_token(
    app_stack: AppStack,
) -> None:
    install(app_stack, *STORES)

    for store_hash in STORES:
        hooks = app_stack.hooks(store_hash)
        assert {hook["scope"] for hook in hooks} == {"store/order/*", "store/product/updated"}
        assert {hook["destination"] for hook in hooks} == {f"{app_stack.receiver}/webhooks/bigcommerce"}
        wait_for(
            lambda h=store_hash: (app_stack.stores.get(h) or _never).hooks.get("state") == "applied",
            10,
            f"the hooks outcome of {store_hash}",
        )
    fired = sum(len(app_stack.trigger(h, "store/order/statusUpdated")) for h in STORES)

    wait_for(lambda: len(app_stack.processed()) == fired, 30, "every fired event processed")

    by_store: dict[str, list[ProcessedEvent]] = {}
    for event in app_stack.processed():
        by_store.setdefault(event.store_hash, []).append(event)
    assert set(by_store) == set(STORES)
    tokens = {h: app_stack.stores.token(h) for h in STORES}
    assert len(set(tokens.values())) == len(STORES)  # one token per store
    for store_hash, events in by_store.items():
        assert all(event.record is not None and not event.deleted for event in events)
        fetches = app_stack.fetches(store_hash)
        assert any(str(f["path"]).startswith("/v2/orders/") for f in fetches)
        assert {f["token"] for f in fetches} == {tokens[store_hash]}  # the sandbox's log names the token
        assert app_stack.redis.zcard(f"bcwebhooks:budget:{store_hash}:sent") >= 1  # each store's own budget
    assert app_stack.context.ledger.pending() == 0


class _Never:
    hooks: dict[str, Any] = {}  # noqa: RUF012  # a stand-in record while a store is not recorded yet


_never = _Never()


def test_uninstall_stops_fetches_and_dead_letters_pending_events_with_the_reason(
    app_stack: AppStack, broker: RedisBroker
) -> None:
    install(app_stack, "sandbox", "sandbox2")
    waiting = parked_event("sandbox", 991)  # waiting in a delayed retry when the uninstall comes
    message = build_message(waiting)
    app_stack.context.ledger.open(waiting["event_id"], message, 120_000)
    broker.enqueue(message, delay=60_000)
    fetched_before = len(app_stack.fetches("sandbox"))

    report = app_stack.app_action("uninstall", "sandbox")

    assert report["status"] == 200 and not report["installed"]
    wait_for(lambda: _dead_reasons(app_stack) == {waiting["event_id"]: "uninstalled"}, 20, "the dead letter")
    assert app_stack.stores.token("sandbox") is None
    fired = len(app_stack.trigger("sandbox2", "store/order/statusUpdated"))
    late = parked_event("sandbox", 992)  # one that reached the queue just before the uninstall
    persist_now(app_stack.redis, late, 3 * 24 * 3600)
    wait_for(lambda: len(_dead_reasons(app_stack)) == 2, 20, "the late event's dead letter")
    wait_for(lambda: len(app_stack.processed()) == fired, 20, "sandbox2's events")
    assert {event.store_hash for event in app_stack.processed()} == {"sandbox2"}
    assert set(_dead_reasons(app_stack).values()) == {"uninstalled"}
    assert len(app_stack.fetches("sandbox")) == fetched_before  # nothing more fetched for the store
    assert app_stack.context.ledger.pending() == 0


@pytest.mark.parametrize("forge", ["secret", "expired", "audience", "issuer", "unsigned", "not_yet_valid"])
def test_a_forged_or_expired_uninstall_gets_401_and_changes_nothing(app_stack: AppStack, forge: str) -> None:
    install(app_stack, "sandbox3")
    token = app_stack.stores.token("sandbox3")

    report = app_stack.app_action("uninstall", "sandbox3", forge=forge)

    assert report["status"] == 401, report
    assert app_stack.stores.token("sandbox3") == token
    assert app_stack.stores.is_installed("sandbox3")


def test_a_forged_install_code_is_refused_and_records_nothing(app_stack: AppStack) -> None:
    report = app_stack.app_action("install", "sandbox2", forge="code")

    assert report["status"] == 400 and not report["installed"]
    assert app_stack.stores.get("sandbox2") is None


def test_an_event_whose_store_uninstalls_during_its_fetch_is_dead_lettered_as_uninstalled(
    app_stack: AppStack,
) -> None:
    from workers.actors import process_alone

    install(app_stack, "sandbox")
    assert app_stack.context.stores is not None
    store_context = app_stack.context.stores.for_store("sandbox")
    # In the ledger, not in a queue (this test is the worker), and received after the uninstall's sweep
    # began, which leaves such events to the worker's own check.
    event = parked_event("sandbox", 1)
    event["received_at_ms"] += 60_000
    app_stack.context.ledger.open(event["event_id"], build_message(event), 120_000)
    app_stack.app_action("uninstall", "sandbox")  # BigCommerce revokes the token: the fetch below gets 401

    process_alone(event, store_context)

    assert _dead_reasons(app_stack) == {event["event_id"]: "uninstalled"}


def parked_event(store_hash: str, order_id: int) -> PersistedCallback:
    return PersistedCallback(
        event_id=f"test:{store_hash}:{order_id}:{time.time_ns()}",
        webhook_id=None,
        received_at_ms=time.time_ns() // 1_000_000,
        envelope={
            "scope": "store/order/updated",
            "producer": f"stores/{store_hash}",
            "data": {"type": "order", "id": order_id},
        },
    )


def _dead_reasons(stack: AppStack) -> dict[str, str]:
    letters = dlq.list_dead_letters(stack.redis)
    return {str(letter.event_id): str(letter.reason.get("error")) for letter in letters}


def run_cli(
    argv: list[str],
    stack: AppStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **overrides: str,
) -> tuple[int, str]:
    """Run `bcwebhooks ARGV` in process against the stack, in app mode; (exit code, stdout)."""
    from service.cli import main

    settings_env = app_environ(
        BIGCOMMERCE_CLIENT_ID=DEFAULT_APP_CLIENT_ID,
        BIGCOMMERCE_CLIENT_SECRET=DEFAULT_APP_CLIENT_SECRET,
        BIGCOMMERCE_API_URL=stack.sandbox,
        BIGCOMMERCE_LOGIN_URL=stack.sandbox,
        REDIS_URL=stack.redis_url,
    )
    for name, value in {**settings_env, **overrides}.items():
        monkeypatch.setenv(name, value)
    code = main(argv)
    return code, capsys.readouterr().out


def test_the_stores_and_hooks_commands_in_app_mode(
    app_stack: AppStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    install(app_stack, "sandbox", "sandbox2")
    hooks_file = str(tmp_path / "hooks.toml")

    code, listed = run_cli(["stores", "list"], app_stack, monkeypatch, capsys)
    assert code == 0 and "sandbox" in listed and "sandbox2" in listed and "2 installed" in listed
    code, shown = run_cli(["stores", "show", "sandbox", "--json"], app_stack, monkeypatch, capsys)
    assert code == 0 and json.loads(shown)["hooks"]["state"] == "applied"
    assert str(app_stack.stores.token("sandbox")) not in listed + shown
    code, status = run_cli(
        ["hooks", "status", "--all-stores", "--file", hooks_file, "--allow-http"],
        app_stack,
        monkeypatch,
        capsys,
    )
    assert code == 0 and "== store sandbox" in status and "== store sandbox2" in status
    code, doctor = run_cli(["doctor", "--file", hooks_file, "--allow-http"], app_stack, monkeypatch, capsys)
    assert code == 0, doctor
    assert "✓ token endpoint" in doctor and "2 store(s) have the app installed" in doctor

    code, _ = run_cli(["stores", "forget", "sandbox"], app_stack, monkeypatch, capsys)

    assert code == 0
    assert app_stack.stores.get("sandbox") is None
    code, status = run_cli(
        ["hooks", "status", "--store", "sandbox", "--file", hooks_file], app_stack, monkeypatch, capsys
    )
    assert code == 1


def test_doctor_in_app_mode_reports_credentials_the_token_endpoint_refuses(
    app_stack: AppStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    wrong = "a-secret-that-is-not-the-apps-0123456789abcdef"

    code, doctor = run_cli(
        ["doctor", "--file", str(tmp_path / "hooks.toml"), "--allow-http"],
        app_stack,
        monkeypatch,
        capsys,
        BIGCOMMERCE_CLIENT_SECRET=wrong,
    )

    assert code == 1
    assert "✗ token endpoint refuses the app's credentials (401)" in doctor
    assert wrong not in doctor


def test_hooks_that_cannot_be_applied_are_recorded_as_failed_and_the_install_event_dead_lettered(
    app_stack: AppStack, tmp_path: Path
) -> None:
    (tmp_path / "hooks.toml").write_text(
        'receiver = "https://hooks.example.com/x"\n[[hook]]\nscope = "store/nope"\n'
    )

    report = app_stack.app_action("install", "sandbox2")

    assert report["status"] == 200 and report["installed"]
    wait_for(lambda: len(_dead_reasons(app_stack)) == 1, 30, "the install event's dead letter")
    record = app_stack.stores.get("sandbox2")
    assert record is not None and record.installed
    assert record.hooks["state"] == "failed" and "store/nope" in record.hooks["error"]
    [reason] = _dead_reasons(app_stack).values()
    assert "DeclarationError" in reason
    assert app_stack.hooks("sandbox2") == []


@pytest.mark.parametrize("app_stack", [{"coalesce_window_ms": "500"}], indirect=True)
def test_a_catalog_storm_in_one_store_is_coalesced_with_that_stores_token(app_stack: AppStack) -> None:
    install(app_stack, "sandbox", "sandbox2")
    fired = 0
    for _ in range(3):
        for product_id in range(1, 11):
            response = httpx.post(
                f"{app_stack.sandbox}/_sandbox/trigger",
                params={"store": "sandbox2"},
                json={"scope": "store/product/updated", "id": product_id},
            )
            fired += len(response.json()["events"])

    wait_for(lambda: len(app_stack.processed()) == fired, 60, "every event of the storm")

    assert {event.store_hash for event in app_stack.processed()} == {"sandbox2"}
    fetches = app_stack.fetches("sandbox2")
    assert any(f["path"] == "/v3/catalog/products" for f in fetches)  # batch fetches (id:in) were made
    assert {f["token"] for f in fetches} == {app_stack.stores.token("sandbox2")}
    assert app_stack.fetches("sandbox") == []
    assert app_stack.context.ledger.pending() == 0
