"""GET /dashboard from the outside: off without a token, 401 without the right one, a cookie that is not the
token, the data it shows from Redis, and replays handed to the workers."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from dramatiq import Message
from starlette.testclient import TestClient

from service.dashboard.routes import COOKIE_NAME
from service.events import DEAD_INDEX_KEY, DEAD_KEY, QUEUE_NAME, REPLAY_ACTOR_NAME
from service.pipeline_state import add_delivered, record_hook_health
from tests.conftest import make_settings
from workers.metrics import DeliveryTally

TOKEN = "a-dashboard-token-8e1f"


@pytest.fixture
def dashboard(make_client: Any) -> TestClient:
    client: TestClient = make_client(make_settings(BCWEBHOOKS_DASHBOARD_TOKEN=TOKEN))
    return client


def logged_in(client: TestClient) -> TestClient:
    response = client.get("/dashboard", params={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303
    return client


@pytest.mark.parametrize("token", [None, "", "   "])
def test_dashboard_is_off_without_a_token(make_client: Any, token: str | None) -> None:
    environ = {} if token is None else {"BCWEBHOOKS_DASHBOARD_TOKEN": token}
    client = make_client(make_settings(**environ))
    for path in ("/dashboard", "/dashboard/api/state", "/dashboard/static/dashboard.js"):
        assert client.get(path).status_code == 404


def test_a_missing_or_wrong_token_gets_401(dashboard: TestClient) -> None:
    page = dashboard.get("/dashboard")
    assert page.status_code == 401 and 'name="token"' in page.text
    assert dashboard.get("/dashboard", params={"token": "wrong"}).status_code == 401
    assert dashboard.post("/dashboard/login", data={"token": "wrong"}).status_code == 401
    for path in ("/dashboard/api/state", "/dashboard/panels"):
        assert dashboard.get(path).status_code == 401
        assert dashboard.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    dashboard.cookies.set(COOKIE_NAME, TOKEN)  # the token itself is not a session
    assert dashboard.get("/dashboard/api/state").status_code == 401


def test_login_sets_an_httponly_strict_cookie_that_is_not_the_token(dashboard: TestClient) -> None:
    response = dashboard.get("/dashboard", params={"token": TOKEN}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    page = dashboard.get("/dashboard")
    assert page.status_code == 200 and 'id="chart"' in page.text and "Dead letters" in page.text


def test_the_login_form_and_a_bearer_token_work_too(make_client: Any, dashboard: TestClient) -> None:
    form = dashboard.post("/dashboard/login", data={"token": TOKEN}, follow_redirects=False)
    assert form.status_code == 303 and COOKIE_NAME in form.headers["set-cookie"]
    other = make_client(make_settings(BCWEBHOOKS_DASHBOARD_TOKEN=TOKEN))
    assert other.get("/dashboard/api/state", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_state_shows_events_latency_queues_budgets_hooks_and_dead_letters(
    dashboard: TestClient, redis_client: redis.Redis
) -> None:
    now = time.time_ns() // 1_000_000
    minute = now // 60_000
    tally = DeliveryTally(redis_client)
    for family, latency_ms in [("order", 40), ("order", 60), ("cart", 80), ("other", 20_000)]:
        tally.add(family, latency_ms)  # what a worker tallies as it delivers
    tally.flush()
    add_delivered(redis_client, {(minute - 2, "family:order"): 5})  # two minutes ago: charted, not in p50
    redis_client.rpush(f"dramatiq:{QUEUE_NAME}", "a", "b")
    budget = {"left": 97, "quota": 150, "reset_at": now + 9000}
    redis_client.hset("bcwebhooks:budget:teststore:state", mapping=budget)  # as workers/budget.py keeps it
    record_hook_health(redis_client, "teststore", active=3, inactive=1, source="hooks status")
    letter = {"event_id": "id:msg_1", "scope": "store/order/created", "error": "MissingScope: grant Orders"}
    redis_client.hset(DEAD_KEY, "ledger-id-1", json.dumps({**letter, "retries": 0}))
    redis_client.zadd(DEAD_INDEX_KEY, {"ledger-id-1": now})

    state = logged_in(dashboard).get("/dashboard/api/state").json()

    series = state["chart"]["series"]
    assert {family: counts[-1] for family, counts in series.items()} == {"order": 2, "cart": 1, "other": 1}
    assert series["order"][-3] == 5 and sum(series["order"]) == 7
    assert len(state["chart"]["minutes"]) == 30 and state["chart"]["minutes"][-1] == minute * 60_000
    # 4 deliveries: slots 25-50 ms, 50-75 ms, 75-100 ms and 10-30 s; interpolated within the slot
    assert state["latency"] == {"count": 4, "minutes": 5, "p50_ms": 75, "p99_ms": 29_200}
    assert state["queues"]["bcwebhooks.events"] == 2
    [budget_shown] = state["budgets"]
    assert budget_shown == {
        "store": "teststore",
        "remaining": 97,
        "quota": 150,
        "reset_in_s": pytest.approx(9, abs=2),
        "paused": False,
    }
    assert [(h["store"], h["active"], h["inactive"]) for h in state["hooks"]] == [("teststore", 3, 1)]
    assert [(d["id"], d["error"]) for d in state["dead_letters"]] == [("ledger-id-1", letter["error"])]
    panels = dashboard.get("/dashboard/panels").text
    assert "MissingScope: grant Orders" in panels and 'data-id="ledger-id-1"' in panels


def test_replay_enqueues_the_workers_replay_actor(dashboard: TestClient, redis_client: redis.Redis) -> None:
    client = logged_in(dashboard)
    answer = client.post("/dashboard/api/replay", json={"ids": ["ledger-id-1"]})
    assert answer.status_code == 202
    queue = f"dramatiq:{QUEUE_NAME}"
    [redis_id] = redis_client.lrange(queue, 0, -1)
    message = Message.decode(redis_client.hget(f"{queue}.msgs", redis_id))
    assert (message.actor_name, message.args) == (REPLAY_ACTOR_NAME, (["ledger-id-1"],))
    assert message.message_id == answer.json()["request"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"ids": ["x"]}', "text/plain", 415),
        ("not json", "application/json", 400),
        ('{"ids": []}', "application/json", 400),
        ('{"ids": [1]}', "application/json", 400),
    ],
)
def test_bad_replays_are_refused_and_nothing_is_enqueued(
    dashboard: TestClient, redis_client: redis.Redis, body: str, content_type: str, status: int
) -> None:
    client = logged_in(dashboard)
    answer = client.post("/dashboard/api/replay", content=body, headers={"content-type": content_type})
    assert answer.status_code == status
    assert redis_client.llen(f"dramatiq:{QUEUE_NAME}") == 0


def test_replay_needs_the_session(dashboard: TestClient, redis_client: redis.Redis) -> None:
    assert dashboard.post("/dashboard/api/replay", json={"ids": ["x"]}).status_code == 401
    assert redis_client.llen(f"dramatiq:{QUEUE_NAME}") == 0


def test_the_token_is_never_logged(dashboard: TestClient, capfd: pytest.CaptureFixture[str]) -> None:
    dashboard.get("/dashboard", params={"token": "wrong-guess-value"})
    logged_in(dashboard).post("/dashboard/api/replay", json={"ids": ["x"]})
    output = "".join(capfd.readouterr())
    assert TOKEN not in output and "wrong-guess-value" not in output


def test_a_forward_dead_letter_names_its_destination(
    dashboard: TestClient, redis_client: redis.Redis
) -> None:
    letter = {"event_id": "id:msg_2", "scope": "store/cart/created", "error": "status 410", "retries": 0}
    redis_client.hset(DEAD_KEY, "forward-1", json.dumps({**letter, "destination": "crm"}))
    redis_client.zadd(DEAD_INDEX_KEY, {"forward-1": time.time_ns() // 1_000_000})

    state = logged_in(dashboard).get("/dashboard/api/state").json()

    assert [(d["id"], d["kind"], d["destination"]) for d in state["dead_letters"]] == [
        ("forward-1", "forward", "crm")
    ]
    assert "forward to crm" in dashboard.get("/dashboard/panels").text


def test_open_and_recent_incidents_are_shown_beside_hook_health(
    dashboard: TestClient, redis_client: redis.Redis
) -> None:
    from service.incidents import HOOK_DEACTIVATED, new_incident, open_incident, resolve_incident

    old, _ = open_incident(
        redis_client, new_incident("teststore", HOOK_DEACTIVATED, "hook:4", time.time() - 900, hook_id=4)
    )
    resolve_incident(redis_client, old.id, action="reactivated; gap 1-2 filed for backfill")
    current, _ = open_incident(
        redis_client,
        new_incident(
            "teststore", HOOK_DEACTIVATED, "hook:5", time.time() - 60, "status=deactivated", hook_id=5
        ),
    )

    state = logged_in(dashboard).get("/dashboard/api/state").json()
    panels = dashboard.get("/dashboard/panels").text

    assert [(i["id"], i["open"]) for i in state["incidents"]] == [(current.id, True), (old.id, False)]
    assert 'id="incidents"' in panels and "hook 5" in panels and "reactivated; gap 1-2 filed" in panels
