"""The store's shared request quota over a rolling window, and the X-Rate-Limit-* headers."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_QUOTA = 150
DEFAULT_WINDOW_SECONDS = 30.0


@dataclass
class RollingQuota:
    """At most `quota` requests in any rolling `window_seconds`, shared by every token of the store.

    Parameters:
      quota: requests allowed per window (150 per 30 s on Standard and Plus plans).
      window_seconds: the window's length.
      clock: seconds, monotonic (tests may pass their own).
    """

    quota: int = DEFAULT_QUOTA
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _granted: deque[float] = field(default_factory=deque)
    refused: int = 0

    def try_acquire(self) -> tuple[bool, dict[str, str]]:
        """Count one request if the window has room; return whether it may proceed and the headers to send."""
        now = self.clock()
        while self._granted and self._granted[0] <= now - self.window_seconds:
            self._granted.popleft()
        allowed = len(self._granted) < self.quota
        if allowed:
            self._granted.append(now)
        else:
            self.refused += 1
        return allowed, self._headers(now, allowed)

    def _headers(self, now: float, allowed: bool) -> dict[str, str]:
        window_ms = int(self.window_seconds * 1000)
        reset_ms = (
            math.ceil((self._granted[0] + self.window_seconds - now) * 1000) if self._granted else window_ms
        )
        headers = {
            "X-Rate-Limit-Time-Window-Ms": str(window_ms),
            "X-Rate-Limit-Time-Reset-Ms": str(max(reset_ms, 0)),
            "X-Rate-Limit-Requests-Quota": str(self.quota),
            "X-Rate-Limit-Requests-Left": str(max(self.quota - len(self._granted), 0)),
        }
        if not allowed:
            headers["X-Retry-After"] = str(max(1, math.ceil(reset_ms / 1000)))
        return headers
