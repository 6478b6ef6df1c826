"""structlog configuration, done once at start-up: JSON lines in production, console lines in dev."""

from __future__ import annotations

import asyncio
import atexit
import io
import json
import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any, BinaryIO, TextIO

import orjson
import structlog

from service.settings import LogFormat

REDACTED = "[redacted]"
# How long a log line written inside the receiver's event loop may wait in the buffer.
FLUSH_DELAY_SECONDS = 0.05
# Keys whose values must never reach a log line, whatever the caller passes.
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "access_token",
        "client_secret",
        "header_secret",
        "headers",
        "password",
        "secret",
        "signature",
        "token",
        "webhook-signature",
        "webhook_signature",
        "x-auth-token",
    }
)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of every sensitive key with a marker."""
    if not SENSITIVE_KEYS.isdisjoint(event_dict):
        for key in event_dict.keys() & SENSITIVE_KEYS:
            event_dict[key] = REDACTED
    return event_dict


class IsoTimestamp:
    """Adds `timestamp` as structlog's TimeStamper(fmt="iso", utc=True) writes it, at a third of the cost.

    The date and time up to the second are formatted once per second (one line per request adds up);
    the cache is a single tuple, so threads sharing the processor never mix two seconds.
    """

    def __init__(self) -> None:
        self._cache: tuple[int, str] = (-1, "")

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        cached_second, prefix = self._cache
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._cache = (second, prefix)
        event_dict["timestamp"] = f"{prefix}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


class JsonLinesLogger:
    """The logger structlog writes rendered JSON lines to: a binary stream, flushed late inside an event loop.

    The receiver writes one line per request. Flushing each (a write() system call) cost as much as
    rendering it, and even one flush per loop iteration cost the receiver about 5 % of its callbacks per
    second (bench_ingest.py). Inside a running loop a flush is therefore deferred by up to
    `FLUSH_DELAY_SECONDS`, and the lines written meanwhile go out together (the buffer also goes out
    whenever it fills). Outside a loop (workers, commands) every line is flushed at once, and the process
    flushes what is left when it exits. uvicorn's own log lines go through the same buffer (sys.stderr),
    so the order of lines is kept. A killed receiver loses at most the last 50 ms of log lines, never an
    event: events live in Redis.

    Unlike structlog's BytesLogger it takes no lock of its own: a buffered binary stream writes each line
    whole under its own lock, which is all a line needs.
    """

    def __init__(self, stream: BinaryIO, delay_seconds: float = FLUSH_DELAY_SECONDS) -> None:
        self._stream = stream
        self._delay_seconds = delay_seconds
        self._scheduled_in: asyncio.AbstractEventLoop | None = None

    def msg(self, message: bytes) -> None:
        """Write one line; flush now, or within the delay when called inside a running event loop."""
        self._stream.write(message + b"\n")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._stream.flush()
            return
        # A flush scheduled in a loop that has gone (closed before its timer fired) does not count.
        if self._scheduled_in is not loop:
            self._scheduled_in = loop
            loop.call_later(self._delay_seconds, self._flush_now)

    debug = info = warning = warn = error = err = critical = exception = fatal = failure = log = msg

    def _flush_now(self) -> None:
        self._scheduled_in = None
        self._stream.flush()


def buffered_stderr() -> BinaryIO | None:
    """sys.stderr's binary layer, made buffered when PYTHONUNBUFFERED=1 (or `python -u`) left it raw.

    Raw, every JSON line is a write() of its own: 2,004 write calls for 2,000 lines against 49 buffered,
    in an image whose Dockerfile sets the variable. sys.stderr is then replaced by a line-buffered text
    stream over a buffer of our own on the same descriptor, and the logging handlers that held the old
    sys.stderr (uvicorn configures its own before our app factory runs) follow, so every line still goes
    through one buffer, in order. Text written to sys.stderr is still flushed at each newline.
    """
    binary = getattr(sys.stderr, "buffer", None)
    if not isinstance(binary, io.RawIOBase):
        return binary  # already buffered (the default), or no binary layer at all
    # A descriptor of our own: closing this buffer never closes sys.__stderr__'s raw stream.
    buffered = io.BufferedWriter(io.FileIO(sys.stderr.fileno(), "wb", closefd=False))
    previous = sys.stderr
    sys.stderr = io.TextIOWrapper(
        buffered, encoding=previous.encoding, errors=previous.errors, line_buffering=True
    )
    _redirect_stream_handlers(previous, sys.stderr)
    return buffered


def _redirect_stream_handlers(old: TextIO, new: TextIO) -> None:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if isinstance(handler, logging.StreamHandler) and handler.stream is old:
                handler.setStream(new)


def format_exc_info(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog's format_exc_info, skipped for the lines that carry no exception (nearly all of them)."""
    if "exc_info" in event_dict:
        return structlog.processors.format_exc_info(logger, method, event_dict)
    return event_dict


def render_json(event_dict: Any, **kwargs: Any) -> bytes:
    """orjson for the one-line-per-request cost; the standard library for values orjson refuses."""
    try:
        return orjson.dumps(event_dict, default=str)
    except TypeError:
        return json.dumps(event_dict, default=str).encode()


class MessageArgsHidden(logging.Filter):
    """Dramatiq logs a failed or skipped message as `actor(arg, ...)`, its arguments in full: a forward to an
    HTTP output carries a whole processed record (emails, addresses). Lines through the handler this filter
    sits on name such a message by its actor and id instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_is_message(arg) for arg in record.args):
            record.args = tuple(_message_name(arg) for arg in record.args)
        return True


def _is_message(value: object) -> bool:
    return all(hasattr(value, name) for name in ("actor_name", "message_id", "args", "queue_name"))


def _message_name(value: Any) -> Any:
    return f"{value.actor_name}[{value.message_id}]" if _is_message(value) else value


def hide_message_args(logger: logging.Logger) -> None:
    """Put `MessageArgsHidden` on every handler of `logger` (the root logger: every line goes through it)."""
    for handler in logger.handlers:
        if not any(isinstance(existing, MessageArgsHidden) for existing in handler.filters):
            handler.addFilter(MessageArgsHidden())


def configure_logging(log_format: LogFormat, level: str = "info") -> None:
    """Configure structlog and the standard library loggers (uvicorn, dramatiq) for this process."""
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    use_console = log_format is LogFormat.CONSOLE or (log_format is LogFormat.AUTO and sys.stderr.isatty())
    renderer: Any
    logger_factory: Any
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        logger_factory = structlog.WriteLoggerFactory(sys.stderr)
    elif (binary_stderr := buffered_stderr()) is not None:
        renderer = structlog.processors.JSONRenderer(serializer=render_json)
        lines = JsonLinesLogger(binary_stderr)
        atexit.unregister(binary_stderr.flush)  # configured again (tests, dev): one exit flush is enough
        atexit.register(binary_stderr.flush)
        logger_factory = lambda *_args: lines  # noqa: E731 (one logger for every name)
    else:
        renderer = structlog.processors.JSONRenderer()
        logger_factory = structlog.WriteLoggerFactory(sys.stderr)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            IsoTimestamp(),
            redact_secrets,
            format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=max(numeric_level, logging.INFO), stream=sys.stderr, format="%(name)s %(message)s"
    )
    # One line per request is ours to write; httpx's own request lines would repeat URLs at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    hide_message_args(logging.getLogger())
