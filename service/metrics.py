"""The edge's Prometheus metrics: callbacks by outcome, time to acknowledge, and `GET /metrics`.

`serve --workers N` runs N uvicorn processes, so the counters live in prometheus-client's multiprocess
mode: `serve` points PROMETHEUS_MULTIPROC_DIR at a directory of its own (a fresh temporary one unless the
user gives one) before the processes start, and `GET /metrics` on any of them adds up every process's
files. Without that variable (an app built in-process, as `dev` and the tests do) each app counts in its
own registry. On the hot path a callback only adds to a few integers of this process (`CallbackMetrics`);
they reach prometheus-client every 50 ms, and no lock is ever shared across processes.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
ACCEPTED, DUPLICATE = "accepted", "duplicate"
UNAVAILABLE, ABANDONED = "unavailable", "abandoned"
# Seconds from the request reaching the receiver to its answer; a healthy ack takes a few milliseconds.
DEFAULT_FLUSH_SECONDS = 0.05
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_mode() -> bool:
    """Whether this process's metric values are written to PROMETHEUS_MULTIPROC_DIR.

    prometheus-client picks its value class once, when it is first imported; asking it (rather than the
    environment now) keeps what /metrics reads consistent with where the values went.
    """
    return prometheus_values.ValueClass is not prometheus_values.MutexValue


class CallbackMetrics:
    """`bcwebhooks_callbacks_total{outcome}` and `bcwebhooks_ack_seconds`, counted by the receiver.

    Parameters:
      registry: where the metrics are registered (each app has its own; in multiprocess mode the
        values also go to this process's files).
      flush_seconds: how long counts may wait in plain integers before they reach the metrics.

    `outcome` is `accepted`, `duplicate`, `unavailable` (503), `abandoned` (the client left before its
    body arrived) or the refusal's reason code (`signature_mismatch`, `wrong_store`, ...): a fixed set
    written in our code, never a value from the wire.

    A request only adds to a few integers (well under a microsecond); the counts reach prometheus-client
    at most `flush_seconds` later, in one step per outcome and bucket, and at once before this process
    answers /metrics. Observing through prometheus-client on every request cost 5 us (15 us in
    multiprocess mode, three locked writes to its mmap'd file) of the 50-60 us a callback costs.
    """

    def __init__(self, registry: CollectorRegistry, flush_seconds: float = DEFAULT_FLUSH_SECONDS) -> None:
        self.callbacks = Counter(
            "bcwebhooks_callbacks",
            "Callbacks answered by the receiver, by outcome (accepted, duplicate or the refusal's reason).",
            ["outcome"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "bcwebhooks_ack_seconds",
            "Seconds from a callback's arrival to its 200 (accepted and duplicate callbacks).",
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.flush_seconds = flush_seconds
        self._outcomes: dict[str, int] = {}
        self._ack_buckets = [0] * (len(ACK_BUCKETS) + 1)  # the last one is +Inf
        self._ack_sum = 0.0
        self._flush_pending = False

    def count(self, outcome: str) -> None:
        """Count one answered callback."""
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
        if not self._flush_pending:
            self._schedule_flush()

    def acknowledged(self, outcome: str, seconds: float) -> None:
        """Count an accepted or duplicate callback and how long its acknowledgement took."""
        self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
        self._ack_buckets[bisect.bisect_left(ACK_BUCKETS, seconds)] += 1
        self._ack_sum += seconds
        if not self._flush_pending:
            self._schedule_flush()

    def flush(self) -> None:
        """Hand the counts gathered since the last flush to prometheus-client."""
        self._flush_pending = False
        outcomes, self._outcomes = self._outcomes, {}
        for outcome, n in outcomes.items():
            self.callbacks.labels(outcome).inc(n)
        buckets, self._ack_buckets = self._ack_buckets, [0] * (len(ACK_BUCKETS) + 1)
        ack_sum, self._ack_sum = self._ack_sum, 0.0
        if any(buckets):
            # Histogram.observe() adds one value to one bucket; these are its own (private) values,
            # which the tests read back through /metrics bucket by bucket.
            for value, n in zip(self.ack_seconds._buckets, buckets, strict=True):
                if n:
                    value.inc(n)
            self.ack_seconds._sum.inc(ack_sum)

    def _schedule_flush(self) -> None:
        self._flush_pending = True
        try:
            asyncio.get_running_loop().call_later(self.flush_seconds, self.flush)
        except RuntimeError:  # no event loop: nothing to batch with
            self.flush()


class EdgeMetrics:
    """The receiver's registry and its metrics; serves `GET /metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.callbacks = CallbackMetrics(self.registry)
        self.before_exposition: list[Callable[[], object]] = []  # gauges brought up to date per scrape

    async def endpoint(self, request: Request) -> Response:
        """Every receiver process's counts in Prometheus's text format."""
        self.callbacks.flush()
        for refresh in self.before_exposition:
            refresh()
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)

    def exposition(self) -> bytes:
        """The text format: all processes' files in multiprocess mode, else this app's registry."""
        if multiprocess_mode():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
            return generate_latest(registry)
        return generate_latest(self.registry)


@contextmanager
def multiprocess_directory(environ: Mapping[str, str]) -> Iterator[str]:
    """PROMETHEUS_MULTIPROC_DIR for the processes a command starts: the user's (blank = unset), emptied of
    old files, or a fresh temporary directory that is removed afterwards.

    prometheus-client's documentation asks for the directory to be wiped between runs: files left by
    processes of an earlier run would otherwise be added to the new counts.
    """
    given = (environ.get(MULTIPROC_DIR_ENV) or "").strip()
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.unlink(os.path.join(given, name))
        yield given
        return
    directory = tempfile.mkdtemp(prefix="bcwebhooks-metrics-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
