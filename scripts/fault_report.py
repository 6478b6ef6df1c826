"""The fault suite's report: one row per scenario, the table, and why a row fails."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from faultkit import NO_ANSWER, Load, Tally


@dataclass
class Row:
    """One scenario's outcome."""

    scenario: str
    events: int
    load: Load
    tally: Tally
    seconds: float
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def once(self) -> int:
        return sum(1 for e in self.load.acknowledged if self.tally.stream.get(e) == 1)

    @property
    def duplicated(self) -> int:
        return sum(1 for count in self.tally.stream.values() if count > 1)

    @property
    def lost(self) -> int:
        return sum(
            1 for e in self.load.acknowledged if e not in self.tally.stream and e not in self.tally.dead
        )

    @property
    def dead_lettered(self) -> int:
        return sum(1 for e in self.load.acknowledged if e in self.tally.dead)

    @property
    def server_errors(self) -> int:
        """5xx answers other than 503 (503 is the documented answer while Redis is away)."""
        return self.load.count(500, 502) + self.load.count(504, 599)

    def __repr__(self) -> str:
        return f"<{format_row(self)}>"

    def failures(self) -> list[str]:
        """Why this row fails the suite (empty when it passes)."""
        found = list(self.problems)
        if self.lost:
            found.append(f"{self.lost} acknowledged events lost")
        if self.duplicated:
            found.append(f"{self.duplicated} events in the stream more than once")
        if self.server_errors:
            found.append(f"{self.server_errors} answers 5xx (not 503)")
        if self.load.unexpected:
            found.append(f"{len(self.load.unexpected)} requests acknowledged that should have been refused")
        if self.tally.dlq_error:
            found.append(f"dead letters unreadable (dead: the last good read): {self.tally.dlq_error}")
        return found


COLUMNS = (
    ("scenario", 14), ("events", 7), ("sent", 7), ("2xx", 7), ("503", 6), ("4xx", 6), ("5xx", 5),
    ("none", 5), ("once", 7), ("dup", 5), ("lost", 6), ("dead", 6), ("s", 5),
)  # fmt: skip


def format_row(row: Row) -> str:
    """The row's cells, aligned under COLUMNS."""
    load = row.load
    cells = (
        row.scenario, row.events, sum(load.answers.values()), load.count(200, 299), load.count(503, 503),
        load.count(400, 499), row.server_errors, load.answers[NO_ANSWER], row.once, row.duplicated,
        row.lost, row.dead_lettered, f"{row.seconds:.0f}",
    )  # fmt: skip
    first, *rest = zip(cells, COLUMNS, strict=True)
    return f"{first[0]:<{first[1][1]}}" + "".join(f"{cell!s:>{width}}" for cell, (_, width) in rest)


def print_table(rows: list[Row]) -> None:
    """The table, then each failing row's reasons."""
    first, *rest = COLUMNS
    print(f"\n{first[0]:<{first[1]}}" + "".join(f"{name:>{width}}" for name, width in rest))
    for row in rows:
        print(format_row(row))
    for row in rows:
        for note in row.notes:
            print(f"  {row.scenario}: {note}")
        for reason in row.failures():
            print(f"  {row.scenario}: FAIL: {reason}")


def crashed_row(name: str, error: BaseException, started: float) -> Row:
    """The row of a scenario that could not run to its end."""
    row = Row(name, 0, Load(), Tally(), time.monotonic() - started)
    row.problems.append(f"scenario crashed: {type(error).__name__}: {error}")
    return row
