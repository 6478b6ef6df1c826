"""The log pipeline's own pieces: timestamps, deferred flushing, JSON rendering, redaction, tracebacks."""

from __future__ import annotations

import asyncio
import atexit
import io
import json
import logging
import re
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
