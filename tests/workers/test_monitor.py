"""The hook monitor against the in-process sandbox over real HTTP: deactivated hooks, reactivation once the
receiver is ready, the gaps it files, blocked domains, and the lock that lets one monitor run."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.bigcommerce import ApiClient, StoreApi
from service.cli import main
from service.gaps import GAPS_STREAM, Gap
from service.incidents import (
    DELIVERIES_FAILING,
    DOMAIN_BLOCKED,
    HOOK_DEACTIVATED,
    HOOK_MISSING,
    RECEIVER_DOWN,
    hook_subject,
    list_incidents,
    new_incident,
    open_incident,
    open_incidents,
)
from service.pipeline_state import hook_health
from service.sandbox.app import SandboxConfig, create_sandbox_app
from service.sandbox.delivery import DomainHealth
from service.sandbox.hooks import Hook
from tests.servers import ThreadedUvicorn
from workers.monitor import GAP_MARGIN_SECONDS, HookMonitor, StoreUnavailable, readiness_url
from workers.monitor_loop import MONITOR_LOCK_KEY, NEXT_PASS_KEY, MonitorLoop
from workers.monitor_schedule import DUE_KEY

SCOPES = ("store/order/*", "store/product/*")
LOOKBACK = 7200.0


@dataclass
class Receiver:
    """A stand-in receiver whose /readyz answers `status`."""

    status: int = 503

    def app(self) -> Starlette:
        async def readyz(request: Request) -> JSONResponse:
            return JSONResponse({}, status_code=self.status)

        return Starlette(routes=[Route("/readyz", readyz)])


@dataclass
class Setup:
    sandbox: Any  # the sandbox's SandboxState
    receiver: Receiver
    destination: str
    monitor: HookMonitor
    hooks: dict[str, int]  # scope -> hook id
    sandbox_url: str

    def hook(self, scope: str) -> Hook:
        found: Hook = self.sandbox.hooks.hooks[self.hooks[scope]]
        return found


@pytest.fixture
def setup(redis_client: redis.Redis, tmp_path: Path) -> Iterator[Setup]:
    receiver = Receiver(status=200)
    app = create_sandbox_app(SandboxConfig(allow_http=True))
    with ThreadedUvicorn(receiver.app()) as ready_server, ThreadedUvicorn(app) as sandbox:
        destination = f"{ready_server.base_url}/webhooks/bigcommerce"
        declaration = tmp_path / "hooks.toml"
        declaration.write_text(
            f'receiver = "{destination}"\n' + "".join(f'[[hook]]\nscope = "{s}"\n' for s in SCOPES)
        )
        api = StoreApi(ApiClient(sandbox.base_url, "sandbox", "sandbox-token"))
        hooks = {scope: int(api.create_hook(scope, destination, True, None)["id"]) for scope in SCOPES}
        monitor = HookMonitor(
            redis_client, lambda _: api, declaration, allow_http=True, lookback_seconds=LOOKBACK
        )
        yield Setup(app.state.sandbox, receiver, destination, monitor, hooks, sandbox.base_url)
        api.client.close()


def gaps(client: redis.Redis) -> list[Gap]:
    return [Gap.from_json(fields[b"gap"]) for _, fields in client.xrange(GAPS_STREAM)]


def deactivate(setup: Setup, scope: str, ago: float) -> Hook:
    """Switch a hook off as BigCommerce does, `ago` seconds ago; the hook was created long before."""
    hook = setup.hook(scope)
    setup.sandbox.hooks.deactivate(hook, "all delivery attempts failed over 48 hours")
    hook.updated_at = int(time.time() - ago)
    hook.created_at = int(time.time() - 10 * LOOKBACK)
    return hook


def test_readiness_is_asked_beside_the_receiver_path() -> None:
    assert readiness_url("https://h.example.com/webhooks/bigcommerce") == "https://h.example.com/readyz"
    assert readiness_url("https://h.example.com/bc/webhooks/bigcommerce") == "https://h.example.com/bc/readyz"
    assert (
        readiness_url("https://h.example.com/webhooks/bigcommerce/delivery-exceptions")
        == "https://h.example.com/readyz"
    )
    assert readiness_url("https://h.example.com/other", "http://10.0.0.5:8000/readyz") == (
        "http://10.0.0.5:8000/readyz"
    )


def test_all_active_hooks_record_health_and_no_incident(setup: Setup, redis_client: redis.Redis) -> None:
    report = setup.monitor.check_store("sandbox")

    assert (report.checked, report.active, report.inactive, report.error) == (2, 2, 0, None)
    [health] = hook_health(redis_client)
    assert (health.store, health.active, health.inactive, health.source) == ("sandbox", 2, 0, "monitor")
    assert list_incidents(redis_client) == []


def test_a_deactivated_hook_is_reactivated_only_once_the_receiver_is_ready_and_its_gap_is_filed(
    setup: Setup, redis_client: redis.Redis
) -> None:
    setup.receiver.status = 503
    hook = deactivate(setup, "store/order/*", ago=600)
    stopped = hook.updated_at

    waiting = setup.monitor.check_store("sandbox")
    again = setup.monitor.check_store("sandbox")
    [incident] = open_incidents(redis_client, "sandbox")
    assert (waiting.inactive, waiting.waiting, waiting.reactivated) == (1, [hook.id], [])
    assert again.reactivated == [] and not hook.is_active
    assert (incident.kind, incident.hook_id, incident.since) == (HOOK_DEACTIVATED, hook.id, hook.updated_at)
    assert len(incident.actions) == 1 and "waiting for the receiver" in incident.actions[0]
    assert gaps(redis_client) == []
    [down] = open_incidents(redis_client, "")  # the deployment's receiver does not answer its probe
    assert down.kind == RECEIVER_DOWN and down.subject == f"ready:{readiness_url(setup.destination)}"

    setup.receiver.status = 200
    before = time.time()
    done = setup.monitor.check_store("sandbox")

    assert done.reactivated == [hook.id] and hook.is_active and hook.status == "active"
    [gap] = gaps(redis_client)
    assert gap.store_hash == "sandbox" and gap.scopes == ("store/order/*",)
    assert gap.since == pytest.approx(stopped - LOOKBACK - GAP_MARGIN_SECONDS, abs=1)
    assert gap.until is not None and before <= gap.until <= time.time()
    assert [i.open for i in list_incidents(redis_client)] == [False, False]  # the receiver's too
    [resolved] = [i for i in list_incidents(redis_client) if i.kind == HOOK_DEACTIVATED]
    assert not resolved.open and "reactivated" in resolved.actions[-1]
    assert hook_health(redis_client)[0].active == 1  # this pass saw it down; the next one sees it up
    assert setup.monitor.check_store("sandbox").active == 2


def test_a_gap_starts_at_the_earliest_report_of_failing_deliveries(
    setup: Setup, redis_client: redis.Redis
) -> None:
    hook = deactivate(setup, "store/product/*", ago=60)
    failing_since = time.time() - 3000
    open_incident(
        redis_client,
        new_incident("sandbox", DELIVERIES_FAILING, hook_subject(hook.id), failing_since, hook_id=hook.id),
    )
    setup.receiver.status = 200

    setup.monitor.check_store("sandbox")

    [gap] = gaps(redis_client)
    assert gap.since == pytest.approx(failing_since - GAP_MARGIN_SECONDS, abs=1)
    assert gap.scopes == ("store/product/*",)


def test_a_hook_reactivated_by_someone_else_closes_the_incident_and_files_the_gap_up_to_then(
    setup: Setup, redis_client: redis.Redis
) -> None:
    setup.receiver.status = 503
    hook = deactivate(setup, "store/order/*", ago=300)
    setup.monitor.check_store("sandbox")  # the receiver is not ready: incident, no reactivation
    setup.sandbox.hooks.update(hook.client_id, hook.id, {"is_active": True})  # `hooks apply` did it

    report = setup.monitor.check_store("sandbox")

    [gap] = report.gaps
    assert gap.until == hook.updated_at
    assert [i.open for i in list_incidents(redis_client) if i.store == "sandbox"] == [False]


def test_a_refused_reactivation_is_reported_and_tried_again_next_pass(
    setup: Setup, redis_client: redis.Redis
) -> None:
    hook = deactivate(setup, "store/order/*", ago=60)
    setup.receiver.status = 200
    fault = {"status": 422, "count": 1, "path_prefix": f"/v3/hooks/{hook.id}"}
    assert httpx.post(f"{setup.sandbox_url}/_sandbox/faults", json=fault).status_code == 200

    refused = setup.monitor.check_store("sandbox")
    [still_open] = open_incidents(redis_client, "sandbox")
    active_after_refusal = hook.is_active
    retried = setup.monitor.check_store("sandbox")

    assert refused.error is not None and "422" in refused.error and refused.gaps == []
    assert still_open.kind == HOOK_DEACTIVATED and not active_after_refusal
    assert retried.reactivated == [hook.id] and len(gaps(redis_client)) == 1


def test_a_store_without_a_token_is_reported_not_raised(setup: Setup, redis_client: redis.Redis) -> None:
    def uninstalled(store_hash: str) -> StoreApi:
        raise StoreUnavailable(f"store {store_hash} does not have the app installed")

    report = dataclasses.replace(setup.monitor, api_for=uninstalled).check_store("gone")

    assert report.error == "store gone does not have the app installed" and hook_health(redis_client) == []


def test_incidents_of_hooks_no_longer_declared_or_gone_are_closed(
    setup: Setup, redis_client: redis.Redis
) -> None:
    setup.receiver.status = 503
    hook = deactivate(setup, "store/order/*", ago=60)
    other = setup.hook("store/product/*")
    open_incident(redis_client, new_incident("sandbox", DELIVERIES_FAILING, hook_subject(other.id), 1.0))
    setup.monitor.check_store("sandbox")  # the receiver is not ready: the incident stays open
    setup.monitor.hooks_file.write_text(
        f'receiver = "{setup.destination}"\n[[hook]]\nscope = "store/cart/*"\n'
    )
    setup.sandbox.hooks.hooks.pop(other.id)

    setup.monitor.check_store("sandbox")

    closed = {i.hook_id: i.actions[-1] for i in list_incidents(redis_client) if not i.open}
    assert closed == {hook.id: "no longer declared in hooks.toml", None: "the hook is no longer on the store"}


def test_a_missing_declared_hook_is_an_incident_until_it_is_back(
    setup: Setup, redis_client: redis.Redis
) -> None:
    hook = setup.sandbox.hooks.hooks.pop(setup.hooks["store/order/*"])

    report = setup.monitor.check_store("sandbox")
    [missing] = open_incidents(redis_client, "sandbox")
    setup.sandbox.hooks.hooks[hook.id] = hook
    setup.monitor.check_store("sandbox")

    assert report.inactive == 1 and missing.kind == HOOK_MISSING and missing.scope == "store/order/*"
    assert open_incidents(redis_client, "sandbox") == []


def test_a_blocked_domain_is_an_incident_and_its_window_a_gap_once_the_block_ends(
    setup: Setup, redis_client: redis.Redis
) -> None:
    client_id = setup.hook("store/order/*").client_id
    block = DomainHealth(url="http://127.0.0.1", blocked_until=time.time() + 100)
    setup.sandbox.deliverer.domains[(client_id, "127.0.0.1")] = block

    blocked = setup.monitor.check_store("sandbox")
    [incident] = open_incidents(redis_client, "sandbox")
    due = redis_client.zscore(DUE_KEY, "sandbox")
    block.blocked_until = 0.0
    over = setup.monitor.check_store("sandbox")

    assert blocked.blocked == ["127.0.0.1"] and blocked.gaps == []
    assert incident.kind == DOMAIN_BLOCKED and incident.subject == "domain:127.0.0.1"
    assert incident.since == pytest.approx(time.time() - 80, abs=5)  # 180 s block, 100 s left
    assert due is not None and due / 1000 == pytest.approx(time.time() + 101, abs=5)  # a pass at its end
    [gap] = over.gaps
    assert gap.since == pytest.approx(incident.since - GAP_MARGIN_SECONDS, abs=1)
    assert set(gap.scopes) == set(SCOPES)
    assert open_incidents(redis_client, "sandbox") == []


def test_one_monitor_runs_passes_and_another_takes_over_when_its_lock_expires(
    setup: Setup, redis_client: redis.Redis
) -> None:
    first = MonitorLoop(setup.monitor, lambda: ["sandbox"], interval=300)
    second = MonitorLoop(setup.monitor, lambda: ["sandbox"], interval=300)
    redis_client.set(NEXT_PASS_KEY, 0)  # a pass over every store is due

    ran_first, ran_second = first.tick(), second.tick()
    redis_client.set(NEXT_PASS_KEY, 0)
    redis_client.pexpire(MONITOR_LOCK_KEY, 1)  # the first holder died; its lock runs out
    time.sleep(0.01)
    taken_over = second.tick()

    assert [r.store for r in ran_first] == ["sandbox"] and ran_second == []
    assert [r.store for r in taken_over] == ["sandbox"]
    assert first.tick() == []  # the lock is the second's now


def test_the_first_pass_comes_one_interval_after_start_unless_a_store_asks_for_one(
    setup: Setup, redis_client: redis.Redis
) -> None:
    loop = MonitorLoop(setup.monitor, lambda: ["sandbox"], interval=300)
    assert loop.tick() == []
    redis_client.zadd(DUE_KEY, {"sandbox": 0})
    assert [r.store for r in loop.tick()] == ["sandbox"]


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """The command configures logging for the process; put it back afterwards."""
    config = structlog.get_config()
    handlers = logging.root.handlers[:]
    yield
    logging.root.handlers[:] = handlers
    structlog.configure(**config)


def test_monitor_once_reports_the_store_and_reactivates_once_the_receiver_is_ready(
    setup: Setup,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logging_restored: None,
) -> None:
    environ = {
        "REDIS_URL": redis_url,
        "BIGCOMMERCE_STORE_HASH": "sandbox",
        "BIGCOMMERCE_ACCESS_TOKEN": "sandbox-token",
        "BIGCOMMERCE_CLIENT_SECRET": "sandbox-secret",
        "BIGCOMMERCE_API_URL": setup.sandbox_url,
        "BCWEBHOOKS_HOOKS_FILE": str(setup.monitor.hooks_file),
        "BCWEBHOOKS_HOOKS_ALLOW_HTTP": "true",
        "BCWEBHOOKS_LOG_FORMAT": "console",  # no exit-time flush of pytest's captured stderr
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    setup.receiver.status = 503
    hook = deactivate(setup, "store/order/*", ago=60)

    waiting = main(["monitor", "--once"])
    first = capsys.readouterr().out
    setup.receiver.status = 200
    done = main(["monitor", "--once", "--json"])
    [report] = json.loads(capsys.readouterr().out)

    assert (
        waiting == 1
        and "waiting for the receiver to reactivate" in first
        and "1/2 declared hooks active" in first
    )
    assert done == 1 and report["reactivated"] == [hook.id] and len(report["gaps"]) == 1
    assert main(["monitor", "--once"]) == 0 and "2/2 declared hooks active" in capsys.readouterr().out
