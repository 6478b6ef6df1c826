"""The hook monitor: one pass per store compares `/v3/hooks` and `/v3/hooks/admin` with hooks.toml, records
incidents, reactivates what BigCommerce switched off once our receiver is ready, and files the gaps.

For each declared hook (active = true in hooks.toml):
- missing from the store: incident `hook_missing` (`bcwebhooks hooks apply` recreates it; the monitor does
  not, since a missing hook usually means an uninstall or a deleted API account, which a person should see);
- not active (`is_active` false, admin `status` deactivated): incident `hook_deactivated` since the hook's
  `updated_at`; once the receiver answers its readiness probe, `PUT /v3/hooks/{id} {"is_active": true}`, and a
  gap is filed from the earliest evidence of failing deliveries (a 90001/90002/90003 incident of the hook, its
  destination, or the receiver's early warning), else from `updated_at` minus the retry schedule's 48 h (the
  events BigCommerce was still retrying when it gave up), to the reactivation;
- active again while an incident says it was not (someone ran `hooks apply`): the incident is resolved and
  the gap filed up to the hook's `updated_at`.
Blocked domains (admin `blocked_domains`): incident `domain_blocked`, a pass scheduled for when the block
ends, and when a pass finds it over, the incident is resolved and the blocked window filed as a gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis
import structlog

from service.bigcommerce import ApiError, StoreApi
from service.gaps import Gap, request_backfill
from service.incidents import (
    DELIVERIES_FAILING,
    DOMAIN_BLOCKED,
    HOOK_DEACTIVATED,
    HOOK_DISABLING,
    HOOK_MISSING,
    RECEIVER_DOWN,
    Incident,
    domain_subject,
    earliest_evidence,
    find_open,
    hook_subject,
    new_incident,
    note_action,
    open_incident,
    open_incidents,
    resolve_incident,
)
from service.pipeline_state import record_hook_health
from service.registration.declaration import Declaration, DeclarationError, DeclaredHook, load_declaration
from workers.monitor_schedule import request_pass

# BigCommerce retries a failed delivery for 173,040 s (~48 h) and then deactivates the hook: what it was still
# retrying then is lost, so without earlier evidence a gap starts that long before the deactivation.
DEFAULT_LOOKBACK_SECONDS = 173_040
GAP_MARGIN_SECONDS = 300  # added on both sides of what the evidence says (clocks, BigCommerce's delays)
BLOCK_SECONDS = 180  # how long BigCommerce blocklists a domain
# A 90001/90002 incident with no new report for this long, on a hook that is active, is over (90001 comes at
# most every 10 minutes while deliveries keep failing).
STALE_REPORT_SECONDS = 20 * 60
READY_TIMEOUT_SECONDS = 3.0
RECEIVER_PATHS = ("/webhooks/bigcommerce/delivery-exceptions", "/webhooks/bigcommerce")
MONITOR_SOURCE = "monitor"
log = structlog.get_logger("bcwebhooks.monitor")


class StoreUnavailable(Exception):
    """No API client can be had for the store (the app was uninstalled, its token is gone)."""


class PlaceholderEnviron(Mapping[str, str]):
    """Every variable set: the monitor reads hooks.toml's scopes, destinations and `active`, never the header
    values, so a worker need not hold the hooks' header secrets."""

    def __getitem__(self, key: str) -> str:
        return "set"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def readiness_url(destination: str, override: str | None = None) -> str:
    """Where to ask whether the receiver behind a hook's destination is ready: `override`, else the
    destination's `/readyz` (the receiver's base path kept, its webhook path dropped)."""
    if override:
        return override
    parts = urlsplit(destination)
    path = parts.path
    base = next((path.removesuffix(suffix) for suffix in RECEIVER_PATHS if path.endswith(suffix)), "")
    return urlunsplit((parts.scheme, parts.netloc, base.rstrip("/") + "/readyz", "", ""))


def hostname(destination: str) -> str:
    """The domain of a destination URL (or of a bare domain, as blocked_domains may list it)."""
    return (urlsplit(destination).hostname or destination.split("/")[0].split(":")[0]).lower()


