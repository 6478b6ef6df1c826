"""The workers' built-in reaction to deliveryException events (90001 / 90002 / 90003), run once per event
as a step of its delivery, beside the stream output."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from service.gaps import GAPS_STREAM, Gap
from service.incidents import (
    DELIVERIES_FAILING,
    DOMAIN_BLOCKED,
    HOOK_DISABLING,
    list_incidents,
    open_incidents,
)
from workers.events import ProcessedEvent
from workers.handlers import HandlerRegistry
from workers.hook_exceptions import REACTION_STEP
from workers.ledger import DeliveryLedger
from workers.monitor import GAP_MARGIN_SECONDS, HookMonitor
from workers.monitor_schedule import DUE_KEY
from workers.outputs import StreamOutput
from workers.processing import STREAM_STEP, WorkerContext, deliver

STORE = "teststore"
DESTINATION = "https://hooks.example.com/webhooks/bigcommerce"
HOOK = {"id": 7, "scope": "store/order/*", "destination": DESTINATION, "is_active": True}


def exception_event(code: int, n: int = 1, created_at: int | None = None) -> ProcessedEvent:
    data = {"type": "webhook", "id": 7, "error_code": code, "message": f"code {code}"}
    created = created_at or int(time.time()) - 30
    envelope = {"scope": "store/hook/deliveryException", "data": data, "created_at": created}
    return ProcessedEvent(
        event_id=f"id:exception-{code}-{n}",
        webhook_id=None,
        scope="store/hook/deliveryException",
        store_hash=STORE,
        resource_type="hook",
        resource_id="7",
        record=dict(HOOK),
        deleted=False,
        envelope=envelope,
        received_at_ms=int(time.time() * 1000),
        fetched_at_ms=int(time.time() * 1000),
    )


@pytest.fixture
def context(redis_client: redis.Redis) -> WorkerContext:
    return WorkerContext(
        api=None,
        redis=redis_client,
        output=StreamOutput(redis_client, "bcwebhooks:events", 1000),
        handlers=HandlerRegistry(),
        store_hash=STORE,
        done_ttl_seconds=3600,
        ledger=DeliveryLedger(redis_client, 3600),
    )


def test_90001_records_failing_deliveries_once_and_still_reaches_the_stream(
    context: WorkerContext, redis_client: redis.Redis
) -> None:
    first = exception_event(90001, created_at=int(time.time()) - 600)
    ran = deliver(first, context)
    again = deliver(first, context)  # the same event again (a retry): nothing twice
    deliver(exception_event(90001, n=2), context)  # ten minutes later: the same incident

    assert ran == [STREAM_STEP, REACTION_STEP] and again == []
    assert redis_client.xlen("bcwebhooks:events") == 2
    [incident] = list_incidents(redis_client)
    assert (incident.kind, incident.store, incident.hook_id) == (DELIVERIES_FAILING, STORE, 7)
    assert incident.since == first.envelope["created_at"] and incident.destination == DESTINATION
    assert "90001" in incident.detail
    assert redis_client.zcard(DUE_KEY) == 0  # no pass needed: BigCommerce is retrying


def test_90002_records_the_coming_disable_and_asks_for_a_pass_now(
    context: WorkerContext, redis_client: redis.Redis
) -> None:
    deliver(exception_event(90002), context)

    [incident] = open_incidents(redis_client)
    assert incident.kind == HOOK_DISABLING and incident.hook_id == 7
    due = redis_client.zscore(DUE_KEY, STORE)
    assert due is not None and due <= time.time() * 1000


def test_90003_records_the_block_and_the_next_pass_after_it_files_the_window(
    context: WorkerContext, redis_client: redis.Redis, tmp_path: Path
) -> None:
    blocked_at = int(time.time()) - 200
    deliver(exception_event(90003, created_at=blocked_at), context)
    [incident] = open_incidents(redis_client)
    assert (incident.kind, incident.subject) == (DOMAIN_BLOCKED, "domain:hooks.example.com")
    assert redis_client.zscore(DUE_KEY, STORE) is not None

    declaration = tmp_path / "hooks.toml"
    declaration.write_text(f'receiver = "{DESTINATION}"\n[[hook]]\nscope = "store/order/*"\n')
    monitor = HookMonitor(redis_client, lambda _: FakeApi(), declaration, probe=lambda url: True)  # type: ignore[arg-type,return-value]
    report = monitor.check_store(STORE)  # the admin view lists no block any more

    [gap] = [Gap.from_json(fields[b"gap"]) for _, fields in redis_client.xrange(GAPS_STREAM)]
    assert report.gaps == [gap]
    assert gap.since == blocked_at - GAP_MARGIN_SECONDS and gap.scopes == ("store/order/*",)
    assert open_incidents(redis_client) == []


def test_an_unknown_code_is_delivered_without_an_incident(
    context: WorkerContext, redis_client: redis.Redis
) -> None:
    deliver(exception_event(12345), context)

    assert list_incidents(redis_client) == [] and redis_client.xlen("bcwebhooks:events") == 1


class FakeApi:
    """Just what a monitor pass reads: one active hook, no blocked domain."""

    def list_hooks(self) -> list[dict[str, Any]]:
        return [dict(HOOK)]

    def hooks_admin(self) -> dict[str, Any]:
        return {"hooks_list": [{**HOOK, "status": "active"}], "blocked_domains": []}
