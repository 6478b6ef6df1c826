"""HTTP outputs end to end: sandbox → receiver → worker → signed POSTs to real destinations on loopback."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from dramatiq import Message
from standardwebhooks import Webhook

from service.cli import build_parser
from service.events import LEDGER_KEY, LEDGER_MESSAGES_KEY
from tests.destinations import Destination, Received
from tests.e2e.conftest import Stack
from tests.servers import wait_for
from workers import dlq
from workers.commands import _dlq
from workers.ledger import FORWARD_ACTOR_NAME
from workers.outputs import DeclaredOutput, Forwarding, load_outputs, webhook_id_for

pytestmark = pytest.mark.e2e

FAST_RETRIES = {"min_backoff_ms": 50, "max_backoff_ms": 400}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def output(
    name: str, destination: Destination, scopes: tuple[str, ...] = ("*",), **policy: int
) -> DeclaredOutput:
    settings = {"retries": 20, **FAST_RETRIES, **policy}
    return DeclaredOutput(name, destination.url, scopes, new_secret(), timeout=30.0, **settings)


def use_outputs(stack: Stack, *declared: DeclaredOutput) -> dict[str, DeclaredOutput]:
    stack.context.forwarding = Forwarding.build(declared, stack.redis)
    return {d.name: d for d in declared}


def verified(received: Received, secret: str) -> dict[str, object]:
    """The event, through the reference library's verification (raises when the signature is wrong)."""
    event: dict[str, object] = Webhook(secret).verify(received.body, received.headers)
    return event


def forwards_pending(stack: Stack) -> list[Message[object]]:
    """The forward messages the ledger still tracks."""
    entries = stack.redis.zrange(LEDGER_KEY, 0, -1)
    payloads = stack.redis.hmget(LEDGER_MESSAGES_KEY, entries) if entries else []
    messages = [Message.decode(p) for p in payloads if p is not None]
    return [m for m in messages if m.actor_name == FORWARD_ACTOR_NAME]


def test_each_event_is_posted_signed_to_the_outputs_whose_scopes_match_it(
    stack: Stack, tmp_path: Path
) -> None:
    orders_secret, everything_secret = new_secret(), new_secret()
    with Destination() as orders, Destination() as everything:
        path = tmp_path / "outputs.toml"
        path.write_text(
            f'[[output]]\nname = "orders"\nurl = "{orders.url}"\nscopes = ["store/order/*"]\n'
            'secret = "env:ORDERS_SECRET"\n\n'
            f'[[output]]\nname = "all"\nurl = "{everything.url}"\nscopes = ["*"]\n'
            'secret = "env:ALL_SECRET"\ntimeout = 5\n'
        )
        environ = {"ORDERS_SECRET": orders_secret, "ALL_SECRET": everything_secret}
        stack.context.forwarding = Forwarding.build(load_outputs(path, environ), stack.redis)
        stack.hook("store/order/*")
        stack.hook("store/product/*")

        fired = stack.trigger("store/order/statusUpdated", 110) + stack.trigger("store/product/updated", 5)
        orders_fired = [e for e in fired if e["scope"].startswith("store/order/")]
        assert 0 < len(orders_fired) < len(fired)
        wait_for(
            lambda: len(everything.accepted()) == len(fired) and len(orders.accepted()) == len(orders_fired),
            20,
            "the forwards",
        )

        stream = {event.event_id: event for event in stack.stream()}
        for received in orders.accepted():
            event = verified(received, orders_secret)
            assert str(event["scope"]).startswith("store/order/")
            assert received.webhook_id == webhook_id_for("orders", str(event["event_id"]))
            assert event == json.loads(stream[str(event["event_id"])].to_json())
            assert received.headers["content-type"] == "application/json"
        for received in everything.accepted():
            event = verified(received, everything_secret)
            assert received.webhook_id == webhook_id_for("all", str(event["event_id"]))
            assert event == json.loads(stream[str(event["event_id"])].to_json())
        order = orders.accepted()[0]
        with pytest.raises(Exception, match="No matching signature"):
            verified(order, everything_secret)  # each output signs with its own secret
        wait_for(lambda: forwards_pending(stack) == [], 10, "the forwards to leave the ledger")
        assert dlq.list_dead_letters(stack.redis) == []


