"""Early warning: the success ratio BigCommerce computes of our answers, computed from our side, so that we
warn while there is still time before it blocklists our domain.

BigCommerce's rule (BIGCOMMERCE.md section 3): over a sliding two-minute window, once at least 100 requests
were sent, a destination domain whose share of 2xx answers dips below 90 % is blocklisted for three
minutes. Every answer that is not a 2xx counts against it (our 5xx, a 503 while Redis is down, a 4xx), and
so does an answer slower than its timeout (undocumented; we assume ASSUMED_TIMEOUT_SECONDS) or none at all
(a client that gave up before its body arrived).

Each receiver process counts its own callback POSTs in memory (it must work while Redis is down), in
BUCKET_SECONDS buckets: an answer adds to one integer, and only a failure looks at the ratio, so the hot
path stays O(1). Below `warn_ratio` (default 95 %) it logs `receiver.blocklist_risk` (at most every
WARN_EVERY_SECONDS), the gauge `bcwebhooks_receiver_success_ratio` on the receiver's /metrics says so, and
`on_risk` is called (the app records a `blocklist_risk` incident when Redis answers); `on_recovered` once
the ratio is back above it. With several receivers behind one domain each sees its share of the traffic:
the ratio is the same when the load balancer spreads failures evenly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, Gauge

from service.incidents import BLOCKLIST_RISK, Incident, new_incident

BLOCKLIST_WINDOW_SECONDS = 120
BLOCKLIST_MIN_REQUESTS = 100
BLOCKLIST_RATIO = 0.90
DEFAULT_WARN_RATIO = 0.95
BUCKET_SECONDS = 5
# BigCommerce documents no timeout; its docs only ask for an immediate 200. A healthy ack takes milliseconds.
ASSUMED_TIMEOUT_SECONDS = 5.0
WARN_EVERY_SECONDS = 30.0
RECEIVER_SUBJECT = "receiver"

log = structlog.get_logger("bcwebhooks.receiver")


def risk_incident(ratio: float, requests: int) -> Incident:
    """The deployment-wide incident a receiver records when its ratio heads for the blocklist; its start
    (the window's) is evidence for the gap should BigCommerce later deactivate hooks."""
    return new_incident(
        "",
        BLOCKLIST_RISK,
        RECEIVER_SUBJECT,
        time.time() - BLOCKLIST_WINDOW_SECONDS,
        f"{ratio:.1%} of {requests} callbacks answered 2xx in time over 2 minutes; BigCommerce blocklists "
        f"the domain below {BLOCKLIST_RATIO:.0%}",
    )


class SuccessWindow:
    """Successes and failures over a sliding window, in fixed buckets: O(1) per answer.

    Parameters:
      window_seconds: the window's length.
      bucket_seconds: its resolution (the window slides a bucket at a time).
    """

    def __init__(
        self, window_seconds: float = BLOCKLIST_WINDOW_SECONDS, bucket_seconds: float = BUCKET_SECONDS
    ) -> None:
        self.bucket_seconds = bucket_seconds
        self.size = max(1, round(window_seconds / bucket_seconds))
        self._ok = [0] * self.size
        self._failed = [0] * self.size
        self.ok = 0
        self.failed = 0
        self._slot: int | None = None

    def record(self, ok: bool, now: float) -> bool:
        """Count one answer at `now` (monotonic seconds); True when the window slid to a new bucket."""
        slid = self.advance(now)
        index = self._slot % self.size if self._slot is not None else 0
        if ok:
            self._ok[index] += 1
            self.ok += 1
        else:
            self._failed[index] += 1
            self.failed += 1
        return slid

    def advance(self, now: float) -> bool:
        """Drop the buckets that left the window by `now`; True when it slid."""
        slot = int(now // self.bucket_seconds)
        if self._slot is not None and slot <= self._slot:
            return False
        if self._slot is None or slot - self._slot >= self.size:
            self._ok = [0] * self.size
            self._failed = [0] * self.size
            self.ok = self.failed = 0
        else:
            for passed in range(self._slot + 1, slot + 1):
                index = passed % self.size
                self.ok -= self._ok[index]
                self.failed -= self._failed[index]
                self._ok[index] = self._failed[index] = 0
        self._slot = slot
        return True

    @property
    def total(self) -> int:
        """Answers in the window."""
        return self.ok + self.failed

    def ratio(self) -> float | None:
        """The share of successes, or None below BLOCKLIST_MIN_REQUESTS (BigCommerce does not judge yet)."""
        return self.ok / self.total if self.total >= BLOCKLIST_MIN_REQUESTS else None


class BlocklistRisk:
    """Watches this process's answers the way BigCommerce does, and warns below `warn_ratio`.

    Parameters:
      registry: where the gauge is registered (the receiver's).
      warn_ratio: warn below this share of successes (BigCommerce blocklists below 0.9).
      on_risk: called with (ratio, requests) when the ratio falls below `warn_ratio` (rate-limited).
      on_recovered: called once the ratio is back at or above it.
      clock: monotonic seconds.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        warn_ratio: float = DEFAULT_WARN_RATIO,
        on_risk: Callable[[float, int], None] = lambda ratio, requests: None,
        on_recovered: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = SuccessWindow()
        self.warn_ratio = warn_ratio
        self.on_risk = on_risk
        self.on_recovered = on_recovered
        self.clock = clock
        self.at_risk = False
        self._last_warned = float("-inf")
        self.gauge = Gauge(
            "bcwebhooks_receiver_success_ratio",
            "Share of 2xx answers to callbacks over BigCommerce's two-minute window, as BigCommerce computes "
            "it (1 below 100 requests, when it does not judge); it blocklists the domain below 0.9.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.gauge.set(1.0)

    def answered(self, ok: bool, seconds: float) -> None:
        """Count one answered callback POST (`ok`: a 2xx) that took `seconds`."""
        now = self.clock()
        ok = ok and seconds <= ASSUMED_TIMEOUT_SECONDS
        if self.window.record(ok, now):
            self._slid(now)
        if not ok:
            self._check(now)

    def abandoned(self) -> None:
        """Count a request the client gave up on (no answer: a failure to BigCommerce)."""
        self.answered(False, 0.0)

    def refresh(self) -> float:
        """Slide the window to now and update the gauge (before /metrics answers); returns the ratio."""
        now = self.clock()
        if self.window.advance(now):
            self._slid(now)
        ratio = self.window.ratio()
        self.gauge.set(1.0 if ratio is None else ratio)
        return 1.0 if ratio is None else ratio

    def _slid(self, now: float) -> None:
        ratio = self.window.ratio()
        self.gauge.set(1.0 if ratio is None else ratio)
        if self.at_risk and (ratio is None or ratio >= self.warn_ratio):
            self.at_risk = False
            log.info("receiver.blocklist_risk_over", requests=self.window.total)
            self.on_recovered()

    def _check(self, now: float) -> None:
        ratio = self.window.ratio()
        if ratio is None or ratio >= self.warn_ratio:
            return
        self.at_risk = True
        if now - self._last_warned < WARN_EVERY_SECONDS:
            return
        self._last_warned = now
        self.gauge.set(ratio)
        log.warning(
            "receiver.blocklist_risk",
            success_ratio=round(ratio, 3),
            requests=self.window.total,
            failures=self.window.failed,
            window_seconds=BLOCKLIST_WINDOW_SECONDS,
            blocklisted_below=BLOCKLIST_RATIO,
        )
        self.on_risk(ratio, self.window.total)
