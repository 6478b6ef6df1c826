"""`bcwebhooks backfill`: file a gap for the workers to backfill and follow it; `backfill status`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis

from service.embedded_redis import resolve_redis_url
from service.gaps import Gap, GapProgress, gap_progress, recent_gaps, request_backfill
from service.redis_connection import sync_client
from service.settings import ConfigError, Settings, load_settings

RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
POLL_SECONDS = 1.0


def add_backfill_command(commands: Any) -> None:
    """Register `backfill` (and `backfill status`) on the CLI's subparsers."""
    parser = commands.add_parser(
        "backfill",
        help="recover what BigCommerce did not deliver in a period, through the list endpoints",
        description=(
            "File a gap: the workers list what changed in the store between --since and --until through "
            "the documented modification-time filters (orders, products, customers, subscribers, channels, "
            "price lists and their records), at the lowest priority within the store's API budget, and "
            "deliver a processed event per changed record marked source: backfill. Families without such "
            "a filter (variants, categories, carts, ...) are named as not recoverable. The backfill runs in "
            "the workers and survives their restarts; this command only files it and, with --wait (default "
            "on a terminal), shows its progress. Times: ISO-8601 (2026-11-23T08:00:00Z) or relative to now "
            "(90s, 30m, 2h, 1d)."
        ),
    )
    parser.add_argument("--store", metavar="HASH", help="the store (required in app mode)")
    parser.add_argument("--since", metavar="T", help="start of the gap (required to file one)")
    parser.add_argument("--until", metavar="T", help="end of the gap (default: when the backfill starts)")
    parser.add_argument(
        "--scope",
        action="append",
        metavar="GLOB",
        help="only the families of these webhook scopes, e.g. 'store/product/*' (repeatable; default all)",
    )
    parser.add_argument("--reason", default="on demand", help="why, for the logs (default 'on demand')")
    wait = parser.add_mutually_exclusive_group()
    wait.add_argument("--wait", action="store_true", default=None, help="follow progress until done")
    wait.add_argument("--no-wait", dest="wait", action="store_false", help="file the gap and return")
    parser.add_argument("--json", action="store_true", help="JSON output")
    actions = parser.add_subparsers(dest="action", metavar="{status}")
    status = actions.add_parser(
        "status",
        help="the latest gaps and their progress per family",
        description="The latest gaps (newest first): the store, the period, and per family the records "
        "listed and delivered, those the version fence refused or that were delivered before, the API calls, "
        "and the families no sweep can recover.",
    )
    status.add_argument("--limit", type=int, default=10, help="how many gaps (default 10)")
    status.add_argument("--json", action="store_true", help="JSON output")
    parser.set_defaults(run=run_backfill)


