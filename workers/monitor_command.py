"""`bcwebhooks monitor [--once] [--store HASH]`, and the monitor the worker processes run
(`monitoring_middleware`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import redis
import structlog

from service.bigcommerce import ApiClient, StoreApi
from service.embedded_redis import resolve_redis_url
from service.logs import configure_logging
from service.redis_connection import close_sync, sync_client
from service.settings import ConfigError, Settings, load_settings
from service.stores import stores_from_settings
from workers.alerts import Alerts
from workers.budget import ApiBudget
from workers.monitor import HookMonitor, PassReport, StoreUnavailable
from workers.monitor_loop import Monitoring, MonitorLoop, run_store_pass
from workers.processing import WorkerContext
from workers.store_contexts import StoreUninstalled

ONCE_WAIT_SECONDS = 60.0  # how long --once waits for a pass of the same store already running


def add_commands(commands: Any) -> None:
    """Register `monitor` on the CLI's subparsers."""
    monitor = commands.add_parser(
        "monitor",
        help="check each store's hooks: record incidents, reactivate deactivated hooks, file gaps",
        description=(
            "Compare each store's /v3/hooks and /v3/hooks/admin with hooks.toml (BCWEBHOOKS_HOOKS_FILE). "
            "A declared hook BigCommerce deactivated is reactivated once the receiver answers its "
            "readiness probe, and the missed window is filed for backfill; blocked domains, missing hooks "
            "and deliveryException reports become incidents (`bcwebhooks incidents`). The workers run the "
            "same monitor every BCWEBHOOKS_MONITOR_INTERVAL seconds behind a Redis lock; without --once "
            "this command runs that loop too, under the same lock (for deployments whose workers set "
            "BCWEBHOOKS_MONITOR_INTERVAL=0). With --once the exit code is 1 when a declared hook is down, "
            "a domain is blocked or a check failed."
        ),
    )
    monitor.add_argument("--once", action="store_true", help="one pass now, print what it found, and exit")
    monitor.add_argument("--store", metavar="HASH", help="app mode: only this installed store")
    monitor.add_argument("--json", action="store_true", help="with --once: JSON output")
    monitor.set_defaults(run=run_monitor)


def run_monitor(args: argparse.Namespace) -> int:
    """One pass (--once) or the loop until Ctrl-C; exit 1 when --once found a hook down or a check failed."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)  # log lines on stderr, results on stdout
    # It logs a few lines a pass: no cached loggers, so a later configuration (a test's) takes effect.
    structlog.configure(cache_logger_on_first_use=False)
    if args.store and not settings.app_mode and args.store != settings.store_hash:
        raise ConfigError(f"--store {args.store}: single-store mode serves only {settings.store_hash}")
    url, embedded = resolve_redis_url(settings.resolved_redis_url(os.environ), settings.data_dir)
    client = sync_client(url)
    try:
        monitor, stores = cli_monitor(settings, client)
        wanted = (lambda: [args.store]) if args.store else stores
        alerts = alerts_for(settings, client)
        if args.once:
            return _once(monitor, wanted(), alerts, args.json)
        print(f"monitoring every {settings.monitor_interval or 300} s (Ctrl-C stops)", flush=True)
        loop = MonitorLoop(monitor, wanted, settings.monitor_interval or 300, _waker(alerts))
        try:
            loop.run()
        finally:
            loop.stop()
        return 0
    finally:
        close_sync(client)
        if embedded is not None:
            embedded.stop()


def _once(monitor: HookMonitor, stores: list[str], alerts: Alerts | None, as_json: bool) -> int:
    reports: list[PassReport] = []
    for store_hash in stores:
        print(f"checking store {store_hash}", file=sys.stderr, flush=True)
        report = run_store_pass(monitor, store_hash, wait_seconds=ONCE_WAIT_SECONDS)
        if report is None:
            print(f"bcwebhooks monitor: a pass of {store_hash} is still running elsewhere", file=sys.stderr)
            return 1
        reports.append(report)
    if alerts is not None:
        alerts.send_pending()
    if as_json:
        print(json.dumps([_public(r) for r in reports], indent=2))
    else:
        for report in reports:
            print(_line(report))
    return 1 if any(r.error or r.inactive or r.blocked for r in reports) else 0


def _public(report: PassReport) -> dict[str, Any]:
    return {
        "store": report.store,
        "checked": report.checked,
        "active": report.active,
        "inactive": report.inactive,
        "blocked_domains": report.blocked,
        "reactivated": report.reactivated,
        "waiting_for_receiver": report.waiting,
        "gaps": [
            {"since": g.since, "until": g.until, "scopes": list(g.scopes), "reason": g.reason}
            for g in report.gaps
        ],
        "error": report.error,
    }


def _line(report: PassReport) -> str:
    if report.error:
        return f"✗ {report.store}: {report.error}"
    parts = [f"{report.active}/{report.checked} declared hooks active"]
    if report.reactivated:
        parts.append(f"reactivated {', '.join(map(str, report.reactivated))}")
    if report.waiting:
        parts.append(f"waiting for the receiver to reactivate {', '.join(map(str, report.waiting))}")
    if report.blocked:
        parts.append(f"blocked: {', '.join(report.blocked)}")
    if report.gaps:
        parts.append(f"{len(report.gaps)} gap(s) filed for backfill")
    mark = "✓" if not (report.inactive or report.blocked) else "✗"
    return f"{mark} {report.store}: {'; '.join(parts)}"


def cli_monitor(settings: Settings, client: redis.Redis) -> tuple[HookMonitor, Callable[[], list[str]]]:
    """The monitor of `bcwebhooks monitor`: API clients on the stores' shared budgets."""
    if settings.app_mode:
        registry = stores_from_settings(settings, client)

        def app_api(store_hash: str) -> StoreApi:
            token = registry.token(store_hash)
            if token is None:
                raise StoreUnavailable(f"store {store_hash} does not have the app installed")
            return _api(settings, client, store_hash, token)

        return _monitor(settings, client, app_api), registry.installed
    if settings.access_token is None:
        raise ConfigError("BIGCOMMERCE_ACCESS_TOKEN: not set (the monitor reads the store's hooks with it)")
    store_hash, token = settings.single_store_hash, settings.access_token.get_secret_value()
    api = _api(settings, client, store_hash, token)
    return _monitor(settings, client, lambda _: api), lambda: [store_hash]