def test_a_destination_down_then_failing_then_recovered_receives_every_event_exactly_once(
    stack: Stack,
) -> None:
    events = 8
    destination = Destination()  # down: nothing listens on its port yet
    declared = use_outputs(stack, output("crm", destination, concurrency=4))
    stack.hook("store/customer/*")

    for record_id in range(1, events + 1):
        stack.trigger("store/customer/updated", record_id)
    wait_for(lambda: len(stack.stream()) == events, 30, "every event in the stream, the destination down")
    wait_for(
        lambda: (
            len(forwards_pending(stack)) == events
            and all(m.options.get("retries", 0) >= 1 for m in forwards_pending(stack))
        ),
        30,
        "every forward to have failed at least once",
    )
    destination.fail_next(5, 500)
    with destination.start():
        wait_for(lambda: len(destination.accepted()) >= events, 60, "every forward after the outage")
        wait_for(lambda: forwards_pending(stack) == [], 10, "the forwards to leave the ledger")

        accepted = [r.webhook_id for r in destination.accepted()]
        expected = {webhook_id_for("crm", e.event_id) for e in stack.stream()}
        assert sorted(accepted) == sorted(expected)  # each one, once
        assert [r.status for r in destination.received].count(500) == 5
        for received in destination.accepted():
            verified(received, declared["crm"].secret)
        assert dlq.list_dead_letters(stack.redis) == []


def test_a_slow_destination_delays_neither_the_stream_nor_another_destination(stack: Stack) -> None:
    orders = 6
    with Destination() as slow, Destination() as fast:
        use_outputs(stack, output("slow", slow, concurrency=1), output("fast", fast))
        stack.hook("store/order/*")
        slow.hold()
        try:
            events = sum(len(stack.trigger("store/order/created")) for _ in range(orders))
            wait_for(lambda: len(stack.stream()) == events, 30, "every event in the stream")
            wait_for(lambda: len(fast.accepted()) == events, 30, "every event at the fast destination")

            # All of that happened while the slow destination held its first request, unanswered.
            assert slow.received == [] and slow.in_flight == 1
        finally:
            slow.release()
        wait_for(lambda: len(slow.accepted()) == events, 60, "every event at the slow destination")

        assert slow.most_in_flight == 1  # its concurrency, never more
        assert max(r.sequence for r in fast.accepted()) < min(r.sequence for r in slow.accepted())
        assert {r.webhook_id for r in slow.accepted()} == {
            webhook_id_for("slow", e.event_id) for e in stack.stream()
        }


def test_a_4xx_is_dead_lettered_for_its_destination_alone_and_replayed_from_the_dlq(
    stack: Stack, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Destination() as gone, Destination() as fine:
        use_outputs(stack, output("gone", gone), output("fine", fine))
        gone.fail_next(1, 410)
        stack.hook("store/cart/*")

        stack.trigger("store/cart/created")
        wait_for(lambda: bool(dlq.list_dead_letters(stack.redis)), 20, "the forward's dead letter")

        [letter] = dlq.list_dead_letters(stack.redis)
        assert (letter.kind, letter.destination, letter.scope) == ("forward", "gone", "store/cart/created")
        assert "answered 410" in letter.reason["error"] and letter.reason["retries"] == 0
        wait_for(lambda: len(fine.accepted()) == 1, 10, "the other destination's forward")
        assert len(stack.stream()) == 1
        capsys.readouterr()
        assert (
            _dlq(
                stack.redis, redis_url, build_parser({}).parse_args(["dlq", "list", "--destination", "fine"])
            )
            == 0
        )
        assert "0 dead letter(s)" in capsys.readouterr().out.splitlines()  # worker log lines go there too
        assert (
            _dlq(
                stack.redis, redis_url, build_parser({}).parse_args(["dlq", "list", "--destination", "gone"])
            )
            == 0
        )
        assert f"{letter.id}  forward:gone  store/cart/created  retries=0" in capsys.readouterr().out

        args = build_parser({}).parse_args(["dlq", "replay", "--destination", "gone"])
        assert _dlq(stack.redis, redis_url, args) == 0
        assert "replayed 1 dead letter(s)" in capsys.readouterr().out
        wait_for(lambda: len(gone.accepted()) == 1, 20, "the replayed forward")

        assert gone.accepted()[0].webhook_id == gone.received[0].webhook_id  # the same id as the refused one
        assert dlq.list_dead_letters(stack.redis) == []
        wait_for(lambda: forwards_pending(stack) == [], 10, "the forwards to leave the ledger")
        assert (len(fine.accepted()), len(stack.stream())) == (1, 1)


def test_a_destination_failing_past_its_retries_is_dead_lettered_with_the_last_reason(stack: Stack) -> None:
    with Destination() as failing:
        use_outputs(stack, output("failing", failing, retries=2))
        failing.fail_next(100, 503)
        stack.hook("store/customer/*")

        stack.trigger("store/customer/updated", 4)
        wait_for(lambda: bool(dlq.list_dead_letters(stack.redis)), 20, "the forward's dead letter")

        [letter] = dlq.list_dead_letters(stack.redis)
        assert letter.destination == "failing"
        assert letter.reason["error"] == "DestinationUnavailable: answered 503"
        assert letter.reason["retries"] == 3 and len(failing.received) == 3
        assert forwards_pending(stack) == []
