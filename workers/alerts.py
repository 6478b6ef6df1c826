"""Optional alerts: each new and each resolved incident POSTed as JSON to BCWEBHOOKS_ALERT_URL, signed the
Standard Webhooks way with BCWEBHOOKS_ALERT_SECRET (as our HTTP outputs sign events), from a background
thread so the monitor never waits for it.

Whatever opened or resolved the incident (the monitor, a deliveryException reaction, the receiver), the
incident record remembers which of its states was last sent (`alerted`), and `send_pending` sends those
that lag; the monitor's loop calls it after each pass and every 15 s, so the incidents the receiver and the
deliveryException reactions record are sent from there too. A POST is tried ALERT_ATTEMPTS times; a failure
is logged and noted on the incident, and not tried again (an alert is a courtesy; the incident is what is
kept).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import redis
import structlog

from service.incidents import Incident, list_incidents, note_action
from workers.outputs.http import signed_headers

ALERT_ATTEMPTS = 3
ALERT_BACKOFF_SECONDS = (1.0, 3.0)
ALERT_TIMEOUT_SECONDS = 10.0
PENDING_SCAN = 200  # the newest incidents looked at for alerts not yet sent

log = structlog.get_logger("bcwebhooks.alerts")


def alert_body(incident: Incident, state: str) -> str:
    """The JSON an alert carries: what happened (`incident.opened` / `incident.resolved`) and the incident."""
    return json.dumps(
        {"type": f"incident.{state}", "timestamp": int(time.time()), "incident": incident.public()},
        separators=(",", ":"),
    )


def _state(incident: Incident) -> str:
    return "opened" if incident.open else "resolved"


@dataclass
class Alerts:
    """Sends the alerts of incidents whose last sent state lags.

    Parameters:
      client: Redis (the incidents).
      url: where to POST.
      secret: the Standard Webhooks secret (None: unsigned).
      sleep: how to wait between attempts (tests pass a recorder).
    """

    client: redis.Redis
    url: str
    secret: str | None = None
    sleep: Callable[[float], None] = time.sleep
    _wake: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def send_pending(self) -> int:
        """Send what lags, oldest first; returns how many were sent."""
        with self._lock:
            sent = 0
            for incident in reversed(list_incidents(self.client, limit=PENDING_SCAN)):
                state = _state(incident)
                if incident.alerted in (state, f"failed:{state}"):
                    continue
                ok = self._post(alert_body(incident, state))
                note_action(
                    self.client,
                    incident.id,
                    "" if ok else f"alert {state} not delivered to BCWEBHOOKS_ALERT_URL",
                    alerted=state if ok else f"failed:{state}",
                )
                sent += ok
            return sent

    def wake(self) -> None:
        """Send what lags from the background thread (started on first use)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="bcwebhooks-alerts", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.send_pending()
            except Exception as error:  # Redis down: the next wake tries again
                log.warning("alert.failed", error=f"{type(error).__name__}: {error}")

    def _post(self, body: str) -> bool:
        webhook_id = f"msg_{uuid.uuid4().hex}"
        for attempt in range(ALERT_ATTEMPTS):
            headers = {"content-type": "application/json"}
            if self.secret:
                headers.update(signed_headers(self.secret, webhook_id, body))
            try:
                response = httpx.post(self.url, content=body, headers=headers, timeout=ALERT_TIMEOUT_SECONDS)
                if response.is_success:
                    return True
                error = f"status {response.status_code}"
            except httpx.HTTPError as failure:
                error = type(failure).__name__
            log.warning("alert.attempt_failed", attempt=attempt + 1, error=error)
            if attempt < len(ALERT_BACKOFF_SECONDS):
                self.sleep(ALERT_BACKOFF_SECONDS[attempt])
        return False
