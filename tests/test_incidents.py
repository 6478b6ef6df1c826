"""Incidents in Redis (one open per store, kind and subject), `bcwebhooks incidents`, and signed alerts."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from standardwebhooks import Webhook

from service.cli import main
from service.incidents import (
    BLOCKLIST_RISK,
    DELIVERIES_FAILING,
    HOOK_DEACTIVATED,
    KINDS,
    Incident,
    count_open_by_kind,
    earliest_evidence,
    find_open,
    hook_subject,
    list_incidents,
    new_incident,
    open_incident,
    open_incident_async,
    open_incidents,
    resolve_incident,
    resolve_open_async,
)
from tests.destinations import Destination
from workers.alerts import Alerts

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()


def test_opening_twice_keeps_one_open_incident_until_it_is_resolved(redis_client: redis.Redis) -> None:
    first, created = open_incident(
        redis_client, new_incident("s1", HOOK_DEACTIVATED, hook_subject(3), 1000.0, "down", hook_id=3)
    )
    again, created_again = open_incident(
        redis_client, new_incident("s1", HOOK_DEACTIVATED, hook_subject(3), 2000.0, "still down", hook_id=3)
    )
    other, _ = open_incident(redis_client, new_incident("s2", HOOK_DEACTIVATED, hook_subject(3), 1500.0))

    assert created and not created_again and again.id == first.id
    assert again.since == 1000.0 and again.detail == "still down"
    assert count_open_by_kind(redis_client)[HOOK_DEACTIVATED] == 2
    assert set(count_open_by_kind(redis_client)) == set(KINDS)

    resolved = resolve_incident(redis_client, first.id, 3000.0, "reactivated")
    reopened, created_new = open_incident(
        redis_client, new_incident("s1", HOOK_DEACTIVATED, hook_subject(3), 4000)
    )

    assert resolved is not None and resolved.until == 3000.0 and resolved.actions == ["reactivated"]
    assert created_new and reopened.id != first.id
    assert [i.id for i in list_incidents(redis_client)] == [reopened.id, other.id, first.id]  # newest first
    assert [i.id for i in open_incidents(redis_client, "s1")] == [reopened.id]
    assert find_open(redis_client, "s2", HOOK_DEACTIVATED, hook_subject(3)) == other


def test_evidence_is_the_earliest_report_about_the_hook_its_destination_or_the_receiver(
    redis_client: redis.Redis,
) -> None:
    def report(store: str, kind: str, since: float, **about: object) -> None:
        open_incident(redis_client, new_incident(store, kind, f"x{since}", since, **about))  # type: ignore[arg-type]

    report("s1", DELIVERIES_FAILING, 500.0, hook_id=9)  # another hook, elsewhere
    report("s1", DELIVERIES_FAILING, 800.0, hook_id=9, destination="https://a/webhooks/bigcommerce")
    report("s2", DELIVERIES_FAILING, 100.0, hook_id=3)  # another store
    report("s1", DELIVERIES_FAILING, 900.0, hook_id=3)

    assert earliest_evidence(redis_client, "s1", 3, "https://b/webhooks/bigcommerce", 0) == 900.0
    assert earliest_evidence(redis_client, "s1", 3, "https://a/webhooks/bigcommerce", 0) == 800.0
    report("", BLOCKLIST_RISK, 700.0)  # the receiver's own early warning counts for every store
    assert earliest_evidence(redis_client, "s1", 3, None, 0) == 700.0
    # what started after the deactivation (at 650) does not explain it
    assert earliest_evidence(redis_client, "s1", 3, None, 0, before=650) is None


def test_the_receiver_opens_and_resolves_on_its_asyncio_client(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def open_then_resolve() -> tuple[Incident, bool, Incident | None]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            opened, created = await open_incident_async(
                client, new_incident("", BLOCKLIST_RISK, "receiver", 10.0)
            )
            return (
                opened,
                created,
                await resolve_open_async(client, "", BLOCKLIST_RISK, "receiver", "ratio back"),
            )
        finally:
            await client.aclose()

    opened, created, resolved = asyncio.run(open_then_resolve())

    assert created and resolved is not None and resolved.id == opened.id and resolved.until is not None
    assert open_incidents(redis_client) == []


@pytest.fixture
def cli_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    yield


def test_the_incidents_command_lists_them_newest_first_and_filters(
    redis_client: redis.Redis, cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _ = open_incident(
        redis_client, new_incident("s1", HOOK_DEACTIVATED, hook_subject(1), 1000.0, hook_id=1)
    )
    resolve_incident(redis_client, old.id, 2000.0, "reactivated; gap 1-2 filed for backfill")
    open_incident(
        redis_client, new_incident("s2", DELIVERIES_FAILING, hook_subject(2), 3000.0, "90001", hook_id=2)
    )

    assert main(["incidents", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert main(["incidents", "--open", "--store", "s2"]) == 0
    text = capsys.readouterr().out
    assert main(["incidents", "--open", "--store", "s1"]) == 0
    none = capsys.readouterr().out

    assert [(i["store"], i["open"]) for i in listed] == [("s2", True), ("s1", False)]
    assert listed[1]["actions"] == ["reactivated; gap 1-2 filed for backfill"]
    assert "OPEN" in text and "deliveries_failing" in text and "hook 2" in text
    assert none.strip() == "no open incidents"


def test_new_and_resolved_incidents_are_alerted_once_each_signed_for_the_reference_library(
    redis_client: redis.Redis,
) -> None:
    with Destination(SECRET) as sink:
        alerts = Alerts(redis_client, sink.url, SECRET, sleep=lambda _: None)
        incident, _ = open_incident(
            redis_client, new_incident("s1", HOOK_DEACTIVATED, hook_subject(1), 1000.0)
        )
        sent_open = alerts.send_pending()
        resolve_incident(redis_client, incident.id, 2000.0, "reactivated")
        sent_resolved = alerts.send_pending()
        sent_nothing = alerts.send_pending()
        received = list(sink.received)

    assert (sent_open, sent_resolved, sent_nothing) == (1, 1, 0)
    assert [r.verified for r in received] == [True, True]  # checked on arrival with the reference library
    verifier = Webhook(SECRET)
    bodies = [verifier.verify(r.body, r.headers) for r in received]
    assert [b["type"] for b in bodies] == ["incident.opened", "incident.resolved"]
    assert bodies[1]["incident"]["id"] == incident.id and bodies[1]["incident"]["until"] == 2000.0


def test_an_alert_that_cannot_be_delivered_is_tried_three_times_then_noted(redis_client: redis.Redis) -> None:
    waits: list[float] = []
    alerts = Alerts(redis_client, "http://127.0.0.1:9/alerts", SECRET, sleep=waits.append)
    open_incident(redis_client, new_incident("s1", HOOK_DEACTIVATED, hook_subject(1), 1000.0))

    assert alerts.send_pending() == 0
    assert alerts.send_pending() == 0  # not tried again

    [noted] = list_incidents(redis_client)
    assert len(waits) == 2 and noted.alerted == "failed:opened"
    assert "not delivered" in noted.actions[-1]


def test_the_workers_metrics_count_open_incidents_by_kind(redis_client: redis.Redis) -> None:
    from workers.metrics import RedisStateCollector

    open_incident(redis_client, new_incident("s1", HOOK_DEACTIVATED, hook_subject(1), 1000.0))
    open_incident(redis_client, new_incident("s2", HOOK_DEACTIVATED, hook_subject(1), 1000.0))

    [family] = [
        f
        for f in RedisStateCollector(redis_client, ["s1"]).collect()
        if f.name == "bcwebhooks_incidents_open"
    ]
    counts = {sample.labels["kind"]: sample.value for sample in family.samples}
    assert counts[HOOK_DEACTIVATED] == 2 and counts[DELIVERIES_FAILING] == 0
