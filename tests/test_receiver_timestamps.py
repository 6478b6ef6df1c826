"""Old signed callbacks: accepted once while the dedup window covers their replays, refused beyond it.

BigCommerce does not say whether a retry carries a fresh `webhook-timestamp`. If it keeps the first
attempt's, refusing timestamps older than the 300 s tolerance would lose every event whose first delivery
failed. The receiver accepts them up to `dedup window - tolerance` old; the signature covers the
`webhook-id`, which the dedup mark then covers for longer than any replay stays acceptable.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from service.sandbox.access import DEFAULT_CLIENT_SECRET
from service.sandbox.app import DEFAULT_STORE_HASH, SandboxConfig, create_sandbox_app
from service.sandbox.delivery import RETRY_SCHEDULE_SECONDS, RetryTimestamp
from tests.conftest import make_settings
from tests.helpers import encode, envelope, queued_callbacks, signed
from tests.sandbox.test_delivery import Catcher, hook, trigger
from tests.servers import ThreadedUvicorn, wait_for

HOUR = 3600
WINDOW = 72 * HOUR
TOLERANCE = 300


def post(client: TestClient, raw: bytes, headers: dict[str, str]) -> Any:
    return client.post("/webhooks/bigcommerce", content=raw, headers=headers)


def test_an_unseen_old_signed_callback_is_accepted_and_enqueued_once(
    client: TestClient, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())
    headers = signed(raw, webhook_id="msg_old", timestamp=int(time.time()) - 47 * HOUR)

    first = post(client, raw, headers)
    replay = post(client, raw, headers)

    assert (first.status_code, replay.status_code) == (200, 200)
    assert [callback["webhook_id"] for callback in queued_callbacks(redis_client)] == ["msg_old"]


def test_a_replay_of_an_accepted_callback_is_a_duplicate_even_when_it_is_old(
    client: TestClient, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())
    first_attempt = int(time.time())
    assert post(client, raw, signed(raw, webhook_id="msg_1", timestamp=first_attempt)).status_code == 200

    # The same signed request captured and replayed just before the oldest age the receiver accepts.
    oldest = first_attempt - (WINDOW - TOLERANCE) + 5
    replayed = post(client, raw, signed(raw, webhook_id="msg_1", timestamp=oldest))

    assert replayed.status_code == 200
    assert len(queued_callbacks(redis_client)) == 1
    ttl = int(redis_client.ttl(next(iter(redis_client.scan_iter("bcwebhooks:seen:*")))))
    assert ttl > WINDOW - 60  # the mark outlives every replay the receiver would still accept


def test_a_callback_older_than_the_window_minus_the_tolerance_is_refused(
    client: TestClient, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())
    too_old = int(time.time()) - (WINDOW - TOLERANCE) - 5

    response = post(client, raw, signed(raw, timestamp=too_old))

    assert response.status_code == 401
    assert response.json()["error"] == "timestamp_too_old"
    assert redis_client.dbsize() == 0


def test_the_accepted_age_follows_the_configured_window(make_client: Any, redis_client: redis.Redis) -> None:
    client = make_client(make_settings(BCWEBHOOKS_DEDUP_WINDOW_SECONDS=str(96 * HOUR)))
    raw = encode(envelope())

    eighty_hours = post(client, raw, signed(raw, timestamp=int(time.time()) - 80 * HOUR))
    ninety_six_hours = post(client, raw, signed(raw, timestamp=int(time.time()) - 96 * HOUR))

    assert (eighty_hours.status_code, ninety_six_hours.status_code) == (200, 401)


def test_timestamps_in_the_future_beyond_the_tolerance_are_still_refused(
    client: TestClient, redis_client: redis.Redis
) -> None:
    raw = encode(envelope())

    response = post(client, raw, signed(raw, timestamp=int(time.time()) + TOLERANCE + 30))

    assert response.status_code == 401
    assert response.json()["error"] == "timestamp_too_new"
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize("mode", list(RetryTimestamp))
def test_sandbox_retries_carry_the_chosen_timestamp_and_the_receiver_accepts_them_all(
    mode: RetryTimestamp, make_client: Any, redis_client: redis.Redis
) -> None:
    scale = 50_000.0  # the 48-hour schedule in about 3.5 s
    failing = Catcher(status=500)  # makes the sandbox go through every retry
    config = SandboxConfig(allow_http=True, time_scale=scale, retry_timestamp=mode)
    with ThreadedUvicorn(failing.app()) as sink, ThreadedUvicorn(create_sandbox_app(config)) as sandbox:
        hook(sandbox.base_url, "store/subscriber/*", f"{sink.base_url}/hooks")
        started = time.time()
        trigger(sandbox.base_url, "store/subscriber/created")
        wait_for(lambda: len(failing.received) == len(RETRY_SCHEDULE_SECONDS) + 1, 30, "every attempt")
        finished = time.time()

    ages = [finished - int(headers["webhook-timestamp"]) for headers, _ in failing.received]
    if mode is RetryTimestamp.FRESH:
        assert all(-1 <= age <= finished - started + 2 for age in ages), ages
    else:
        assert ages[0] <= finished - started + 2  # whole seconds
        # The last retry is as old as the whole schedule (plus the scaled time the attempts took).
        assert sum(RETRY_SCHEDULE_SECONDS) <= ages[-1] < WINDOW - TOLERANCE, ages
    receiver = make_client(
        make_settings(
            BIGCOMMERCE_STORE_HASH=DEFAULT_STORE_HASH, BIGCOMMERCE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET
        )
    )
    answers = [post(receiver, body, headers).status_code for headers, body in reversed(failing.received)]
    assert answers == [200] * len(failing.received)
    assert len(queued_callbacks(redis_client)) == 1
