"""/v3/hooks as BigCommerce runs it: per-client visibility, uniqueness and count limits, validation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from service.sandbox.errors import HookError
from service.sandbox.scopes import close_matches, is_documented, matches

MAX_HOOKS_PER_CLIENT_SCOPE = 10
DELIVERY_EXCEPTION_SCOPE = "store/hook/deliveryException"
UPDATABLE_FIELDS = ("scope", "destination", "is_active", "headers")


@dataclass
class Hook:
    """One webhook subscription."""

    id: int
    client_id: str
    store_hash: str
    scope: str
    destination: str
    headers: dict[str, str] | None
    is_active: bool
    created_at: int
    updated_at: int
    status: str = "active"
    deactivations: int = 0  # deliveries pending when a hook is deactivated are dropped, even if reactivated

    def public(self) -> dict[str, Any]:
        """The hook as /v3/hooks returns it (events_history_enabled is still returned, always false)."""
        return {
            "id": self.id,
            "client_id": self.client_id,
            "store_hash": self.store_hash,
            "scope": self.scope,
            "destination": self.destination,
            "headers": self.headers,
            "is_active": self.is_active,
            "events_history_enabled": False,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class HookRegistry:
    """Every hook of the store, with the rules the platform enforces.

    Parameters:
      store_hash: the store the hooks belong to.
      allow_http: accept http:// and any port (local receivers); otherwise https on 443 only.
    """

    store_hash: str
    allow_http: bool = False
    clock: Callable[[], float] = time.time
    hooks: dict[int, Hook] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    emails: dict[str, list[str]] = field(default_factory=dict)
    _next_id: int = 0

    def visible(self, client_id: str) -> list[Hook]:
        """Hooks are visible only to the client that created them."""
        return [hook for hook in self.hooks.values() if hook.client_id == client_id]

    def get(self, client_id: str, hook_id: int) -> Hook:
        """One of the client's hooks, or 404."""
        hook = self.hooks.get(hook_id)
        if hook is None or hook.client_id != client_id:
            raise HookError(404, f"Webhook with id [{hook_id}] not found")
        return hook

    def create(self, client_id: str, body: Any) -> Hook:
        """Validate and store a new hook."""
        if not isinstance(body, dict):
            raise HookError(400, "Input is invalid.")
        for required in ("scope", "destination"):
            if required not in body:
                raise HookError(422, "JSON data is missing or invalid", {required: "error.path.missing."})
        scope = self._scope(body["scope"])
        destination = self._destination(body["destination"])
        headers = self._headers(body.get("headers"))
        is_active = self._is_active(body.get("is_active", True))
        self._check_limits(client_id, scope, destination, exclude=None)
        self._next_id += 1
        now = int(self.clock())
        hook = Hook(
            self._next_id, client_id, self.store_hash, scope, destination, headers, is_active, now, now
        )
        hook.status = "active" if is_active else "inactive"
        self.hooks[hook.id] = hook
        return hook

    def update(self, client_id: str, hook_id: int, body: Any) -> Hook:
        """Apply the updatable fields present; none present → 422, as the platform answers."""
        hook = self.get(client_id, hook_id)
        fields = {k: v for k, v in body.items() if k in UPDATABLE_FIELDS} if isinstance(body, dict) else {}
        if not fields:
            raise HookError(
                422,
                "The following fields are invalid: data",
                {"data": "Update webhook request should not be empty"},
            )
        scope = self._scope(fields["scope"]) if "scope" in fields else hook.scope
        destination = (
            self._destination(fields["destination"]) if "destination" in fields else hook.destination
        )
        self._check_limits(client_id, scope, destination, exclude=hook.id)
        if "headers" in fields:
            hook.headers = self._headers(fields["headers"])
        if "is_active" in fields:
            hook.is_active = self._is_active(fields["is_active"])
            hook.status = "active" if hook.is_active else "inactive"
        hook.scope, hook.destination, hook.updated_at = scope, destination, int(self.clock())
        return hook

    def delete(self, client_id: str, hook_id: int) -> Hook:
        """Remove a hook and return it."""
        hook = self.get(client_id, hook_id)
        del self.hooks[hook_id]
        return hook

    def subscribers(self, scope: str) -> list[Hook]:
        """Active hooks an event of `scope` is delivered to."""
        return [hook for hook in self.hooks.values() if hook.is_active and matches(hook.scope, scope)]

    def deactivate(self, hook: Hook, reason: str) -> None:
        """Switch a hook off after its retries are exhausted, and record the notification email."""
        hook.is_active = False
        hook.status = "deactivated"
        hook.deactivations += 1
        hook.updated_at = int(self.clock())
        self.notifications.append(
            {
                "hook_id": hook.id,
                "client_id": hook.client_id,
                "reason": reason,
                "at": hook.updated_at,
                "emails": list(self.emails.get(hook.client_id, [])),
            }
        )

    def _scope(self, scope: Any) -> str:
        if not isinstance(scope, str) or not is_documented(scope):
            suggestion = ", ".join(close_matches(str(scope))) or "see the webhook events documentation"
            raise HookError(
                422, "JSON data is missing or invalid", {"scope": f"unknown scope; did you mean {suggestion}"}
            )
        return scope

    def _destination(self, destination: Any) -> str:
        if not isinstance(destination, str):
            raise HookError(422, "JSON data is missing or invalid", {"destination": "error.path.missing."})
        parts = urlsplit(destination)
        if self.allow_http and parts.scheme in ("http", "https") and parts.hostname:
            return destination
        if parts.scheme != "https" or not parts.hostname or parts.port not in (None, 443):
            raise HookError(
                422,
                "JSON data is missing or invalid",
                {"destination": "must be an https URL served on port 443"},
            )
        return destination

    @staticmethod
    def _headers(headers: Any) -> dict[str, str] | None:
        if headers is None:
            return None
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise HookError(
                422, "JSON data is missing or invalid", {"headers": "must map header names to strings"}
            )
        return {str(k): v for k, v in headers.items()}

    @staticmethod
    def _is_active(value: Any) -> bool:
        if not isinstance(value, bool):
            raise HookError(422, "JSON data is missing or invalid", {"is_active": "must be a boolean"})
        return value

    def _check_limits(self, client_id: str, scope: str, destination: str, exclude: int | None) -> None:
        others = [hook for hook in self.visible(client_id) if hook.id != exclude]
        if any(hook.scope == scope and hook.destination == destination for hook in others):
            raise HookError(
                422,
                "JSON data is missing or invalid",
                {"scope": "a webhook for this scope and destination already exists for this client"},
            )
        if sum(hook.scope == scope for hook in others) >= MAX_HOOKS_PER_CLIENT_SCOPE:
            raise HookError(
                422,
                "JSON data is missing or invalid",
                {"scope": f"at most {MAX_HOOKS_PER_CLIENT_SCOPE} webhooks per client and scope"},
            )
        if scope == DELIVERY_EXCEPTION_SCOPE:
            if any(hook.scope == DELIVERY_EXCEPTION_SCOPE for hook in others):
                raise HookError(
                    422, "JSON data is missing or invalid", {"scope": "only one deliveryException hook"}
                )
            if any(hook.destination == destination for hook in others):
                raise HookError(
                    422,
                    "JSON data is missing or invalid",
                    {"destination": "the deliveryException destination must differ from every other hook's"},
                )
        elif any(h.scope == DELIVERY_EXCEPTION_SCOPE and h.destination == destination for h in others):
            raise HookError(
                422,
                "JSON data is missing or invalid",
                {"destination": "already used by this client's deliveryException hook"},
            )
