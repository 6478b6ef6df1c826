"""`bcwebhooks tail` and `bcwebhooks dlq`: look at processed events and dead letters."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import redis

from service.embedded_redis import resolve_redis_url
from service.redis_connection import close_sync, sync_client
from service.settings import RedisSettings, load_redis_settings
from workers import dlq
from workers.broker import build_broker
from workers.events import ProcessedEvent

BLOCK_MS = 1000


def add_commands(commands: Any) -> None:
    """Register `tail` and `dlq` on the CLI's subparsers."""
    tail = commands.add_parser(
        "tail",
        help="print processed events from the Redis Stream as they arrive",
        description="Follow the processed-events stream (BCWEBHOOKS_STREAM). With --group it reads as a "
        "consumer group member and acknowledges what it printed, as a downstream system would.",
    )
    tail.add_argument("--group", help="consumer group to read with (created when missing)")
    tail.add_argument("--consumer", default=socket.gethostname(), help="consumer name within the group")
    tail.add_argument("--from-start", action="store_true", help="start at the oldest entry, not new ones")
    tail.add_argument("--count", type=_count, help="stop after this many events")
    tail.add_argument("--json", action="store_true", help="print each whole event as JSON")
    tail.set_defaults(run=run_tail)

    dead = commands.add_parser(
        "dlq",
        help="list, show, replay or purge dead-lettered callbacks and HTTP forwards",
        description="Callbacks whose processing failed for good (retries exhausted, missing scope, invalid "
        "token) and forwards an HTTP output did not accept (its retries exhausted, or a 4xx) are kept, each "
        "with its reason, until replayed or purged. Replay them once the cause is fixed.",
    )
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="count and list dead letters with their reasons")
    listing.add_argument("--json", action="store_true", help="JSON output")
    listing.add_argument(
        "--destination", metavar="NAME", help="only the forwards of this HTTP output (its name)"
    )
    show = actions.add_parser("show", help="one dead letter, with its callback")
    show.add_argument("id", help="id from `dlq list` (or the event id)")
    for name, verb in (("replay", "enqueue again"), ("purge", "delete for good")):
        action = actions.add_parser(name, help=f"{verb}: one id, a scope glob, or all")
        which = action.add_mutually_exclusive_group(required=True)
        which.add_argument("id", nargs="?", help="message id from `dlq list`")
        which.add_argument("--scope", help="every dead letter whose scope matches this glob")
        which.add_argument("--all", action="store_true", help="every dead letter")
        which.add_argument(
            "--destination", metavar="NAME", help="every dead-lettered forward of this HTTP output (its name)"
        )
    dead.set_defaults(run=run_dlq)


@contextlib.contextmanager
def _redis(settings: RedisSettings) -> Iterator[tuple[redis.Redis, str]]:
    """A client on REDIS_URL (or dev's Redis, or an embedded one, stopped on the way out) and its URL."""
    url, embedded = resolve_redis_url(settings.resolved_redis_url({}), settings.data_dir)
    client = sync_client(url)
    try:
        yield client, url
    finally:
        close_sync(client)
        if embedded is not None:
            embedded.stop()


def _count(text: str) -> int:
    """argparse type: how many events, at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def run_tail(args: argparse.Namespace) -> int:
    """Print events until interrupted (or --count reached)."""
    settings = load_redis_settings(os.environ)
    with _redis(settings) as (client, _url):
        return _tail(client, settings.stream_name, args)


def _tail(client: redis.Redis, stream: str, args: argparse.Namespace) -> int:
    if args.group:
        try:
            client.xgroup_create(stream, args.group, id="0" if args.from_start else "$", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
    last_id = "0" if args.from_start else "$"
    printed = 0
    batches: Any
    while args.count is None or printed < args.count:
        if args.group:
            batches = client.xreadgroup(args.group, args.consumer, {stream: ">"}, count=100, block=BLOCK_MS)
        else:
            batches = client.xread({stream: last_id}, count=100, block=BLOCK_MS)
        for _stream, entries in batches or []:
            for entry_id, fields in entries:
                print(_format(fields, args.json), flush=True)
                last_id = entry_id.decode()
                printed += 1
                if args.group:
                    client.xack(stream, args.group, entry_id)
                if args.count is not None and printed >= args.count:
                    return 0
    return 0


def _format(fields: dict[bytes, bytes], as_json: bool) -> str:
    event = ProcessedEvent.from_json(fields[b"event"])
    if as_json:
        return event.to_json()
    latency = event.fetched_at_ms - event.received_at_ms
    stamp = time.strftime("%H:%M:%S", time.localtime(event.received_at_ms / 1000))
    resource = f"{event.resource_type}:{event.resource_id}"
    return f"{stamp} {event.scope:<32} {resource}  {event.summary()}  ({latency} ms)"


def run_dlq(args: argparse.Namespace) -> int:
    """Dispatch the `dlq` actions."""
    with _redis(load_redis_settings(os.environ)) as (client, url):
        return _dlq(client, url, args)


def _dlq(client: redis.Redis, url: str, args: argparse.Namespace) -> int:
    if args.action == "list":
        letters = dlq.select(client, None, None, True, destination=args.destination)
        if args.json:
            print(json.dumps([d.describe() for d in letters], indent=2))
            return 0
        print(f"{len(letters)} dead letter(s)")
        for letter in letters:
            info = letter.describe()
            kind = f"{info['kind']}:{info['destination']}" if info["destination"] else info["kind"]
            print(f"{info['id']}  {kind}  {info['scope']}  retries={info['retries']}  {info['error']}")
        return 0
    if args.action == "show":
        found = dlq.find(client, args.id)
        if found is None:
            print(f"bcwebhooks dlq: no dead letter {args.id!r}", file=sys.stderr)
            return 1
        print(json.dumps({**found.describe(), "message": found.message()}, indent=2))
        return 0
    letters = dlq.select(client, args.id, args.scope, args.all, destination=args.destination)
    if not letters:
        print("bcwebhooks dlq: nothing matches", file=sys.stderr)
        return 1
    if args.action == "replay":
        count = dlq.replay(client, build_broker(url), letters)
        print(f"replayed {count} dead letter(s)")
        if count < len(letters):
            print(
                f"bcwebhooks dlq: {len(letters) - count} unreadable; see `dlq show`, or purge them",
                file=sys.stderr,
            )
            return 1
    else:
        count = dlq.purge(client, letters)
        print(f"purged {count} dead letter(s)")
    return 0