def _api(settings: Settings, client: redis.Redis, store_hash: str, token: str) -> StoreApi:
    budget = ApiBudget(client, store_hash, settings.api_reserve_share)
    return StoreApi(ApiClient(settings.api_url, store_hash, token, budget=budget))


def _monitor(settings: Settings, client: redis.Redis, api_for: Callable[[str], StoreApi]) -> HookMonitor:
    return HookMonitor(
        client,
        api_for,
        settings.hooks_file,
        allow_http=settings.hooks_allow_http,
        ready_url=settings.monitor_ready_url,
        lookback_seconds=settings.monitor_lookback_seconds,
    )


def alerts_for(settings: Settings, client: redis.Redis) -> Alerts | None:
    """The alert sender, when BCWEBHOOKS_ALERT_URL is set."""
    if settings.alert_url is None:
        return None
    secret = settings.alert_secret.get_secret_value() if settings.alert_secret is not None else None
    return Alerts(client, settings.alert_url, secret)


def _waker(alerts: Alerts | None) -> Callable[[], None]:
    return alerts.wake if alerts is not None else (lambda: None)


def worker_monitor_loop(settings: Settings, context: WorkerContext) -> MonitorLoop:
    """The loop a worker process runs: the process's own API clients (budgets) and Redis."""
    stores = context.stores
    if stores is not None:

        def app_api(store_hash: str) -> StoreApi:
            try:
                return stores.for_store(store_hash).store_api
            except StoreUninstalled as error:
                raise StoreUnavailable(f"store {store_hash} does not have the app installed") from error

        monitor = _monitor(settings, context.redis, app_api)
        installed: Callable[[], list[str]] = stores.stores.installed
    else:
        monitor = _monitor(settings, context.redis, lambda _: context.store_api)
        installed = lambda: [context.store_hash]  # noqa: E731 (a one-line provider)
    alerts = alerts_for(settings, context.redis)
    return MonitorLoop(monitor, installed, settings.monitor_interval, _waker(alerts))


def monitoring_middleware(settings: Settings) -> Monitoring:
    """The middleware that runs the monitor loop in each worker process (the worker context is read after
    boot, when setup_broker has installed it)."""
    from workers.context import current_context

    return Monitoring(lambda: worker_monitor_loop(settings, current_context()))
