"""Handler module for the crash test: the first run of each event hangs, later runs finish at once."""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from workers.events import ProcessedEvent
from workers.handlers import handler

HANG_SECONDS = 120


@handler("store/subscriber/created")
def hang_the_first_time(event: ProcessedEvent, api: Any) -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    runs = client.incr(f"crash-test:runs:{event.event_id}")
    if runs == 1:
        time.sleep(HANG_SECONDS)  # the test SIGKILLs the worker during this sleep
    client.set(f"crash-test:finished:{event.event_id}", str(time.time()))