def parse_moment(text: str, now: float) -> float:
    """ISO-8601 (no offset means UTC) or a duration before `now` such as 90s, 30m, 2h, 1d: Unix seconds."""
    relative = RELATIVE.match(text.strip())
    if relative:
        return now - float(relative.group(1)) * UNIT_SECONDS[relative.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{text!r} is not a time: use ISO-8601 (2026-11-23T08:00:00Z) or 30m, 2h, 1d"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def run_backfill(args: argparse.Namespace) -> int:
    """File a gap (and follow it), or show the latest gaps."""
    settings = load_settings()
    url, embedded = resolve_redis_url(settings.resolved_redis_url(os.environ), settings.data_dir)
    if embedded is not None:
        embedded.stop()
        raise ConfigError("REDIS_URL is not set: a backfill is done by the workers, on their Redis")
    client = sync_client(url)
    try:
        if args.action == "status":
            return show_status(client, args.limit, args.json)
        gap = gap_from_args(args, settings, time.time())
        gap_id = request_backfill(client, gap)
        if args.json and not args.wait:
            print(json.dumps({"gap_id": gap_id, "gap": json.loads(gap.to_json())}))
            return 0
        print(f"gap {gap_id} filed: store {gap.store_hash}, {_period(gap)}, scopes {', '.join(gap.scopes)}")
        wait = args.wait if args.wait is not None else sys.stdout.isatty()
        if not wait:
            print("the workers backfill it; follow it with `bcwebhooks backfill status`")
            return 0
        return follow(client, gap_id, print)
    finally:
        client.close()


def gap_from_args(args: argparse.Namespace, settings: Settings, now: float) -> Gap:
    """The gap the arguments describe (ConfigError for what is missing or inconsistent)."""
    if not args.since:
        raise ConfigError("--since is required to file a gap (or run `bcwebhooks backfill status`)")
    if settings.app_mode and not args.store:
        raise ConfigError("app mode serves many stores: pass --store HASH (see `bcwebhooks stores list`)")
    store = args.store or settings.single_store_hash
    if not settings.app_mode and store != settings.single_store_hash:
        raise ConfigError(f"this deployment serves store {settings.single_store_hash}, not {store}")
    since = parse_moment(args.since, now)
    until = parse_moment(args.until, now) if args.until else None
    if until is not None and until < since:
        raise ConfigError("--until is before --since")
    if since > now:
        raise ConfigError("--since is in the future")
    return Gap(store, since, until, args.reason, tuple(args.scope or ("*",)), requested_at=now)


def follow(client: redis.Redis, gap_id: str, say: Callable[[str], None], timeout: float | None = None) -> int:
    """Print each family's progress as it changes until every family is done; 0 when all succeeded."""
    shown: dict[str, str] = {}
    waiting_said = False
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        progress = gap_progress(client, gap_id)
        if not progress.opened and not waiting_said:
            say("waiting for a worker to open it (is `bcwebhooks worker` running?)")
            waiting_said = True
        for name, checkpoint in progress.families.items():
            line = f"  {name}: {describe(checkpoint)}"
            if shown.get(name) != line:
                shown[name] = line
                say(line)
        if progress.done:
            for name, why in progress.unswept.items():
                say(f"  {name}: not recoverable by a sweep ({why})")
            failed = [n for n, c in progress.families.items() if c.get("state") == "failed"]
            say(f"gap {gap_id}: " + (f"failed for {', '.join(failed)}" if failed else "done"))
            return 1 if failed else 0
        time.sleep(POLL_SECONDS)
    say(f"gap {gap_id}: still running; follow it with `bcwebhooks backfill status`")
    return 1


def describe(checkpoint: dict[str, Any]) -> str:
    """One family's progress in words."""
    text = (
        f"{checkpoint.get('state', '?')}, {checkpoint.get('listed', 0)} listed, "
        f"{checkpoint.get('delivered', 0)} delivered, {checkpoint.get('fenced', 0)} already delivered or "
        f"older, {checkpoint.get('calls', 0)} API calls"
    )
    return text + (f" ({checkpoint['error']})" if checkpoint.get("error") else "")


def show_status(client: redis.Redis, limit: int, as_json: bool) -> int:
    """Print the latest gaps with their progress."""
    gaps = recent_gaps(client, limit)
    if as_json:
        print(json.dumps([g.to_dict() for g in gaps], indent=2))
        return 0
    if not gaps:
        print("no backfills yet")
        return 0
    for progress in gaps:
        print(_headline(progress))
        for name, checkpoint in progress.families.items():
            print(f"  {name}: {describe(checkpoint)}")
        for name, why in progress.unswept.items():
            print(f"  {name}: not recoverable by a sweep ({why})")
    return 0


def _headline(progress: GapProgress) -> str:
    state = "done" if progress.done else "running" if progress.opened else "waiting for a worker"
    if progress.gap is None:
        return f"gap {progress.gap_id}: (no details)"
    gap = progress.gap
    period = _period(gap, progress.until)
    return f"gap {progress.gap_id} [{state}] store {gap.store_hash}, {period}, reason: {gap.reason}"


def _period(gap: Gap, until: float | None = None) -> str:
    def at(moment: float) -> str:
        return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")

    end = gap.until if gap.until is not None else until
    return f"{at(gap.since)} to {at(end) if end is not None else 'when it starts'}"
