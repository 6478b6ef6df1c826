"""The fault suite's HTTP output: a real destination on 127.0.0.1, and whether every event reached it.

The worker is given an outputs file that forwards every event to the destination, which runs in the
benchmark's own process (tests/destinations.py), so what it received can be counted per `webhook-id` and
each signature verified with the reference library as it arrives.
"""

from __future__ import annotations

import base64
import os
import sys
import time
from collections import Counter
from pathlib import Path

from fault_report import Row
from faultkit import ROOT, Stack

from workers.outputs import webhook_id_for

# The destination is the tests' own (tests/ is not installed): the repository root goes on the path.
sys.path.insert(0, str(ROOT))
from tests.destinations import Destination

OUTPUT_NAME = "bench"
SECRET_VARIABLE = "BENCH_OUTPUT_SECRET"  # noqa: S105 (the variable's name, not a secret)
# Quick retries: the suite waits minutes, not the default policy's hours.
OUTPUT_POLICY = "timeout = 5\nretries = 40\nmin_backoff = 0.2\nmax_backoff = 2\nconcurrency = 4\n"


class ForwardTarget:
    """A destination, down until `start`, and the outputs file and environment that point a worker at it.

    Parameters:
      workdir: where the outputs file is written.
    """

    def __init__(self, workdir: Path) -> None:
        self.secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        self.destination = Destination(self.secret)
        self.path = workdir / "outputs.toml"
        self.path.write_text(
            f'[[output]]\nname = "{OUTPUT_NAME}"\nurl = "{self.destination.url}"\nscopes = ["*"]\n'
            f'secret = "env:{SECRET_VARIABLE}"\n{OUTPUT_POLICY}'
        )

    def worker_env(self) -> dict[str, str]:
        """What the worker needs to forward to this destination."""
        return {"BCWEBHOOKS_OUTPUTS_FILE": str(self.path), SECRET_VARIABLE: self.secret}

    def expected(self, row: Row) -> set[str]:
        """The webhook-ids of the forwards of every acknowledged event that reached the stream."""
        return {webhook_id_for(OUTPUT_NAME, e) for e in row.load.acknowledged if e in row.tally.stream}

    def wait_delivered(self, row: Row, stack: Stack, seconds: float) -> None:
        """Wait (bounded) until the destination accepted every expected forward."""
        deadline = time.monotonic() + seconds
        expected = self.expected(row)
        while time.monotonic() < deadline:
            if expected <= {r.webhook_id for r in self.destination.accepted()}:
                return
            stack.supervise()
            time.sleep(0.5)

    def check(self, row: Row) -> None:
        """Note what the destination received on the row; a missing, unexpected or forged one is a problem."""
        expected = self.expected(row)
        accepted = Counter(r.webhook_id for r in self.destination.accepted())
        missing = expected - set(accepted)
        unexpected = set(accepted) - expected
        forged = sum(1 for received in self.destination.accepted() if not received.verified)
        refused = len(self.destination.received) - sum(accepted.values())
        again = sum(1 for count in accepted.values() if count > 1)
        row.notes.append(
            f"forwards: {len(expected) - len(missing)}/{len(expected)} delivered and verified, {again} "
            f"delivered again with the same webhook-id, {refused} answered 500"
        )
        if missing:
            row.problems.append(f"{len(missing)} forwards never delivered, e.g. {sorted(missing)[0]}")
        if unexpected:
            row.problems.append(f"{len(unexpected)} forwards of events that are not in the stream")
        if forged:
            row.problems.append(f"{forged} forwards failed the reference library's verification")

    def close(self) -> None:
        """Stop the destination."""
        self.destination.close()
