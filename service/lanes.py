"""Which catalog queue a callback waits on: a store in a catalog storm gets the bulk lane.

Catalog events share one queue, served in order. Without lanes, a 10,000-event import in one store puts
every other store's catalog events behind its backlog (bench_storm.py measured a p99 of 25 s for a store
sending 5 events/s). So the receiver counts each store's catalog callbacks per second, and past the
threshold (the workers' own storm threshold, BCWEBHOOKS_COALESCE_THRESHOLD) sends that store's further
catalog callbacks to the bulk queue, which workers serve after the catalog queue. A quiet store's events
then wait behind at most what workers have already taken. Nothing else changes: the same message, the same
ledger entry, written in the same atomic step; the bulk lane only orders work, it never drops any.

The count lives in the receiver process (no Redis call on the hot path): with several receivers each sees
its share, which only makes a storm take a little longer to be recognized.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_WINDOW_MS = 1000
# Past this many stores, counts of windows that are over are dropped (a count is a few dozen bytes).
MAX_TRACKED_STORES = 10_000


class StormLanes:
    """Counts catalog callbacks per store per window; `bulk` says whether this one goes to the bulk lane.

    Parameters:
      threshold: catalog callbacks a store may send per window on the catalog queue; 0 turns lanes off.
      window_ms: the window's length.
      clock: milliseconds (tests may pass their own).
    """

    def __init__(
        self,
        threshold: int,
        window_ms: int = DEFAULT_WINDOW_MS,
        clock: Callable[[], int] = lambda: time.monotonic_ns() // 1_000_000,
    ) -> None:
        self.threshold = threshold
        self.window_ms = window_ms
        self.clock = clock
        self._counts: dict[str, tuple[int, int]] = {}  # store → (window number, callbacks in it)

    def bulk(self, store: str) -> bool:
        """Count one catalog callback of `store`; True once the store is past the threshold in this window."""
        if self.threshold <= 0:
            return False
        window = self.clock() // self.window_ms
        seen_window, count = self._counts.get(store, (window, 0))
        count = count + 1 if seen_window == window else 1
        if len(self._counts) >= MAX_TRACKED_STORES and store not in self._counts:
            self._forget_before(window)
        self._counts[store] = (window, count)
        return count > self.threshold

    def _forget_before(self, window: int) -> None:
        self._counts = {store: seen for store, seen in self._counts.items() if seen[0] >= window}