@dataclass
class PassReport:
    """What one store's pass found and did."""

    store: str
    checked: int = 0
    active: int = 0
    inactive: int = 0
    blocked: list[str] = field(default_factory=list)
    reactivated: list[int] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    error: str | None = None


@dataclass
class HookMonitor:
    """Checks the hooks of stores and acts on what it finds.

    Parameters:
      client: Redis (incidents, gaps, hook health).
      api_for: the store's API client (its budget included).
      hooks_file, allow_http: the declaration.
      ready_url: where to probe the receiver (None: each hook destination's /readyz).
      lookback_seconds: how far before a deactivation a gap starts when nothing earlier says when.
      probe: GET a URL and say whether it answered 2xx (tests pass their own).
      clock: Unix seconds.
    """

    client: redis.Redis
    api_for: Callable[[str], StoreApi]
    hooks_file: Path
    allow_http: bool = False
    ready_url: str | None = None
    lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS
    probe: Callable[[str], bool] | None = None
    clock: Callable[[], float] = time.time

    def check_store(self, store_hash: str) -> PassReport:
        """One pass over one store; API and declaration problems are logged and reported, never raised."""
        report = PassReport(store_hash)
        try:
            declaration = load_declaration(self.hooks_file, PlaceholderEnviron(), allow_http=self.allow_http)
            api = self.api_for(store_hash)
            admin = api.hooks_admin()
            hooks = self._hooks(api, admin)
        except (DeclarationError, ApiError, StoreUnavailable) as error:
            report.error = str(error)
            log.warning("monitor.check_failed", store=store_hash, error=report.error)
            return report
        ready = self._probe_receivers(declaration)
        for declared in declaration.hooks:
            if not declared.active:
                continue
            try:
                self._check_hook(api, store_hash, declared, hooks, ready, report)
            except ApiError as error:  # a refused or rate-limited PUT: the incident stays open for next pass
                report.error = f"{declared.scope}: {error}"
                log.warning("monitor.hook_failed", store=store_hash, scope=declared.scope, error=str(error))
        self._check_blocks(store_hash, declaration, admin.get("blocked_domains") or [], report)
        self._close_orphans(store_hash, declaration, hooks)
        record_hook_health(self.client, store_hash, report.active, report.inactive, MONITOR_SOURCE)
        log.info(
            "monitor.checked",
            store=store_hash,
            hooks=report.checked,
            inactive=report.inactive,
            blocked=len(report.blocked),
            reactivated=len(report.reactivated),
            gaps=len(report.gaps),
        )
        return report

    def _close_orphans(
        self, store: str, declaration: Declaration, hooks: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        """Resolve the incidents of hooks that are gone from the store, or no longer declared active (nothing
        would ever close them otherwise)."""
        on_store = {hook_subject(int(h["id"])) for h in hooks.values()}
        wanted = {
            hook_subject(int(hook["id"]))
            for d in declaration.hooks
            if d.active and (hook := hooks.get((d.scope, d.destination))) is not None
        }
        wanted |= {f"declared:{d.scope} {d.destination}" for d in declaration.hooks if d.active}
        for incident in open_incidents(self.client, store):
            if incident.kind in (HOOK_DEACTIVATED, HOOK_MISSING) and incident.subject not in wanted:
                resolve_incident(self.client, incident.id, action="no longer declared in hooks.toml")
            elif incident.subject.startswith("hook:") and incident.subject not in on_store:
                resolve_incident(self.client, incident.id, action="the hook is no longer on the store")

    def _hooks(self, api: StoreApi, admin: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        """The store's hooks by (scope, destination), with admin's `status` added to /v3/hooks' fields."""
        statuses = {h["id"]: h.get("status") for h in admin.get("hooks_list") or []}
        return {
            (h["scope"], h["destination"]): {**h, "status": statuses.get(h["id"])} for h in api.list_hooks()
        }

    def _check_hook(
        self,
        api: StoreApi,
        store: str,
        declared: DeclaredHook,
        hooks: dict[tuple[str, str], dict[str, Any]],
        ready: Mapping[str, bool],
        report: PassReport,
    ) -> None:
        report.checked += 1
        missing_subject = f"declared:{declared.scope} {declared.destination}"
        hook = hooks.get((declared.scope, declared.destination))
        if hook is None:
            report.inactive += 1
            open_incident(
                self.client,
                new_incident(
                    store,
                    HOOK_MISSING,
                    missing_subject,
                    self.clock(),
                    "declared in hooks.toml but not on the store: run `bcwebhooks hooks apply`",
                    scope=declared.scope,
                    destination=declared.destination,
                ),
            )
            return
        missing = find_open(self.client, store, HOOK_MISSING, missing_subject)
        if missing is not None:
            resolve_incident(self.client, missing.id, action=f"hook {hook['id']} found on the store")
        if hook.get("is_active") and hook.get("status") in (None, "active"):
            report.active += 1
            self._active(store, hook, report)
            return
        report.inactive += 1
        self._deactivated(api, store, hook, ready, report)

    def _active(self, store: str, hook: dict[str, Any], report: PassReport) -> None:
        """An active hook: close what said it was down (filing the gap up to its reactivation)."""
        hook_id = int(hook["id"])
        down = find_open(self.client, store, HOOK_DEACTIVATED, hook_subject(hook_id))
        if down is not None:
            until = float(hook.get("updated_at") or self.clock())
            gap = self._file_gap(
                store, hook, down, until, f"hook {hook_id} ({hook['scope']}) was deactivated"
            )
            report.gaps.append(gap)
            resolve_incident(
                self.client, down.id, until, f"found active again; gap {_window(gap)} filed for backfill"
            )
        for kind in (DELIVERIES_FAILING, HOOK_DISABLING):
            reported = find_open(self.client, store, kind, hook_subject(hook_id))
            if reported is not None and self.clock() - reported.last_seen > STALE_REPORT_SECONDS:
                resolve_incident(self.client, reported.id, action="the hook is active and reports stopped")

    def _deactivated(
        self, api: StoreApi, store: str, hook: dict[str, Any], ready: Mapping[str, bool], report: PassReport
    ) -> None:
        """A declared hook BigCommerce switched off: record it; reactivate once the receiver is ready."""
        hook_id = int(hook["id"])
        stopped = float(hook.get("updated_at") or self.clock())
        incident, created = open_incident(
            self.client,
            new_incident(
                store,
                HOOK_DEACTIVATED,
                hook_subject(hook_id),
                stopped,
                f"is_active={hook.get('is_active')}, status={hook.get('status')}",
                hook_id=hook_id,
                scope=str(hook["scope"]),
                destination=str(hook["destination"]),
            ),
        )
        if created:
            log.warning("monitor.hook_deactivated", store=store, hook_id=hook_id, scope=hook["scope"])
            disabling = find_open(self.client, store, HOOK_DISABLING, hook_subject(hook_id))
            if disabling is not None:
                resolve_incident(
                    self.client, disabling.id, action=f"the hook was disabled: incident {incident.id}"
                )
        url = readiness_url(str(hook["destination"]), self.ready_url)
        if not ready.get(url, False):
            report.waiting.append(hook_id)
            waiting = f"waiting for the receiver to be ready ({url})"
            if incident.actions[-1:] != [waiting]:
                note_action(self.client, incident.id, waiting)
            return
        api.update_hook(hook_id, is_active=True)
        now = self.clock()
        report.reactivated.append(hook_id)
        gap = self._file_gap(store, hook, incident, now, f"hook {hook_id} ({hook['scope']}) was deactivated")
        report.gaps.append(gap)
        resolve_incident(self.client, incident.id, now, f"reactivated; gap {_window(gap)} filed for backfill")
        log.warning(
            "monitor.hook_reactivated", store=store, hook_id=hook_id, since=gap.since, until=gap.until
        )

    def _file_gap(
        self, store: str, hook: dict[str, Any], incident: Incident, until: float, reason: str
    ) -> Gap:
        """File the gap of a hook that stopped delivering at `incident.since`, up to `until`."""
        stopped = incident.since
        # Only what started by the deactivation explains it (a later report does not say when it began).
        evidence = earliest_evidence(
            self.client,
            store,
            int(hook["id"]),
            str(hook["destination"]),
            after=stopped - self.lookback_seconds,
            before=stopped,
        )
        since = (evidence if evidence is not None else stopped - self.lookback_seconds) - GAP_MARGIN_SECONDS
        created = hook.get("created_at")
        if isinstance(created, int | float):
            since = max(since, float(created) - GAP_MARGIN_SECONDS)
        gap = Gap(store, min(since, until), until, reason, (str(hook["scope"]),))
        request_backfill(self.client, gap)
        return gap

    def _probe_receivers(self, declaration: Declaration) -> dict[str, bool]:
        """Probe the receiver behind each declared destination; one that does not answer is an incident
        (`receiver_down`, deployment-wide: evidence for the gaps of hooks BigCommerce deactivates later)."""
        urls = {readiness_url(d.destination, self.ready_url) for d in declaration.hooks if d.active}
        ready = {url: self._ready(url) for url in sorted(urls)}
        for url, ok in ready.items():
            subject = f"ready:{url}"
            if not ok:
                detail = (
                    f"the receiver's readiness probe {url} does not answer 200 (set "
                    "BCWEBHOOKS_MONITOR_READY_URL if the workers cannot reach the public URL)"
                )
                open_incident(self.client, new_incident("", RECEIVER_DOWN, subject, self.clock(), detail))
            elif (down := find_open(self.client, "", RECEIVER_DOWN, subject)) is not None:
                resolve_incident(self.client, down.id, action="the receiver answers again")
        for incident in open_incidents(self.client, ""):
            if incident.kind == RECEIVER_DOWN and incident.subject.removeprefix("ready:") not in ready:
                resolve_incident(self.client, incident.id, action="no longer a declared destination")
        return ready

    def _ready(self, url: str) -> bool:
        if self.probe is not None:
            return self.probe(url)
        try:
            return httpx.get(url, timeout=READY_TIMEOUT_SECONDS).is_success
        except httpx.HTTPError:
            return False

    def _check_blocks(
        self, store: str, declaration: Declaration, blocked: list[dict[str, Any]], report: PassReport
    ) -> None:
        """Open an incident per blocked domain; close those whose block ended, filing their windows."""
        now = self.clock()
        domains: dict[str, dict[str, Any]] = {}
        for entry in blocked:
            domain = hostname(str(entry.get("destination", "")))
            domains[domain] = entry
            report.blocked.append(domain)
            left = max(0.0, float(entry.get("time_left") or 0))
            reasons = [r.get("timestamp") for r in entry.get("reasons") or [] if isinstance(r, dict)]
            started = min([now - max(0.0, BLOCK_SECONDS - left), *(float(t) for t in reasons if t)])
            open_incident(
                self.client,
                new_incident(
                    store,
                    DOMAIN_BLOCKED,
                    domain_subject(domain),
                    started,
                    f"blocklisted by BigCommerce, {int(left)} s left",
                    destination=str(entry.get("destination", "")),
                ),
            )
            request_pass(self.client, store, now + left + 1)
        for incident in open_incidents(self.client, store):
            if incident.kind != DOMAIN_BLOCKED:
                continue
            domain = incident.subject.removeprefix("domain:")
            if domain in domains or (domain == "" and domains):
                continue
            scopes = tuple(
                h.scope for h in declaration.hooks if not domain or hostname(h.destination) == domain
            ) or ("*",)
            gap = Gap(
                store, incident.since - GAP_MARGIN_SECONDS, now, f"domain {domain} was blocklisted", scopes
            )
            request_backfill(self.client, gap)
            report.gaps.append(gap)
            resolve_incident(
                self.client, incident.id, now, f"block over; gap {_window(gap)} filed for backfill"
            )


def _window(gap: Gap) -> str:
    """A gap's window for people: 2026-11-23T09:31:02Z to 2026-11-23T09:36:14Z."""
    until = "now" if gap.until is None else _iso(gap.until)
    return f"{_iso(gap.since)} to {until}"


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
