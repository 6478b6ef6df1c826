"""The log pipeline's own pieces: timestamps, deferred flushing, JSON rendering, redaction, tracebacks."""

from __future__ import annotations

import asyncio
import atexit
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from service.logs import (
    REDACTED,
    IsoTimestamp,
    JsonLinesLogger,
    configure_logging,
    redact_secrets,
    render_json,
)
from service.settings import LogFormat

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


class CountingStream(io.BytesIO):
    """A binary stream that counts its flushes; what was flushed is what a reader would see."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0
        self.flushed = b""

    def flush(self) -> None:
        self.flushes += 1
        self.flushed = self.getvalue()


def test_iso_timestamp_matches_structlogs_format_and_the_clock() -> None:
    stamp = IsoTimestamp()(None, "info", {})["timestamp"]
    reference = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]

    assert ISO_UTC.match(stamp)
    assert ISO_UTC.match(reference)
    logged = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - logged).total_seconds()) < 1


def test_iso_timestamp_moves_on_with_the_second() -> None:
    stamper = IsoTimestamp()
    first = stamper(None, "info", {})["timestamp"]
    stamper._cache = (stamper._cache[0] - 5, "1999-01-01T00:00:00")  # an old second left in the cache

    second = stamper(None, "info", {})["timestamp"]

    assert not second.startswith("1999")
    assert second[:19] >= first[:19]


def test_outside_an_event_loop_every_flush_is_immediate() -> None:
    target = CountingStream()
    logger = JsonLinesLogger(target)

    logger.info(b"one")

    assert target.flushed == b"one\n"


def test_inside_an_event_loop_lines_are_flushed_together_after_the_delay() -> None:
    target = CountingStream()
    logger = JsonLinesLogger(target, delay_seconds=0.02)
    seen: list[bytes] = []

    async def lines_then_wait() -> None:
        for line in (b"a", b"b", b"c"):
            logger.info(line)
        await asyncio.sleep(0)
        seen.append(target.flushed)  # the next iteration: still waiting
        await asyncio.sleep(0.05)
        seen.append(target.flushed)  # after the delay: all three, in one flush

    asyncio.run(lines_then_wait())

    assert seen == [b"", b"a\nb\nc\n"]
    assert target.flushes == 1


def test_a_flush_left_pending_by_a_closed_loop_does_not_block_the_next_loop() -> None:
    target = CountingStream()
    logger = JsonLinesLogger(target, delay_seconds=0.02)

    async def write(line: bytes, wait: float) -> None:
        logger.info(line)
        await asyncio.sleep(wait)

    asyncio.run(write(b"first", 0))  # the loop closes before the flush is due
    asyncio.run(write(b"second", 0.05))

    assert target.flushed == b"first\nsecond\n"


def test_json_rendering_falls_back_for_what_orjson_refuses() -> None:
    event = {"event": "x", "big": 2**70, "lone": "\ud800", "other": object}

    line = json.loads(render_json(event))

    assert line["big"] == 2**70
    assert line["event"] == "x"
    assert "class" in line["other"]


def test_sensitive_keys_are_redacted_and_others_kept() -> None:
    event = redact_secrets(
        None, "info", {"token": "t0p", "client_secret": "s", "scope": "store/order/created"}
    )

    assert event == {"token": REDACTED, "client_secret": REDACTED, "scope": "store/order/created"}


@pytest.fixture
def json_stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.BytesIO]:
    """configure_logging(JSON) writing into a buffer; structlog, the root logger and atexit restored after."""
    captured = io.BytesIO()
    structlog_config = structlog.get_config()
    root_handlers = logging.root.handlers[:]
    stderr = io.TextIOWrapper(captured)  # kept: pytest's capture swaps sys.stderr between setup and call
    monkeypatch.setattr("sys.stderr", stderr)
    configure_logging(LogFormat.JSON, "info")
    yield captured
    stderr.detach()
    atexit.unregister(captured.flush)
    logging.root.handlers[:] = root_handlers
    structlog.configure(**structlog_config)


def test_json_lines_carry_a_traceback_only_when_an_exception_is_logged(json_stderr: io.BytesIO) -> None:
    log = structlog.get_logger("test")

    log.info("plain", scope="store/order/created")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed", token="t0p")

    plain, failed = (json.loads(line) for line in json_stderr.getvalue().splitlines())
    assert "exception" not in plain
    assert (plain["event"], plain["level"], plain["scope"]) == ("plain", "info", "store/order/created")
    assert failed["level"] == "error"
    assert "RuntimeError: boom" in failed["exception"]
    assert failed["token"] == REDACTED


UNBUFFERED_CHILD = """
import asyncio, logging, sys
import structlog
from service.logs import configure_logging
from service.settings import LogFormat

server_log = logging.getLogger("uvicorn.error")
server_log.addHandler(logging.StreamHandler(sys.stderr))  # as uvicorn does before our app factory runs
server_log.propagate = False
configure_logging(LogFormat.JSON, "info")

async def main() -> None:
    log = structlog.get_logger("test")
    log.info("first")
    server_log.warning("second (uvicorn)")
    log.info("third")
    print("fourth (print)", file=sys.stderr)
    log.info("fifth")

def write_calls() -> int:
    return int(next(line for line in open("/proc/self/io") if line.startswith("syscw")).split()[1])

async def bulk() -> int:
    before = write_calls()
    for _ in range(100):
        structlog.get_logger("test").info("bulk")
    return write_calls() - before  # within the loop: nothing written yet, the flush is 50 ms away

asyncio.run(main())
print(asyncio.run(bulk()))
"""


def test_under_pythonunbuffered_stderr_is_buffered_and_every_line_keeps_its_place() -> None:
    result = subprocess.run(
        [sys.executable, "-c", UNBUFFERED_CHILD],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert int(result.stdout) <= 1  # unbuffered: 100 write calls for the 100 bulk lines
    lines = [line for line in result.stderr.splitlines() if '"bulk"' not in line]
    assert [
        line if line.startswith(("second", "fourth")) else json.loads(line)["event"] for line in lines
    ] == [
        "first",
        "second (uvicorn)",
        "third",
        "fourth (print)",
        "fifth",
    ]


MESSAGE_ARGS_CHILD = """
import logging
import dramatiq
from service.logs import configure_logging
from service.settings import LogFormat

configure_logging(LogFormat.JSON)
message = dramatiq.Message(
    queue_name="bcwebhooks.forwards", actor_name="forward_event", args=("out", "e1", "s", "a@example.com"),
    kwargs={}, options={}, message_id="m-1",
)
logger = logging.getLogger("dramatiq.worker.WorkerThread")
logger.warning("Failed to process message %s with expected exception %s.", message, "ForwardError")
logger.warning("an ordinary line %s", "kept")
"""


def test_dramatiq_lines_name_a_message_without_its_arguments() -> None:
    # A forward's arguments hold a whole processed record; Dramatiq's own lines print them in full.
    result = subprocess.run(
        [sys.executable, "-c", MESSAGE_ARGS_CHILD], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "a@example.com" not in result.stderr
    assert (
        "Failed to process message forward_event[m-1] with expected exception ForwardError." in result.stderr
    )
    assert "an ordinary line kept" in result.stderr
