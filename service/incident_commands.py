"""`bcwebhooks incidents [--store HASH] [--open] [--json] [--limit N]`: what the hook monitor, the
deliveryException reactions and the receiver's early warning recorded (service/incidents.py)."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from typing import Any

from service.embedded_redis import resolve_redis_url
from service.incidents import Incident, list_incidents
from service.redis_connection import close_sync, sync_client
from service.settings import load_redis_settings


def add_incidents_command(commands: Any) -> None:
    """Register `incidents` on the CLI's subparsers."""
    incidents = commands.add_parser(
        "incidents",
        help="list incidents: deactivated or missing hooks, blocked domains, deliveryException reports",
        description="Incidents recorded by the hook monitor, the workers' reactions to deliveryException "
        "events and the receiver's early warning, newest first: store, hook, kind, since, until (or open), "
        "what was done. Reads Redis only (REDIS_URL): no store credentials needed.",
    )
    incidents.add_argument("--store", metavar="HASH", help="only this store's (and the deployment's own)")
    incidents.add_argument("--open", action="store_true", help="only those still open")
    incidents.add_argument("--json", action="store_true", help="JSON output, one object per incident")
    incidents.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    incidents.set_defaults(run=run_incidents)


def run_incidents(args: argparse.Namespace) -> int:
    """Print the incidents; exit 0 (a listing, not a check: `monitor --once` is the check)."""
    settings = load_redis_settings(os.environ)
    url, embedded = resolve_redis_url(settings.resolved_redis_url(os.environ), settings.data_dir)
    client = sync_client(url)
    try:
        found = [
            incident
            for incident in list_incidents(client, None, args.open, limit=max(1, args.limit) * 4)
            if args.store is None or incident.store in (args.store, "")
        ][: max(1, args.limit)]
    finally:
        close_sync(client)
        if embedded is not None:
            embedded.stop()
    if args.json:
        print(json.dumps([incident.public() for incident in found], indent=2))
    elif not found:
        print("no open incidents" if args.open else "no incidents recorded")
    else:
        for incident in found:
            print(describe(incident))
    return 0


def describe(incident: Incident) -> str:
    """Two lines per incident: the headline, then what was done."""
    state = "OPEN" if incident.open else f"resolved {_when(incident.until)}"
    about = (
        f"hook {incident.hook_id} ({incident.scope})" if incident.hook_id else incident.subject or "receiver"
    )
    store = incident.store or "(all)"
    head = f"{state:<27} {incident.kind:<19} {store:<12} {about} since {_when(incident.since)}"
    done = "; ".join(incident.actions) or "nothing yet"
    return f"{head}\n    {incident.detail} | done: {done}"


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
